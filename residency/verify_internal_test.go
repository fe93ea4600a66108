package residency

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
)

// TestVerifyFindsViolations places accounts under the default catalog, then
// checks them against a changed catalog, as a Router reopened on old state
// with a new catalog would: Verify must name every broken promise.
func TestVerifyFindsViolations(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	placeOn := func(id, country, dc string) Placement {
		t.Helper()
		for i := 0; ; i++ {
			p, err := r.Place(ctx, PlaceRequest{AccountID: id + strings.Repeat("+", i), Country: country})
			if err != nil {
				t.Fatal(err)
			}
			if p.DataCenter == dc {
				return p
			}
		}
	}
	gone := placeOn("gone", "DE", "linode-eu")         // its data center leaves the catalog
	wrong := placeOn("wrong", "US", "aws-us-west-1")   // its data center changes region
	backup := placeOn("backup", "FR", "aws-eu-west-1") // its backup changes region
	drained := placeOn("drained", "SG", "linode-sg")   // its data center drains
	brit := placeOn("brit", "GB", "linode-uk")         // a one-data-center region
	if err := r.GrantTransfer(ctx, Transfer{AccountID: brit.AccountID, To: region.US, Reference: "T"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginMove(ctx, brit.AccountID, "linode-us"); err != nil {
		t.Fatal(err)
	}

	rep, err := r.Verify(ctx)
	if err != nil || !rep.OK() || rep.Accounts < 5 || rep.Moves != 1 {
		t.Fatalf("Verify before the catalog changed: %+v, %v", rep, err)
	}

	cat, err := provider.NewCatalog(
		provider.DataCenter{ID: "aws-us-west-1", Provider: provider.AWS, Region: region.EU},
		provider.DataCenter{ID: "aws-eu-west-1", Provider: provider.AWS, Region: region.EU},
		provider.DataCenter{ID: "websupport-eu", Provider: provider.Websupport, Region: region.APAC},
		provider.DataCenter{ID: "linode-sg", Provider: provider.Linode, Region: region.APAC, Status: provider.Draining},
		provider.DataCenter{ID: "aws-ap-southeast-1", Provider: provider.AWS, Region: region.APAC},
		provider.DataCenter{ID: "linode-uk", Provider: provider.Linode, Region: region.UK},
		provider.DataCenter{ID: "linode-us", Provider: provider.Linode, Region: region.US},
	)
	if err != nil {
		t.Fatal(err)
	}
	r.useCatalog(cat, nil)
	rep, err = r.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range rep.Violations {
		got[f.AccountID] += f.Problem + "; "
	}
	wantParts := map[string][]string{
		gone.AccountID:    {"data center linode-eu is not in the catalog"},
		wrong.AccountID:   {"data center aws-us-west-1 is in EU, outside the home region US"},
		drained.AccountID: {},
	}
	for id, parts := range wantParts {
		for _, part := range parts {
			if !strings.Contains(got[id], part) {
				t.Errorf("violations of %s = %q; want %q", id, got[id], part)
			}
		}
	}
	if b := backup.Backup; b == "websupport-eu" && !strings.Contains(got[backup.AccountID], "backup data center websupport-eu is in APAC") ||
		b == "linode-eu" && !strings.Contains(got[backup.AccountID], "backup data center linode-eu is not in the catalog") {
		t.Errorf("violations of %s (backup %s) = %q", backup.AccountID, b, got[backup.AccountID])
	}
	if got[drained.AccountID] != "" && !strings.Contains(got[drained.AccountID], "backup") {
		t.Errorf("drained account has violations %q; draining is a warning", got[drained.AccountID])
	}
	var warnings []string
	for _, f := range rep.Warnings {
		warnings = append(warnings, f.Problem)
	}
	onSG, backupsOnSG := 0, 0
	for p := range r.AccountsInRegion(region.APAC) {
		if p.DataCenter == "linode-sg" {
			onSG++
		}
		if p.Backup == "linode-sg" {
			backupsOnSG++
		}
	}
	wantWarnings := []string{
		// aws-us-west-1 left the US: the account "wrong" is the only US one.
		"region US has one active data center: 1 accounts have no backup",
		"region UK has one active data center: 1 accounts have no backup",
		fmt.Sprintf("data center linode-sg is draining and holds %d accounts and the backups of %d", onSG, backupsOnSG),
	}
	if diff := cmp.Diff(wantWarnings, warnings); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}

	// Break the link between an account and its move both ways.
	m := r.snapshot().account(brit.AccountID).Move
	txn := r.db.Txn(true)
	mustDelete(txn, tableMoves, &m)
	mustInsert(txn, tableMoves, &Move{ID: "mv-orphan", AccountID: gone.AccountID, To: "linode-us"})
	txn.Commit()
	rep, _ = r.Verify(ctx)
	var problems []string
	for _, f := range rep.Violations {
		if strings.Contains(f.Problem, "move") {
			problems = append(problems, f.Problem)
		}
	}
	want := []string{
		"move " + m.ID + " is on the account but not among the open moves",
		"open move mv-orphan is not on its account",
	}
	if diff := cmp.Diff(want, problems); diff != "" {
		t.Errorf("move violations mismatch (-want +got):\n%s", diff)
	}
}
