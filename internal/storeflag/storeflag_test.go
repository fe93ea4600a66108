package storeflag

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

func TestIsPostgresAndDescribe(t *testing.T) {
	tests := []struct {
		db       string
		postgres bool
		describe string
	}{
		{"domicile.db", false, "domicile.db"},
		{"/var/lib/postgres://x", false, "/var/lib/postgres://x"},
		{"postgres://app@db/helpdesk", true, "postgres://app@db/helpdesk"},
		{"postgresql://app:secret@db:5432/helpdesk?sslmode=disable", true, "postgresql://app:xxxxx@db:5432/helpdesk?sslmode=disable"},
	}
	for _, tt := range tests {
		got := struct {
			Postgres bool
			Describe string
		}{IsPostgres(tt.db), Describe(tt.db)}
		want := struct {
			Postgres bool
			Describe string
		}{tt.postgres, tt.describe}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.db, diff)
		}
	}
}

// TestOpen opens a file for a path, and refuses a bad PostgreSQL URL at
// once, without connecting.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Errorf("Sync on a file store: %v", err)
	}
	r.Close()
	if _, err := Open(ctx, "postgres://app@db:notaport/x"); err == nil {
		t.Error("Open of a bad URL succeeded")
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open of a bad URL waited: %v", err)
	}
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestOpenLogReadOnly: OpenLog opens a PostgreSQL database read-only:
// without domicile's tables it fails and creates none, and its store
// refuses writes.
func TestOpenLogReadOnly(t *testing.T) {
	ctx := context.Background()
	c, err := pgx.ParseConfig(pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	db := (&url.URL{Scheme: "postgres", User: url.User(c.User), Host: net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))),
		Path: "/" + c.Database, RawQuery: "sslmode=disable"}).String()
	if _, err := OpenLog(ctx, db); !errors.Is(err, postgres.ErrNoTables) {
		t.Fatalf("OpenLog of a database without domicile's tables = %v, want ErrNoTables", err)
	}
	if _, err := OpenLog(ctx, db); !errors.Is(err, postgres.ErrNoTables) {
		t.Fatalf("OpenLog again = %v, want ErrNoTables: the first created tables", err)
	}
	s, err := Open(ctx, db) // creates them
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ls, err := OpenLog(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	if err := ls.Apply(ctx, nil); !errors.Is(err, postgres.ErrReadOnly) {
		t.Errorf("Apply through OpenLog's store = %v, want postgres.ErrReadOnly", err)
	}
}
