package residency_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

func ExampleRouter_Place() {
	ctx := context.Background()
	r, err := residency.Open(ctx)
	if err != nil {
		panic(err)
	}
	defer r.Close()

	for _, req := range []residency.PlaceRequest{
		{AccountID: "acme-gmbh", Country: "de"},
		{AccountID: "globex", Country: "GBR"},
		{AccountID: "initech", Country: "840"},
		{AccountID: "tyrell", Country: "SG"},
	} {
		p, err := r.Place(ctx, req)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-9s %-4s %-18s backup %-13q (%s)\n", p.AccountID, p.Region, p.DataCenter, p.Backup, p.Rule)
	}
	// Output:
	// acme-gmbh EU   linode-eu          backup "aws-eu-west-1" (EU member state)
	// globex    UK   linode-uk          backup ""            (United Kingdom)
	// initech   US   linode-us          backup "aws-us-west-1" (United States)
	// tyrell    APAC aws-ap-southeast-1 backup "linode-sg"   (APAC: South-East Asia)
}

func ExampleRouter_Place_explicitRegion() {
	ctx := context.Background()
	r, _ := residency.Open(ctx)
	defer r.Close()

	// A US customer who chose to keep its data in the EU.
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "initech", Country: "US", Region: region.EU})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Region, p.Rule)

	// Asking again for another region is a conflict, not a move.
	_, err = r.Place(ctx, residency.PlaceRequest{AccountID: "initech", Country: "US"})
	fmt.Println(errors.Is(err, residency.ErrConflict))
	// Output:
	// EU customer's choice
	// true
}

func ExampleRouter_Lookup() {
	ctx := context.Background()
	r, _ := residency.Open(ctx)
	defer r.Close()
	r.Place(ctx, residency.PlaceRequest{AccountID: "acme-gmbh", Country: "AT"})

	p, err := r.Lookup("acme-gmbh")
	fmt.Println(p.DataCenter, p.Provider, err)

	_, err = r.Lookup("nobody")
	fmt.Println(errors.Is(err, residency.ErrNotFound), err)
	// Output:
	// linode-eu linode <nil>
	// true residency: not found: account "nobody"
}

func ExampleRouter_BeginMove() {
	ctx := context.Background()
	r, _ := residency.Open(ctx)
	defer r.Close()
	r.Place(ctx, residency.PlaceRequest{AccountID: "acme-gmbh", Country: "DE"})

	m, err := r.BeginMove(ctx, "acme-gmbh", "websupport-eu")
	if err != nil {
		panic(err)
	}
	during, _ := r.Lookup("acme-gmbh")
	fmt.Println("moving", m.From, "->", m.To, "; lookup still answers", during.DataCenter)

	// ... copy the account's data from m.From to m.To, then:
	p, err := r.CompleteMove(ctx, m.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("now on", p.DataCenter, "version", p.Version)

	// Leaving the EU needs the customer's agreement.
	_, err = r.BeginMove(ctx, "acme-gmbh", "aws-us-west-1")
	fmt.Println(err)
	// Output:
	// moving linode-eu -> websupport-eu ; lookup still answers linode-eu
	// now on websupport-eu version 3
	// residency: outside the home region: account "acme-gmbh" lives in EU, data center aws-us-west-1 is in US, and no live transfer agreement covers US
}

func ExampleRouter_GrantTransfer() {
	ctx := context.Background()
	r, _ := residency.Open(ctx)
	defer r.Close()
	r.Place(ctx, residency.PlaceRequest{AccountID: "acme-gmbh", Country: "DE"})

	err := r.GrantTransfer(ctx, residency.Transfer{
		AccountID: "acme-gmbh", To: region.US, Reference: "DPA-2026-017",
		ExpiresAt: time.Now().Add(30 * 24 * time.Hour),
	})
	if err != nil {
		panic(err)
	}
	m, err := r.BeginMove(ctx, "acme-gmbh", "aws-us-west-1")
	if err != nil {
		panic(err)
	}
	p, err := r.CompleteMove(ctx, m.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Region, p.DataCenter, p.Rule)

	history, _ := r.History(ctx, "acme-gmbh")
	for _, e := range history {
		fmt.Printf("%d %s %q -> %q", e.Version, e.Kind, e.From, e.To)
		if e.Reference != "" {
			fmt.Printf(" under %s", e.Reference)
		}
		fmt.Println()
	}
	// Output:
	// US aws-us-west-1 transfer agreement "DPA-2026-017"
	// 1 placed "" -> "linode-eu"
	// 2 transfer-granted "EU" -> "US" under DPA-2026-017
	// 3 move-begun "linode-eu" -> "aws-us-west-1" under DPA-2026-017
	// 4 move-completed "linode-eu" -> "aws-us-west-1" under DPA-2026-017
}

func ExampleRouter_Verify() {
	ctx := context.Background()
	r, _ := residency.Open(ctx)
	defer r.Close()
	r.Place(ctx, residency.PlaceRequest{AccountID: "globex", Country: "GB"})
	r.Place(ctx, residency.PlaceRequest{AccountID: "acme-gmbh", Country: "DE"})

	rep, err := r.Verify(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("accounts:", rep.Accounts, "ok:", rep.OK())
	for _, w := range rep.Warnings {
		fmt.Println("warning:", w.Problem)
	}
	// Output:
	// accounts: 2 ok: true
	// warning: region UK has one active data center: 1 accounts have no backup
}

func ExampleWithPath() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "domicile-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "domicile.db")

	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		panic(err)
	}
	p, _ := r.Place(ctx, residency.PlaceRequest{AccountID: "acme-gmbh", Country: "DE"})
	r.Close() // or a crash: Place returned, so the placement is on disk

	r, err = residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		panic(err)
	}
	defer r.Close()
	again, _ := r.Lookup("acme-gmbh")
	fmt.Println(again.DataCenter == p.DataCenter, again.Version)
	// Output:
	// true 1
}

