package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// scalar runs a query of one value on dsn.
func scalar[T any](t *testing.T, dsn, sql string, args ...any) T {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v T
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// TestReadOnly reads a log whose latest hashes no writer stored, as a role
// that may only SELECT: the store computes them in memory, stores nothing,
// and refuses writes.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	var changes []residency.Change
	// write appends cs through a writer it closes after.
	write := func(cs ...residency.Change) {
		t.Helper()
		w := openStore(t, dsn)
		if err := w.Apply(ctx, cs); err != nil {
			t.Fatal(err)
		}
		w.Close()
		changes = append(changes, cs...)
	}
	for i := range 10 {
		write(placed(fmt.Sprintf("a-%d", i), "linode-eu", at))
	}
	// Only the hashes of the first four entries stay, as if the writer of
	// the others had stopped before storing them.
	exec(t, dsn, "DELETE FROM domicile.loghashes WHERE idx >= $1", tlog.StoredHashCount(4))
	stored := func() int64 { return scalar[int64](t, dsn, "SELECT count(*) FROM domicile.loghashes") }
	before := stored()

	r := openStore(t, pgtest.ReadOnlyRole(t, dsn, "domicile"), postgres.ReadOnly())
	wantLog(t, r, changes)
	if diff := cmp.Diff(load(t, openStore(t, dsn)), load(t, r)); diff != "" {
		t.Errorf("Load read-only (-writer's +read-only's):\n%s", diff)
	}
	if after := stored(); after != before {
		t.Errorf("table loghashes holds %d hashes after the read-only store's reads, want the %d it held", after, before)
	}

	// The log grows: the read-only store hashes the new entries too. (Their
	// writer stores their hashes, and the missing ones before them: remove
	// them again.)
	write(placed("b", "linode-eu", at), residency.Change{DataCenter: &residency.DataCenterState{ID: "linode-eu", Status: provider.Draining, Changed: at, Version: 1}})
	exec(t, dsn, "DELETE FROM domicile.loghashes WHERE idx >= $1", tlog.StoredHashCount(4))
	wantLog(t, r, changes)
	if after := stored(); after != before {
		t.Errorf("table loghashes holds %d hashes after the read-only store's reads, want the %d it held", after, before)
	}

	if err := r.Apply(ctx, []residency.Change{placed("c", "linode-eu", at)}); !errors.Is(err, postgres.ErrReadOnly) {
		t.Errorf("Apply on a read-only store = %v, want ErrReadOnly", err)
	}
	if _, _, err := r.Join(ctx, "auditor", 0); !errors.Is(err, postgres.ErrReadOnly) {
		t.Errorf("Join on a read-only store = %v, want ErrReadOnly", err)
	}
	if _, err := residency.Open(ctx, residency.WithStore(r)); err == nil {
		t.Error("a Router opened on a read-only store")
	}
}

// holds describes what schema domicile of dsn holds: whether it exists,
// its tables and their columns, and the rows of its meta table.
func holds(t *testing.T, dsn string) string {
	t.Helper()
	out := scalar[string](t, dsn, `SELECT CASE WHEN EXISTS (SELECT FROM pg_namespace WHERE nspname = 'domicile') THEN 'schema' ELSE 'no schema' END
		|| coalesce((SELECT string_agg(' ' || table_name || '.' || column_name, '' ORDER BY table_name, ordinal_position)
			FROM information_schema.columns WHERE table_schema = 'domicile'), '')`)
	if scalar[bool](t, dsn, `SELECT to_regclass('domicile.meta') IS NOT NULL`) {
		out += scalar[string](t, dsn, `SELECT coalesce(string_agg(' ' || key || '=' || left(value, 20), '' ORDER BY key), '') FROM domicile.meta`)
	}
	return out
}

