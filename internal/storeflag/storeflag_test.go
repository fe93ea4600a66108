package storeflag

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/provider"
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

// TestDescribeMasksPasswordParameter: Describe names the store for logs
// with its passwords masked, and pgx takes the password from the URL's
// query too (postgres://app@db/helpdesk?password=...), as libpq does.
// Before, Describe masked only the password of the URL's user info
// (url.URL.Redacted), so the other was printed as it was: by
// examples/accountcreation's "listening on" line, and by
// examples/migrate's usage error for a database without domicile's tables
// and its dry run's refusal of an older format.
func TestDescribeMasksPasswordParameter(t *testing.T) {
	for _, db := range []string{
		"postgres://app@db/helpdesk?password=s3cret",
		"postgresql://app@db:5432/helpdesk?sslmode=disable&password=s3cret",
		"postgres://db/helpdesk?user=app&password=s3cret",
	} {
		got := Describe(db)
		if strings.Contains(got, "s3cret") {
			t.Errorf("Describe(%s) = %s, which shows the password", db, got)
		}
		if !strings.Contains(got, "password=xxxxx") || !strings.Contains(got, "/helpdesk") {
			t.Errorf("Describe(%s) = %s, want the URL with its password parameter masked", db, got)
		}
	}
}

// TestDescribeMasksPasswordInBadQuery: a URL whose query does not parse
// (a ';' in it, which url.ParseQuery refuses) kept its query as it was,
// password parameter included: u.Query() drops the pairs it cannot parse,
// so Describe found no password to mask and printed the raw query.
func TestDescribeMasksPasswordInBadQuery(t *testing.T) {
	for _, db := range []string{
		"postgres://app@db/helpdesk?sslmode=disable;password=s3cret",
		"postgres://app@db/helpdesk?password=s3cret;x",
		"postgres://app@db/helpdesk?password=%zzs3cret",
	} {
		if got := Describe(db); strings.Contains(got, "s3cret") || !strings.HasPrefix(got, "postgres://app@db/helpdesk") {
			t.Errorf("Describe(%s) = %s, want the URL without its password", db, got)
		}
	}
}

// TestDescribeMasksSSLPassword: pgx reads the passphrase of the client's
// TLS key from the URL's sslpassword parameter; Describe printed it.
func TestDescribeMasksSSLPassword(t *testing.T) {
	db := "postgres://app@db/helpdesk?sslmode=verify-full&sslkey=/k.pem&sslpassword=s3cret"
	if got := Describe(db); strings.Contains(got, "s3cret") || !strings.Contains(got, "sslpassword=xxxxx") {
		t.Errorf("Describe(%s) = %s, want sslpassword masked", db, got)
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

// TestOpenExisting: OpenExisting creates no store: a path without a file
// and a database without domicile's tables are errors that leave them so;
// existing stores open.
func TestOpenExisting(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "x.db")
	db := pgtest.DatabaseURL(t)
	for _, tt := range []struct {
		db   string
		want error
	}{
		{file, os.ErrNotExist},
		{db, postgres.ErrNoTables},
	} {
		if _, err := OpenExisting(ctx, tt.db); !errors.Is(err, tt.want) {
			t.Errorf("OpenExisting(%s) with no store there = %v, want an error matching %v", tt.db, err, tt.want)
		}
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenExisting created the store file: Stat = %v", err)
	}
	if _, err := OpenLog(ctx, db); !errors.Is(err, postgres.ErrNoTables) {
		t.Errorf("OpenExisting created domicile's tables: OpenLog = %v, want ErrNoTables", err)
	}
	for _, d := range []string{file, db} {
		s, err := Open(ctx, d) // creates it
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s, err = OpenExisting(ctx, d); err != nil {
			t.Errorf("OpenExisting(%s) of an existing store: %v", d, err)
			continue
		}
		s.Close()
	}
}

// TestCatalog: "" is the default catalog, a file is read with
// provider.LoadCatalog, and the errors name the file.
func TestCatalog(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	def, err := Catalog("")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(provider.DefaultCatalog().All(), def.All()); diff != "" {
		t.Errorf(`Catalog("") is not the default catalog (-want +got):\n%s`, diff)
	}
	own := write("catalog.json", `{"datacenters": [
 {"id": "linode-eu", "provider": "linode", "region": "EU"},
 {"id": "aws-eu-west-1", "provider": "aws", "region": "EU", "status": "offline"}]}`)
	c, err := Catalog(own)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, dc := range c.All() {
		got = append(got, dc.ID+" "+string(dc.Status))
	}
	if diff := cmp.Diff([]string{"aws-eu-west-1 offline", "linode-eu active"}, got); diff != "" {
		t.Errorf("Catalog(%s) mismatch (-want +got):\n%s", own, diff)
	}

	bad := write("bad.json", `{"datacenters": [{"id": "x", "provider": "linode", "region": "Mars"}]}`)
	missing := filepath.Join(dir, "missing.json")
	for _, tt := range []struct {
		path string
		want error
	}{
		{bad, provider.ErrInvalidCatalog},
		{missing, os.ErrNotExist},
	} {
		_, err := Catalog(tt.path)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("Catalog(%s) = %v, want an error matching %v and naming the file", tt.path, err, tt.want)
		}
	}
}
