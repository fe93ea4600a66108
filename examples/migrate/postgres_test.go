package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// TestEvacuatePostgres runs the script with -db on a PostgreSQL database
// that a server's Router shares: as soon as the script returns, the
// server answers every account's new data center, with no Sync.
func TestEvacuatePostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	server := routertest.OnPostgres(t, dsn, nil)
	var onEU []string
	for i := range 20 {
		id := fmt.Sprint("acct-", i)
		p, err := server.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
		if err != nil {
			t.Fatal(err)
		}
		if p.DataCenter == "linode-eu" {
			onEU = append(onEU, id)
		}
	}
	if len(onEU) == 0 {
		t.Fatal("no account on linode-eu to evacuate")
	}
	if code, out, log := migrateRun(t, "-db", dsn, "-dry-run", "-evacuate", "linode-eu"); code != 0 {
		t.Fatalf("migrate -dry-run exit %d\n%s\n%s", code, out, log)
	}
	code, out, log := migrateRun(t, "-db", dsn, "-evacuate", "linode-eu", "-copy", "true")
	if code != 0 {
		t.Fatalf("migrate exit %d\n%s\n%s", code, out, log)
	}
	if !strings.Contains(out, fmt.Sprintf("moved %d", len(onEU))) {
		t.Errorf("summary does not say moved %d:\n%s", len(onEU), out)
	}
	for _, id := range onEU {
		p, err := server.Lookup(id)
		if err != nil || p.DataCenter == "linode-eu" {
			t.Errorf("server right after migrate: %s on %q, %v; want moved", id, p.DataCenter, err)
		}
	}
	if st, err := server.Status("linode-eu"); err != nil || st != "draining" {
		t.Errorf("server: linode-eu %v, %v; want draining", st, err)
	}
}

// TestUnfencedMoveIsNotReportedOpen: when CompleteMove commits the move but
// its fence does not end (here a member with a lease of an hour that never
// applies anything holds it up past the script's lease and write timeout,
// as a database that goes away right after the commit would), the account
// is on its target and no move is open; the script must not report the
// move as "left open" (a rerun with -copy finds nothing to resume), but
// say that it is done and not yet confirmed by every server.
func TestUnfencedMoveIsNotReportedOpen(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	server := routertest.OnPostgres(t, dsn, nil)
	to := placeInEU(t, server, "acme")
	leave := holdFences(t, dsn)
	plan := writeFile(t, t.TempDir(), "plan.csv", "account_id,to_datacenter\nacme,"+to+"\n")
	code, out, log := migrateRun(t, "-db", dsn, "-plan", plan, "-copy", "true")
	leave()
	if err := server.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := server.Lookup("acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.DataCenter != to || got.Move.ID != "" {
		t.Fatalf("acme on %s, move %q; want on %s, no move open (the move was committed)", got.DataCenter, got.Move.ID, to)
	}
	if code != 1 {
		t.Errorf("exit %d, want 1: not every server was seen to apply the move", code)
	}
	if strings.Contains(out, "left open") {
		t.Errorf("the report says the committed move was left open:\n%s\n%s", out, log)
	}
}

// TestUnfencedDrainIsReported: when -evacuate's Drain commits but its
// fence does not end (a member that never applies anything, as in
// TestUnfencedMoveIsNotReportedOpen), the script says that the data center
// is drained, that no account was moved and that a rerun is needed, and
// still prints its summary, rather than ending on the bare error.
func TestUnfencedDrainIsReported(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	server := routertest.OnPostgres(t, dsn, nil)
	p, err := server.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	leave := holdFences(t, dsn)
	code, out, log := migrateRun(t, "-db", dsn, "-evacuate", p.DataCenter, "-copy", "true")
	leave()
	if err := server.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := server.Lookup("acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.DataCenter != p.DataCenter || got.Move.ID != "" {
		t.Errorf("acme on %s, move %q; want it left on %s, no move begun", got.DataCenter, got.Move.ID, p.DataCenter)
	}
	if code != 1 {
		t.Errorf("exit %d, want 1: not every server was seen to apply the drain", code)
	}
	for _, want := range []string{"failed: evacuate " + p.DataCenter + ": drained, but not every server", "summary:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s\n%s", want, out, log)
		}
	}
}

