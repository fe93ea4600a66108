// Command quickstart walks through domicile's main calls on the embedded
// store: it places accounts from several countries, moves one inside its
// region, is refused a move out of the region, makes that move once the
// customer has agreed to it, and finds everything again after a restart.
//
//	go run ./examples/quickstart
//
// The store file is made in a new temporary folder, removed at the end.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

func main() {
	dir, err := os.MkdirTemp("", "domicile-quickstart-")
	if err != nil {
		log.Fatal(err)
	}
	err = run(context.Background(), filepath.Join(dir, "domicile.db"))
	os.RemoveAll(dir)
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, path string) error {
	fmt.Println("State is kept in", path, "(removed at the end)")
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		return err
	}
	defer func() { r.Close() }()

	fmt.Println("1. New accounts are placed in the region of the customer's country:")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "   account\tcountry\tregion\tdata center\tbackup\twhy")
	for _, req := range []residency.PlaceRequest{
		{AccountID: "acme-gmbh", Country: "de"},
		{AccountID: "globex-ltd", Country: "GBR"},
		{AccountID: "initech-inc", Country: "840"},
		{AccountID: "tyrell-pte", Country: "SG"},
		{AccountID: "cyberdyne-sa", Country: "BR"},
		{AccountID: "umbrella-ag", Country: "CH", Region: region.UK},
	} {
		p, err := r.Place(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "   %s\t%s\t%s\t%s\t%s\t%s\n", p.AccountID, req.Country, p.Region, p.DataCenter, orNone(p.Backup), p.Rule)
	}
	w.Flush()

	fmt.Println("\n2. A country that is not a country is refused:")
	_, err = r.Place(ctx, residency.PlaceRequest{AccountID: "bad", Country: "EU"})
	fmt.Println("  ", err)

	fmt.Println("\n3. acme-gmbh moves inside the EU; Lookup answers the source until the move completes:")
	p, _ := r.Lookup("acme-gmbh")
	to := "websupport-eu"
	if p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	m, err := r.BeginMove(ctx, "acme-gmbh", to)
	if err != nil {
		return err
	}
	during, _ := r.Lookup("acme-gmbh")
	fmt.Printf("   move %s: %s -> %s; Lookup during the copy: %s\n", m.ID, m.From, m.To, during.DataCenter)
	p, err = r.CompleteMove(ctx, m.ID)
	if err != nil {
		return err
	}
	fmt.Printf("   completed: acme-gmbh lives on %s (version %d)\n", p.DataCenter, p.Version)

	fmt.Println("\n4. Moving acme-gmbh to the US is refused without the customer's agreement:")
	_, err = r.BeginMove(ctx, "acme-gmbh", "aws-us-west-1")
	fmt.Println("  ", err)

	fmt.Println("\n5. With a written agreement, the move goes ahead and the home region changes:")
	err = r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme-gmbh", To: region.US, Reference: "DPA-2026-017", ExpiresAt: time.Now().Add(30 * 24 * time.Hour)})
	if err != nil {
		return err
	}
	m, err = r.BeginMove(ctx, "acme-gmbh", "aws-us-west-1")
	if err != nil {
		return err
	}
	p, err = r.CompleteMove(ctx, m.ID)
	if err != nil {
		return err
	}
	fmt.Printf("   acme-gmbh now lives in %s on %s: %s\n", p.Region, p.DataCenter, p.Rule)

	fmt.Println("\n6. acme-gmbh's audit trail:")
	history, err := r.History(ctx, "acme-gmbh")
	if err != nil {
		return err
	}
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, e := range history {
		why := e.Rule
		if why == "" && e.Reference != "" {
			why = "agreement " + e.Reference
		}
		fmt.Fprintf(w, "   v%d\t%s\t%s\t%s -> %s\t%s\n", e.Version, e.Time.Format(time.RFC3339), e.Kind, orNone(e.From), e.To, why)
	}
	w.Flush()

	fmt.Println("\n7. Verify checks every account against the catalog and the agreements:")
	rep, err := r.Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("   %d accounts, %d violations\n", rep.Accounts, len(rep.Violations))
	for _, f := range rep.Warnings {
		fmt.Println("   warning:", f.Problem)
	}

	fmt.Println("\n8. After a restart every placement, move and agreement is back:")
	if err := r.Close(); err != nil {
		return err
	}
	if r, err = residency.Open(ctx, residency.WithPath(path)); err != nil {
		return err
	}
	p, err = r.Lookup("acme-gmbh")
	if err != nil {
		return err
	}
	agreements, _ := r.Agreements("acme-gmbh")
	fmt.Printf("   acme-gmbh: %s on %s, version %d, %d agreement(s)\n", p.Region, p.DataCenter, p.Version, len(agreements))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