// TestReadOnlyRefuses: a read-only Open of a database without domicile's
// tables, or with tables to upgrade, fails and leaves it as it was, even
// for a role that could write.
func TestReadOnlyRefuses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dsn string)
		want  []error
	}{
		{"no schema", func(t *testing.T, dsn string) {}, []error{postgres.ErrNoTables}},
		{"empty schema", func(t *testing.T, dsn string) { exec(t, dsn, "CREATE SCHEMA domicile") }, []error{postgres.ErrNoTables}},
		{"older format", func(t *testing.T, dsn string) {
			openStore(t, dsn).Close()
			exec(t, dsn, "UPDATE domicile.meta SET value = '2' WHERE key = 'format'")
		}, []error{postgres.ErrNeedsUpgrade, residency.ErrFormat}},
		{"newer format", func(t *testing.T, dsn string) {
			openStore(t, dsn).Close()
			exec(t, dsn, "UPDATE domicile.meta SET value = '1000' WHERE key = 'format'")
		}, []error{residency.ErrFormat}},
		{"foreign tables", func(t *testing.T, dsn string) {
			exec(t, dsn, "CREATE SCHEMA domicile")
			exec(t, dsn, "CREATE TABLE domicile.accounts (id text)")
		}, []error{postgres.ErrForeign}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.Database(t)
			tc.setup(t, dsn)
			before := holds(t, dsn)
			s, err := postgres.Open(ctx, dsn, postgres.ReadOnly())
			if err == nil {
				s.Close()
				t.Fatal("Open read-only succeeded")
			}
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("Open read-only = %v, want an error matching %v", err, want)
				}
			}
			if diff := cmp.Diff(before, holds(t, dsn)); diff != "" {
				t.Errorf("Open read-only changed the schema (-before +after):\n%s", diff)
			}
		})
	}
}

// TestNoCreate: Open with NoCreate refuses a database without domicile's
// tables (no schema, or an empty one) with ErrNoTables and leaves it as it
// was; on domicile's tables it opens as Open does.
func TestNoCreate(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dsn string)
		want  error
	}{
		{"no schema", func(t *testing.T, dsn string) {}, postgres.ErrNoTables},
		{"empty schema", func(t *testing.T, dsn string) { exec(t, dsn, "CREATE SCHEMA domicile") }, postgres.ErrNoTables},
		{"domicile's tables", func(t *testing.T, dsn string) { openStore(t, dsn).Close() }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.Database(t)
			tc.setup(t, dsn)
			before := holds(t, dsn)
			s, err := postgres.Open(ctx, dsn, postgres.NoCreate())
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Open with NoCreate = %v, want %v", err, tc.want)
			}
			if diff := cmp.Diff(before, holds(t, dsn)); diff != "" {
				t.Errorf("Open with NoCreate changed the schema (-before +after):\n%s", diff)
			}
		})
	}
}

// TestReadOnlyHashesAfterFailedPage: a read-only store hashes the log in
// memory a page at a time, appending each entry to its tree's edge as it
// reads it (hashEntries); the page's hashes are kept only once the whole
// page was read. A page that fails after some entries (here a row damaged
// for a moment; a connection lost mid-page does the same, and readSome
// rightly does not run such a page again) leaves the edge past the hashes
// kept.
// The edge now moves on only with a page kept whole: once the row is as it
// was, the store's tree hash is the log's. The next page was hashed from
// the advanced edge, and every later tree hash, proof and checkpoint of
// that store was wrong. Found by a review.
func TestReadOnlyHashesAfterFailedPage(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	w := openStore(t, dsn)
	for i := range 10 {
		if err := w.Apply(ctx, []residency.Change{placed(fmt.Sprintf("a-%d", i), "linode-eu", at)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	// No stored hashes: the read-only store computes them all.
	exec(t, dsn, "DELETE FROM domicile.loghashes")
	ro := pgtest.ReadOnlyRole(t, dsn, "domicile")
	want, err := tlog.TreeHash(10, residency.HashReader(ctx, openStore(t, ro, postgres.ReadOnly())))
	if err != nil {
		t.Fatal(err)
	}

	r := openStore(t, ro, postgres.ReadOnly())
	start := scalar[int64](t, dsn, "SELECT min(pos) - 1 FROM domicile.changes")
	orig := scalar[string](t, dsn, "SELECT change::text FROM domicile.changes WHERE pos = $1", start+4)
	exec(t, dsn, "UPDATE domicile.changes SET change = '[]' WHERE pos = $1", start+4) // entry 3 fails to decode
	if _, err := tlog.TreeHash(10, residency.HashReader(ctx, r)); err == nil {
		t.Fatal("tree hash with a damaged entry: no error")
	}
	exec(t, dsn, "UPDATE domicile.changes SET change = $1::json WHERE pos = $2", orig, start+4) // as it was

	got, err := tlog.TreeHash(10, residency.HashReader(ctx, r))
	if err != nil || got != want {
		t.Errorf("tree hash of 10 entries after a page that failed at entry 3 = %v, %v; want %v, nil (a fresh read-only store's)", got, err, want)
	}
}
