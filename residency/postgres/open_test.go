package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestOpenConcurrently opens twenty stores on an empty database at once:
// all succeed, on one set of tables.
func TestOpenConcurrently(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const n = 20
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = postgres.Open(ctx, dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	for i, s := range stores {
		if err := s.Apply(ctx, []residency.Change{placed(fmt.Sprint("a", i), "linode-eu", at)}); err != nil {
			t.Fatalf("Apply through store %d: %v", i, err)
		}
	}
	if got := load(t, stores[0]); len(got) != n {
		t.Errorf("Load gave %d accounts, want %d", len(got), n)
	}
}

// TestOpenRefuses refuses schemas that are not domicile's, or of a newer
// format, and leaves them as they were.
func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		setup   []string // SQL run on the database first
		opts    []postgres.Option
		opened  bool // Open once before setup
		want    error
		wantMsg string
	}{
		{name: "someone's accounts table in schema domicile",
			setup: []string{"CREATE SCHEMA domicile", "CREATE TABLE domicile.accounts (id int PRIMARY KEY, balance numeric)"},
			want:  postgres.ErrForeign, wantMsg: `schema "domicile" holds accounts and no domicile format marker`},
		{name: "the application's own tables in public",
			setup: []string{"CREATE TABLE public.accounts (id int PRIMARY KEY, balance numeric)"},
			opts:  []postgres.Option{postgres.WithSchema("public")},
			want:  postgres.ErrForeign, wantMsg: `schema "public" holds accounts`},
		{name: "a meta table that is not domicile's",
			setup: []string{"CREATE SCHEMA domicile", "CREATE TABLE domicile.meta (key text, value text)"},
			want:  postgres.ErrForeign, wantMsg: "without a domicile format version"},
		{name: "a table added to domicile's schema", opened: true,
			setup: []string{"CREATE TABLE domicile.extra (x int)"},
			want:  postgres.ErrForeign, wantMsg: "extra.x integer"},
		{name: "a column added to domicile's table", opened: true,
			setup: []string{"ALTER TABLE domicile.accounts ADD COLUMN note text"},
			want:  postgres.ErrForeign, wantMsg: "accounts.note text"},
		{name: "a column changed", opened: true,
			setup: []string{"ALTER TABLE domicile.head ALTER COLUMN pos TYPE numeric"},
			want:  postgres.ErrForeign, wantMsg: "head.pos numeric"},
		{name: "a newer format", opened: true,
			setup: []string{"UPDATE domicile.meta SET value = '5' WHERE key = 'format'"},
			want:  residency.ErrFormat, wantMsg: "format 5"},
		{name: "a format that is not a number", opened: true,
			setup: []string{"UPDATE domicile.meta SET value = 'x' WHERE key = 'format'"},
			want:  residency.ErrCorrupt, wantMsg: `format version "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.Database(t)
			if tc.opened {
				s, err := postgres.Open(ctx, dsn, tc.opts...)
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
			}
			for _, sql := range tc.setup {
				exec(t, dsn, sql)
			}
			before := catalog(t, dsn)
			s, err := postgres.Open(ctx, dsn, tc.opts...)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Open = %v, want %v saying %q", err, tc.want, tc.wantMsg)
			}
			if after := catalog(t, dsn); after != before {
				t.Errorf("Open changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// catalog describes every table, column and schema of a database outside
// the system's, and the contents of domicile's meta table if any.
func catalog(t testing.TB, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var out string
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(table_schema || '.' || table_name || '.' || column_name || ' ' || data_type, E'\n'
		ORDER BY table_schema, table_name, ordinal_position), '') || E'\n' ||
		(SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace)
		FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`).Scan(&out); err != nil {
		t.Fatal(err)
	}
	var meta string
	if err := conn.QueryRow(ctx, `SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM domicile.meta`).Scan(&meta); err == nil {
		out += "\n" + meta
	}
	return out
}

// TestOpenEmptySchema uses a schema that exists but holds nothing, such as
// one a DBA created for domicile, and a second Open only reads.
func TestOpenEmptySchema(t *testing.T) {
	dsn := pgtest.Database(t)
	exec(t, dsn, "CREATE SCHEMA residency")
	s := openStore(t, dsn, postgres.WithSchema("residency"))
	if err := s.Apply(context.Background(), []residency.Change{placed("a", "linode-eu", at)}); err != nil {
		t.Fatal(err)
	}
	// A role that may only use the tables opens them too: Open does not
	// write a schema that is current.
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	role := "reader_" + cfg.Database // roles are the server's, databases the test's
	exec(t, dsn, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() {
		exec(t, dsn, "DROP OWNED BY "+role)
		exec(t, dsn, "DROP ROLE "+role)
	})
	exec(t, dsn, "GRANT USAGE ON SCHEMA residency TO "+role)
	exec(t, dsn, "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA residency TO "+role)
	r := openStore(t, fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=disable", cfg.Host, cfg.Port, cfg.Database, role), postgres.WithSchema("residency"))
	if got := load(t, r); len(got) != 1 {
		t.Errorf("Load as reader gave %d accounts, want 1", len(got))
	}
	if s.Schema() != "residency" || s.Lease() != postgres.DefaultLease {
		t.Errorf("Schema, Lease = %q, %v", s.Schema(), s.Lease())
	}
}

// TestOpenBadConnections gives clear errors for bad connection strings and
// unreachable servers, by the context's deadline.
func TestOpenBadConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// A server that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct {
		name, dsn string
		opts      []postgres.Option
		wantMsg   string
	}{
		{name: "not a URL", dsn: "postgres://app@db:port/x", wantMsg: "bad connection string"},
		{name: "unknown keyword", dsn: "host=db nonsense", wantMsg: "bad connection string"},
		{name: "nobody listening", dsn: fmt.Sprintf("postgres://app@127.0.0.1:%d/x?sslmode=disable", closedPort), wantMsg: "cannot connect"},
		{name: "a server that never answers", dsn: fmt.Sprintf("postgres://app@%s/x?sslmode=disable", silent.Addr()), wantMsg: "cannot connect"},
		{name: "empty schema name", dsn: "postgres://db/x", opts: []postgres.Option{postgres.WithSchema("")}, wantMsg: "schema name"},
		{name: "zero lease", dsn: "postgres://db/x", opts: []postgres.Option{postgres.WithLease(0)}, wantMsg: "lease"},
		{name: "pool and string", dsn: "postgres://db/x", opts: []postgres.Option{postgres.WithPool(&pgxpool.Pool{})}, wantMsg: "both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			s, err := postgres.Open(ctx, tc.dsn, tc.opts...)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Open = %v, want it to say %q", err, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Open = %v: the password leaks", err)
			}
		})
	}
}

