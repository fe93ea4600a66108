package postgres_test

import (
	"context"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
)

// pgTool finds one of PostgreSQL's client programs (pg_dump, psql).
func pgTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := osexec.LookPath(name); err == nil {
		return p
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Strings(dirs)
	if len(dirs) == 0 {
		pgtest.Missing(t, name+" is not installed (apt-get install postgresql)")
	}
	return dirs[len(dirs)-1]
}

// TestDumpAndRestore: an operator moves the database to a new server, or
// restores last night's backup, with pg_dump and psql. domicile's tables
// restored elsewhere open as they are (no ErrForeign for a layout that
// changed in the dump), a Router on them holds the same state, the audit
// log verifies, and writing goes on.
func TestDumpAndRestore(t *testing.T) {
	ctx := context.Background()
	src := pgtest.Database(t)
	r := routertest.OnPostgres(t, src, nil)
	for _, id := range []string{"acme", "globex", "initech"} {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	to := "linode-eu"
	if p, _ := r.Lookup("acme"); p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	m, err := r.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.Drain(ctx, "websupport-eu"); err != nil {
		t.Fatal(err)
	}
	want := stateOf(t, r)

	dump := filepath.Join(t.TempDir(), "dump.sql")
	out, err := osexec.Command(pgTool(t, "pg_dump"), "--dbname="+src, "--schema=domicile", "--file="+dump).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	dst := pgtest.Database(t)
	out, err = osexec.Command(pgTool(t, "psql"), "--dbname="+dst, "-v", "ON_ERROR_STOP=1", "-q", "-f", dump).CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	r2 := routertest.OnPostgres(t, dst, nil)
	if diff := cmp.Diff(want, stateOf(t, r2)); diff != "" {
		t.Errorf("a Router on the restored database differs (-source +restored):\n%s", diff)
	}
	if rep, err := r2.Verify(ctx); err != nil || len(rep.Violations) > 0 {
		t.Errorf("Verify on the restored database: %v, %v", rep.Violations, err)
	}
	if _, err := r2.Place(ctx, residency.PlaceRequest{AccountID: "after-restore", Country: "FR"}); err != nil {
		t.Errorf("Place on the restored database: %v", err)
	}
}
