package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/residency"
)

// TestPlanRerunIsNotARefusal: a migration script is run again with the
// same plan (it was killed, or the operator is not sure it finished), as
// the doc of BeginMove expects ("a script run again finds its account
// there already"). Every row whose account already lives on the planned
// data center is done, as an imported row whose account exists is
// ("already placed", exit 0).
//
// Such rows are counted apart ("already there") and the rerun exits 0,
// so that the exit status tells a script whether the plan is carried
// out. (Before, each was reported "refused: ... already lives in ...",
// and a rerun could never exit 0.)
func TestPlanRerunIsNotARefusal(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE", "FR", "DE")
	var csv strings.Builder
	csv.WriteString("account_id,to_datacenter\n")
	for _, id := range []string{"de-0", "fr-1", "de-2"} {
		fmt.Fprintf(&csv, "%s,%s\n", id, otherDC[placementOf(t, db, id).DataCenter])
	}
	plan := writeFile(t, dir, "plan.csv", csv.String())
	if code, out, log := migrateRun(t, "-db", db, "-plan", plan, "-copy", "true"); code != 0 {
		t.Fatalf("first run exit %d\n%s\n%s", code, out, log)
	}
	code, out, _ := migrateRun(t, "-db", db, "-plan", plan, "-copy", "true")
	// The summary names every count, "refused 0" included: no row may be
	// reported refused ("refused: line ..."), and the rows count apart.
	if code != 0 || strings.Contains(out, "refused:") || !strings.Contains(out, "already there 3, ") || !strings.Contains(out, "refused 0, ") {
		t.Errorf("rerun of a plan already carried out: exit %d, want 0, no refusal and 3 already there\n%s", code, out)
	}
}

// TestEvacuateOnMissingStoreFileIsAnError: an operator mistypes -db (or
// runs the script on the wrong machine). migrate then makes a new, empty
// store at that path, drains the data center in it, reports "drained ...;
// moving its 0 accounts" and exits 0: the operator reads that the data
// center is empty and may decommission it, while the real store was never
// touched.
//
// A run that moves accounts (-plan, -evacuate, -copy, -abort) on a path
// where no store exists is a usage error (exit 2, as a missing CSV file
// is) and creates no file; only -import creates a store.
func TestEvacuateOnMissingStoreFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	code, out, log := migrateRun(t, "-db", missing, "-evacuate", "linode-eu", "-copy", "true")
	if code == 0 {
		t.Errorf("-evacuate on a store that does not exist exited 0\n%s\n%s", out, log)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("-evacuate created a new store at %s", missing)
	}
}

// TestPlanWithoutCopyMovesNoData: -copy is optional, and without it -plan
// and -evacuate begin and complete every move with nothing copied, so
// each account ends on a data center that holds none of its data (and
// the README says the source may be deleted as soon as a move is
// reported). The same tool refuses to complete open moves without -copy
// for exactly that reason ("completing a move whose data nobody copied
// would send the account to an empty data center"). An operator who
// forgets -copy on a rerun moves every account of the plan to an empty
// data center.
//
// Without -copy (and without -dry-run), -plan and -evacuate move nothing:
// a usage error, unless -no-copy says that the data is copied by other
// means. (Before, the account moved, exit 0.)
func TestPlanWithoutCopyMovesNoData(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE")
	from := placementOf(t, db, "de-0").DataCenter
	plan := writeFile(t, dir, "plan.csv", "account_id,to_datacenter\nde-0,"+otherDC[from]+"\n")
	code, out, _ := migrateRun(t, "-db", db, "-plan", plan)
	if p := placementOf(t, db, "de-0"); p.DataCenter != from || p.Moving() {
		t.Errorf("-plan without -copy (exit %d) moved de-0 from %s to %s with no data copied\n%s", code, from, p.DataCenter, out)
	}
}

// TestEvacuateFollowsTheBackendsCatalog: the README tells compliance
// officers to keep a catalog file of their own and give it to the Router
// (residency.WithCatalog); here the company's catalog takes websupport-eu
// offline. migrate has no way to be given that catalog: it opens the
// store with the default one, in which websupport-eu is active, and its
// evacuation of aws-eu-west-1 moves accounts into websupport-eu, a data
// center that the backend, the catalog and Verify under that catalog
// treat as offline. With a catalog that announces a data center for a
// date ahead it would move accounts there before the date; with one
// that adds a data center, Open refuses the store (ErrUnknownDataCenter)
// and migrate cannot run at all.
//
// migrate takes the catalog file (-catalog FILE) and moves no account
// into websupport-eu. (Before, there was no such flag, and accounts were
// moved into websupport-eu; the test logs a run without the flag, on a
// copy.)
func TestEvacuateFollowsTheBackendsCatalog(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	catalog := writeFile(t, dir, "catalog.json", `{"datacenters": [
 {"id": "linode-eu", "provider": "linode", "region": "EU"},
 {"id": "aws-eu-west-1", "provider": "aws", "region": "EU"},
 {"id": "websupport-eu", "provider": "websupport", "region": "EU", "status": "offline"}]}`)
	f, err := os.Open(catalog)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := provider.LoadCatalog(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The backend places accounts under the company's catalog.
	r, err := residency.Open(context.Background(), residency.WithPath(db), residency.WithCatalog(cat))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if _, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: fmt.Sprint("acct-", i), Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	onWebsupport := func(db string) int {
		r, err := residency.Open(context.Background(), residency.WithPath(db), residency.WithCatalog(cat))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		n := 0
		for range r.Accounts("websupport-eu") {
			n++
		}
		return n
	}
	// What a script author gets today, on a copy of the store: migrate
	// with the default catalog.
	data, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	today := writeFile(t, dir, "today.db", string(data))
	code, out, _ := migrateRun(t, "-db", today, "-evacuate", "aws-eu-west-1", "-copy", "true")
	t.Logf("without a way to give the catalog, migrate (exit %d) moved %d accounts into websupport-eu, offline in the backend's catalog:\n%s", code, onWebsupport(today), out)

	code, out, log := migrateRun(t, "-db", db, "-catalog", catalog, "-evacuate", "aws-eu-west-1", "-copy", "true")
	if code != 0 {
		t.Errorf("migrate -catalog FILE -evacuate aws-eu-west-1: exit %d, want 0\n%s\n%s", code, out, log)
	}
	if n := onWebsupport(db); n > 0 {
		t.Errorf("with -catalog, migrate moved %d accounts into websupport-eu, offline in the catalog\n%s", n, out)
	}
}