// TestOpenWithPool uses the caller's pool and leaves it open.
func TestOpenWithPool(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool), postgres.WithSchema("other"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, []residency.Change{placed("a", "linode-eu", at)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Apply(ctx, []residency.Change{placed("b", "linode-eu", at)}); !errors.Is(err, postgres.ErrClosed) {
		t.Errorf("Apply after Close = %v, want ErrClosed", err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM other.accounts").Scan(&n); err != nil || n != 1 {
		t.Errorf("the pool after Close: %d accounts, %v; want 1, nil", n, err)
	}
}

// TestMultibyteSchemaName uses a schema name of 28 "é" (56
// bytes), which WithSchema accepts ("1 to 63 bytes"). Open succeeds, and
// then every write fails with ErrStoreFailed: the NOTIFY channel name is
// cut to 36 runes, not bytes (%.36s), and is longer than PostgreSQL's 63
// bytes. A schema name the store accepts must work; one it cannot use must
// be refused by Open, not by every later write.
func TestMultibyteSchemaName(t *testing.T) {
	dsn := pgtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	schema := strings.Repeat("é", 28)
	s, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema))
	if err != nil {
		// Refusing it up front keeps the promise too, with a typed error.
		if !errors.Is(err, residency.ErrInvalidOption) {
			t.Errorf("Open refused schema %q with %v; want an error matching ErrInvalidOption", schema, err)
		}
		return
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatalf("residency.Open: %v", err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Errorf("Place on schema %q (%d bytes), which Open accepted: %v; want it placed", schema, len(schema), err)
	}
}

// TestOpenOptionErrorsAreTyped gives postgres.Open options and
// connection strings it refuses at once. The project's rule: bad input
// gets a typed error that errors.Is matches, here residency.ErrInvalidOption
// as residency.Open uses for its own options, so that a caller can tell bad
// configuration from a database that is down (these matched no sentinel
// before; from an adversarial trial).
func TestOpenOptionErrorsAreTyped(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		conn string
		opt  postgres.Option
	}{
		"empty schema":     {"postgres://u@127.0.0.1:1/db", postgres.WithSchema("")},
		"long schema":      {"postgres://u@127.0.0.1:1/db", postgres.WithSchema(strings.Repeat("s", 64))},
		"zero lease":       {"postgres://u@127.0.0.1:1/db", postgres.WithLease(0)},
		"negative poll":    {"postgres://u@127.0.0.1:1/db", postgres.WithPollInterval(-time.Second)},
		"bad conn string":  {"postgres://%zz", postgres.WithLease(time.Second)},
		"nil Option":       {"postgres://u@127.0.0.1:1/db", nil},
		"schema with NUL":  {"postgres://u@127.0.0.1:1/db", postgres.WithSchema("a\x00b")},
		"schema not UTF-8": {"postgres://u@127.0.0.1:1/db", postgres.WithSchema("a\xffb")},
	} {
		_, err := postgres.Open(ctx, tc.conn, tc.opt)
		if err == nil {
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		if !errors.Is(err, residency.ErrInvalidOption) {
			t.Errorf("%s: Open error %q matches no sentinel (want residency.ErrInvalidOption or a postgres one)", name, err)
		}
	}
}

// TestOpenBadConnectionStringHidesPassword: Open's error for a connection
// string pgx cannot parse must not repeat its password. pgconn masks
// passwords in its parse errors on a best-effort basis only (its
// ParseConfigError says so): "password = s3cret" (spaces around "=",
// which libpq and pgx accept) and a URL whose query does not parse
// (";password=...") came out as they were, in an error the tools print.
func TestOpenBadConnectionStringHidesPassword(t *testing.T) {
	for _, dsn := range []string{
		"host=db password = s3cret port=abc",
		"host=db password='my s3cret' port=abc",
		"host=db password=s3cret\tport=abc",
		"postgres://app:s3cret@db:port/x",
		"postgres://app@db/x?password=s3cret&port=abc",
		"postgres://app:s3cret@db/x?sslmode=disable;password=s3cret",
		"postgres://app:s3%zzcret@db/x",
	} {
		_, err := postgres.Open(context.Background(), dsn)
		if !errors.Is(err, residency.ErrInvalidOption) {
			t.Errorf("Open(%q) = %v, want an error matching ErrInvalidOption", dsn, err)
			continue
		}
		if strings.Contains(err.Error(), "s3") {
			t.Errorf("Open(%q) = %v: the password leaks", dsn, err)
		}
		if !strings.Contains(err.Error(), "bad connection string") {
			t.Errorf("Open(%q) = %v, want it to say %q", dsn, err, "bad connection string")
		}
	}
}