// placeInEU places account id, in Germany, through r, and returns another
// data center of the EU to move it to.
func placeInEU(t *testing.T, r *residency.Router, id string) (to string) {
	t.Helper()
	p, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: id, Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	if to = "linode-eu"; p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	return to
}

// holdFences joins dsn's Routers as a member with a lease of an hour that
// never applies anything, as an instance the database can no longer hear
// from would: every fence waits for it, until leave.
func holdFences(t *testing.T, dsn string) (leave func()) {
	t.Helper()
	ctx := context.Background()
	stuck, err := postgres.Open(ctx, dsn, postgres.WithLease(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stuck.Close() })
	m, _, err := stuck.Join(ctx, "stuck", 0)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := m.Leave(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoreFailureIsNotARefusal: a move that the store cannot make (here
// the database refuses the script's role any new event, as it would
// refuse a role whose grants were changed under a running script) is
// reported as failed, not refused: a rerun may succeed, and an operator
// must not read it as the policy's answer.
func TestStoreFailureIsNotARefusal(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	server := routertest.OnPostgres(t, dsn, nil)
	var rows []string
	for _, id := range []string{"acme-gmbh", "globex-ag"} {
		rows = append(rows, id+","+placeInEU(t, server, id))
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, stmt := range []string{
		"CREATE ROLE migrator LOGIN",
		"GRANT USAGE ON SCHEMA domicile TO migrator",
		"GRANT ALL ON ALL TABLES IN SCHEMA domicile TO migrator",
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		admin, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			admin.Exec(context.Background(), "DROP OWNED BY migrator; DROP ROLE migrator")
			admin.Close(context.Background())
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("migrator")

	// The first move's copy waits for the test, which meanwhile takes the
	// role's right to add events: the first CompleteMove and the second
	// BeginMove both fail in the store.
	dir := t.TempDir()
	copying, resume := filepath.Join(dir, "copying"), filepath.Join(dir, "resume")
	plan := writeFile(t, dir, "plan.csv", "account_id,to_datacenter\n"+strings.Join(rows, "\n")+"\n")
	done := migrateAsync(t, "-db", u.String(), "-plan", plan,
		"-copy", fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.02; done", copying, resume))
	waitForFile(t, copying, "the first copy")
	if _, err := admin.Exec(ctx, "REVOKE INSERT ON domicile.events FROM migrator"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(resume, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.code != 1 {
		t.Errorf("exit %d, want 1", res.code)
	}
	wantLines(t, res.out,
		`failed: move of account "acme-gmbh" `,
		`failed: line 3: account "globex-ag": residency: the store failed`,
		"refused 0, failed 2")
	if t.Failed() {
		t.Logf("stderr:\n%s", res.logs)
	}
}

// TestDatabaseWithoutTablesIsAUsageError: a PostgreSQL database that holds
// no domicile tables is to -db postgres://... what a path with no file is
// to a store file (TestMissingStoreFileIsAUsageError): a mistyped database
// name, or the wrong server. Any run but -import must then be a usage
// error (exit 2) that creates nothing, and a dry run ("nothing will be
// changed") must not create domicile's tables either. The script opened
// the store for writing, which created the schema and its tables, and an
// -evacuate of the empty store exited 0 ("moving its 0 accounts"): the run
// after which the README says a data center may be decommissioned.
func TestDatabaseWithoutTablesIsAUsageError(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	plan := writeFile(t, t.TempDir(), "plan.csv", "account_id,to_datacenter\n")
	for _, args := range [][]string{
		{"-evacuate", "linode-eu", "-copy", "true"},
		{"-evacuate", "linode-eu", "-dry-run"},
		{"-plan", plan, "-copy", "true"},
		{"-abort", "mv-1"},
		{"-copy", "true"},
	} {
		code, out, log := migrateRun(t, append([]string{"-db", dsn}, args...)...)
		if code != 2 {
			t.Errorf("migrate %q on a database without domicile's tables = exit %d, want 2\n%s%s", args, code, out, log)
		}
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		var schemas int
		err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", postgres.DefaultSchema).Scan(&schemas)
		if err == nil && schemas != 0 {
			// Drop it, so that the next case starts from an empty
			// database again.
			_, err = conn.Exec(ctx, "DROP SCHEMA "+postgres.DefaultSchema+" CASCADE")
			t.Errorf("migrate %q created schema %q in a database without domicile's tables", args, postgres.DefaultSchema)
		}
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// schemaHolds describes what schema domicile of dsn holds: its tables and
// their columns, and the rows of its meta table.
func schemaHolds(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var out string
	err = conn.QueryRow(ctx, `SELECT coalesce((SELECT string_agg(table_name || '.' || column_name, ' ' ORDER BY table_name, ordinal_position)
		FROM information_schema.columns WHERE table_schema = 'domicile'), 'no tables')`).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	var meta *string
	if err := conn.QueryRow(ctx, `SELECT to_regclass('domicile.meta')::text`).Scan(&meta); err != nil {
		t.Fatal(err)
	}
	if meta != nil {
		var rows string
		if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(key || '=' || left(value, 20), ' ' ORDER BY key), '') FROM domicile.meta`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		out += "; meta " + rows
	}
	return out
}

// TestOnlyImportCreatesTables: on a database without domicile's tables,
// a dry run of -import imports into an empty store that it creates
// nowhere; -import creates the tables, after which the other runs work,
// and a dry run needs no more than SELECT (it opens the store read-only).
func TestOnlyImportCreatesTables(t *testing.T) {
	dsn := pgtest.DatabaseURL(t)
	imports := writeFile(t, t.TempDir(), "accounts.csv", "account_id,country\nacme,DE\nglobex,FR\n")
	code, out, log := migrateRun(t, "-db", dsn, "-dry-run", "-import", imports)
	if code != 0 || !strings.Contains(out, "imported 2") {
		t.Errorf("dry run of -import on a database without domicile's tables = exit %d, want 0 and 2 imported\n%s%s", code, out, log)
	}
	if got := schemaHolds(t, dsn); got != "no tables" {
		t.Errorf("a dry run of -import created tables: %s", got)
	}
	if code, out, log := migrateRun(t, "-db", dsn, "-import", imports); code != 0 || !strings.Contains(out, "imported 2") {
		t.Fatalf("-import on a database without domicile's tables = exit %d, want 0 and 2 imported\n%s%s", code, out, log)
	}
	before := schemaHolds(t, dsn)
	reader := pgtest.ReadOnlyRole(t, dsn, postgres.DefaultSchema)
	code, out, log = migrateRun(t, "-db", reader, "-dry-run", "-evacuate", "linode-eu")
	if code != 0 || !strings.Contains(out, "would drain linode-eu") {
		t.Errorf("dry run as a role that may only SELECT = exit %d, want 0 and the drain planned\n%s%s", code, out, log)
	}
	if code, out, log := migrateRun(t, "-db", dsn, "-evacuate", "linode-eu", "-no-copy"); code != 0 || !strings.Contains(out, "drained linode-eu") {
		t.Errorf("-evacuate after -import = exit %d, want 0\n%s%s", code, out, log)
	}
	if diff := cmp.Diff(before, schemaHolds(t, dsn)); diff != "" {
		t.Errorf("runs after -import changed the tables (-before +after):\n%s", diff)
	}
}

// TestDryRunLeavesOlderTables: the PostgreSQL store upgrades tables of an
// older format when it opens them for writing; a dry run opens them
// read-only, so it fails (exit 1), saying how to upgrade them first, and
// leaves them as they were.
func TestDryRunLeavesOlderTables(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "UPDATE domicile.meta SET value = '2' WHERE key = 'format'")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := schemaHolds(t, dsn)
	code, out, log := migrateRun(t, "-db", dsn, "-dry-run", "-evacuate", "linode-eu")
	if code != 1 {
		t.Errorf("dry run on tables of format 2 = exit %d, want 1\n%s%s", code, out, log)
	}
	for _, want := range []string{"older format", "a dry run opens the store read-only", "upgrade it first"} {
		if !strings.Contains(log, want) {
			t.Errorf("dry run on tables of format 2: stderr lacks %q:\n%s", want, log)
		}
	}
	if diff := cmp.Diff(before, schemaHolds(t, dsn)); diff != "" {
		t.Errorf("dry run changed tables of format 2 (-before +after):\n%s", diff)
	}
}
