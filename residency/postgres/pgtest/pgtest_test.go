package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestDatabase checks that each test gets its own empty database that it
// may write to.
func TestDatabase(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.Database(t), pgtest.Database(t)
	if a == b {
		t.Fatalf("Database returned %q twice", a)
	}
	for _, dsn := range []string{a, b} {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("fresh database has %d tables", n)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://u:p@h:5/old?sslmode=disable", "postgres://u:p@h:5/new?sslmode=disable"},
		{"postgresql://h/", "postgresql://h/new"},
		{"host=h dbname=old", "host=h dbname=old dbname=new"},
	} {
		got, err := pgtest.WithDatabase(tc.dsn, "new")
		if err != nil || got != tc.want {
			t.Errorf("WithDatabase(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "new" {
			t.Errorf("ParseConfig(%q): database %v, %v; want new", got, cfg, err)
		}
	}
}

// TestReadOnlyRole: the role reads the schema's tables, and may neither
// write them nor create tables there.
func TestReadOnlyRole(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA "odd schema"; CREATE TABLE "odd schema".t (x int); INSERT INTO "odd schema".t VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	reader, err := pgx.Connect(ctx, pgtest.ReadOnlyRole(t, dsn, "odd schema"))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	var x int
	if err := reader.QueryRow(ctx, `SELECT x FROM "odd schema".t`).Scan(&x); err != nil || x != 7 {
		t.Errorf("SELECT as the reader = %d, %v; want 7", x, err)
	}
	for _, sql := range []string{`INSERT INTO "odd schema".t VALUES (8)`, `CREATE TABLE "odd schema".u (x int)`} {
		if _, err := reader.Exec(ctx, sql); err == nil {
			t.Errorf("%s as the reader succeeded", sql)
		}
	}
}
