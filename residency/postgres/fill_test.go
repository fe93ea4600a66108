package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// fillCountries are the countries of fill's templates, one account each.
var fillCountries = []string{"DE", "FR", "US", "GB", "JP", "SG", "BR", "AU"}

// fillID is the ID of the i-th account fill places.
func fillID(i int) string { return fmt.Sprintf("acct-%08d", i) }

// fill places n accounts, fillID(0) to fillID(n-1), in the empty database
// at dsn (schema domicile) as fast as SQL can, with rows exactly as the
// store writes them: a Router places one template account per country of
// fillCountries ("tmpl-0", "tmpl-1", ...), and each further account is a
// copy of the rows of template i%len(fillCountries) (its placement, its
// event, its change in the log) under its own ID, at the next log
// position. The templates stay: the database holds n+len(fillCountries)
// accounts.
func fill(tb testing.TB, dsn string, n int) {
	tb.Helper()
	ctx := context.Background()
	s := openStore(tb, dsn)
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		tb.Fatal(err)
	}
	for i, c := range fillCountries {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("tmpl-", i), Country: c}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		tb.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	// Rows go through jsonb with the ID replaced, so that every column
	// is copied whatever the table's layout; in the change's JSON the
	// template's ID is replaced as text (`"tmpl-3"` appears nowhere else).
	tx, err := conn.Begin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// Each template was placed by its own Apply, in order: its change is
	// at position its index + 1. Check it, then copy.
	for i := range fillCountries {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT strpos(change::text, $2) > 0 FROM domicile.changes WHERE pos = $1`, i+1, fmt.Sprintf(`"tmpl-%d"`, i)).Scan(&ok); err != nil {
			tb.Fatal(err)
		}
		if !ok {
			tb.Fatalf("the change at position %d is not of account tmpl-%d", i+1, i)
		}
	}
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`CREATE TEMPORARY TABLE fill AS
			SELECT g.i, 'acct-' || lpad(g.i::text, 8, '0') AS id, 'tmpl-' || (g.i % $2) AS tmpl, 1 + g.i % $2 AS tpos
			FROM generate_series(0, $1 - 1) AS g(i)`, []any{n, len(fillCountries)}},
		// The templates' rows, apart: a table read while rows are
		// inserted into it is read to its end, new pages included.
		{`CREATE TEMPORARY TABLE fill_accounts AS SELECT * FROM domicile.accounts`, nil},
		{`CREATE TEMPORARY TABLE fill_events AS SELECT * FROM domicile.events`, nil},
		{`CREATE TEMPORARY TABLE fill_changes AS SELECT * FROM domicile.changes`, nil},
		{`ANALYZE fill, fill_accounts, fill_events, fill_changes`, nil},
		{`INSERT INTO domicile.accounts
			SELECT r.* FROM fill f JOIN fill_accounts a ON a.id = f.tmpl,
				LATERAL jsonb_populate_record(NULL::domicile.accounts, to_jsonb(a) || jsonb_build_object('id', f.id)) r
			ORDER BY f.i`, nil},
		{`INSERT INTO domicile.events
			SELECT r.* FROM fill f JOIN fill_events e ON e.account = f.tmpl,
				LATERAL jsonb_populate_record(NULL::domicile.events, to_jsonb(e) || jsonb_build_object('account', f.id)) r
			ORDER BY f.i`, nil},
		{`INSERT INTO domicile.changes (pos, change)
			SELECT h.pos + 1 + f.i, replace(c.change::text, '"' || f.tmpl || '"', '"' || f.id || '"')::json
			FROM fill f CROSS JOIN domicile.head h JOIN fill_changes c ON c.pos = f.tpos ORDER BY f.i`, nil},
		{`UPDATE domicile.head SET pos = pos + $1`, []any{n}},
		{`DROP TABLE fill, fill_accounts, fill_events, fill_changes`, nil},
	} {
		if _, err := tx.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			tb.Fatalf("%s: %v", stmt.sql, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE domicile.accounts, domicile.events, domicile.changes`); err != nil {
		tb.Fatal(err)
	}
}

// TestFill checks fill, which the benchmarks of opening many accounts
// use: a Router opened on its database holds every account, as the
// template's placement under its own ID, Verifies clean, and reads the
// log as its own (a Router on another store follows a write after the
// copies, and the audit log decodes every entry).
func TestFill(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const n = 200
	fill(t, dsn, n)
	r := routertest.OnPostgres(t, dsn, nil)
	rep, err := r.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Violations) != 0 || rep.Accounts != n+len(fillCountries) {
		t.Errorf("Verify: %d accounts, violations %+v; want %d accounts, none", rep.Accounts, rep.Violations, n+len(fillCountries))
	}
	for i := range n {
		got, err := r.Lookup(fillID(i))
		if err != nil {
			t.Fatal(err)
		}
		want, err := r.Lookup(fmt.Sprint("tmpl-", i%len(fillCountries)))
		if err != nil {
			t.Fatal(err)
		}
		want.AccountID = fillID(i)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Lookup(%s) mismatch (-want +got):\n%s", fillID(i), diff)
		}
		h, err := r.History(ctx, fillID(i))
		if err != nil || len(h) != 1 || h[0].AccountID != fillID(i) || h[0].Version != 1 || h[0].To != got.DataCenter {
			t.Errorf("History(%s) = %+v, %v; want its placement", fillID(i), h, err)
		}
	}
	// The log: every copied change decodes as its account's, at the
	// positions after the templates'.
	s := openStore(t, dsn)
	pos, cs := changes(t, s, 0)
	if len(pos) != n+len(fillCountries) {
		t.Fatalf("log holds %d changes, want %d", len(pos), n+len(fillCountries))
	}
	for i, c := range cs[len(fillCountries):] {
		if c.Placement.AccountID != fillID(i) || c.Event.AccountID != fillID(i) {
			t.Fatalf("change at %d is of %q (event %q), want %s", pos[len(fillCountries)+i], c.Placement.AccountID, c.Event.AccountID, fillID(i))
		}
	}
	if size, err := s.LogSize(ctx); err != nil || size != int64(n+len(fillCountries)) {
		t.Errorf("LogSize = %d, %v; want %d", size, err, n+len(fillCountries))
	}
	// A write after the copies goes on from their versions and
	// positions, and another Router follows it.
	other := routertest.OnPostgres(t, dsn, nil)
	p, err := r.Lookup(fillID(2)) // US
	if err != nil {
		t.Fatal(err)
	}
	to := "aws-us-west-1"
	if p.DataCenter == to {
		to = "linode-us"
	}
	m, err := r.BeginMove(ctx, fillID(2), to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil { // fenced: other has applied it
		t.Fatal(err)
	}
	if p, err := other.Lookup(fillID(2)); err != nil || p.DataCenter != to || p.Version != 3 {
		t.Errorf("other Router: Lookup = %+v, %v; want version 3 on %s", p, err, to)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "new", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if head, err := s.Head(ctx); err != nil || head != uint64(n+len(fillCountries)+3) {
		t.Errorf("Head = %d, %v; want %d", head, err, n+len(fillCountries)+3)
	}
}