func ExampleRouter_Import() {
	ctx := context.Background()
	r, _ := residency.Open(ctx)
	defer r.Close()

	res, err := r.Import(ctx, slices.Values([]residency.ImportRow{
		{AccountID: "old-1", Country: "FR", DataCenter: "aws-eu-west-1"},
		{AccountID: "old-2", Country: "GB"},
		{AccountID: "old-3", Country: "DE", DataCenter: "linode-us"},
		{AccountID: "old-4", Country: "Narnia"},
	}))
	if err != nil {
		panic(err)
	}
	fmt.Println("imported", res.Imported)
	for _, e := range res.Refused {
		fmt.Println(e)
	}
	// Output:
	// imported 2
	// row 3: residency: outside the home region: account "old-3": data center linode-us is in US, the account's region is EU
	// row 4: residency: account "old-4": region: invalid country "Narnia"
}

func ExampleConflictError() {
	ctx := context.Background()
	r, _ := residency.Open(ctx)
	defer r.Close()
	r.Place(ctx, residency.PlaceRequest{AccountID: "acme-gmbh", Country: "DE"})

	_, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme-gmbh", Country: "US"})
	var ce *residency.ConflictError
	if errors.As(err, &ce) {
		// Stale is false: the request contradicts the account's recorded
		// state, and a retry would get the same answer.
		fmt.Println(ce.AccountID, ce.Stored.Region, ce.Stored.DataCenter, ce.Stale)
	}
	fmt.Println(errors.Is(err, residency.ErrConflict), errors.Is(err, residency.ErrStaleVersion))
	fmt.Println(err)
	// Output:
	// acme-gmbh EU linode-eu false
	// true false
	// residency: conflict: account "acme-gmbh" lives in EU (EU member state), the request asks for US
}

func ExampleRouter_Err() {
	ctx := context.Background()
	r, _ := residency.Open(ctx)
	r.Place(ctx, residency.PlaceRequest{AccountID: "acme-gmbh", Country: "DE"})
	r.Close()

	// The iterators cannot return an error: a closed Router yields
	// nothing, and Err after the loop says whether the loop saw everything.
	n := 0
	for range r.AccountsInRegion(region.EU) {
		n++
	}
	fmt.Println(n, r.Err())
	// Output:
	// 0 residency: router closed
}

// A readiness check: an instance whose Router is not ready (its lease on a
// shared database ran out, or it is shutting down) answers 503, and the
// load balancer sends its requests to another.
func ExampleRouter_Ready() {
	ctx := context.Background()
	r, err := residency.Open(ctx)
	if err != nil {
		panic(err)
	}
	ready := func() int {
		if err := r.Ready(); err != nil {
			return 503
		}
		return 200
	}
	fmt.Println(ready())
	r.Close()
	fmt.Println(ready(), errors.Is(r.Ready(), residency.ErrClosed))
	// Output:
	// 200
	// 503 true
}
