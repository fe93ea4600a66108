// Package storeflag opens the store a tool's -db flag names: a PostgreSQL
// database for a URL starting with postgres:// or postgresql://, else the
// embedded store file at that path; and reads the catalog its -catalog
// flag names.
package storeflag

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
)

// CatalogUsage is the help text of a tool's -catalog flag.
const CatalogUsage = "the catalog `FILE` (JSON, as provider.LoadCatalog reads it) the backend's Routers use (default: the built-in catalog)"

// Catalog reads the catalog file a -catalog flag names
// ([provider.LoadCatalog]); "" names [provider.DefaultCatalog]. A tool
// must open its Router with the same catalog as the backend it works
// beside: another catalog places accounts on, and moves them into, data
// centers the backend's does not offer (or not yet). The error names the
// file, and matches [os.ErrNotExist] for a missing file and
// [provider.ErrInvalidCatalog] for one that cannot be used.
func Catalog(path string) (*provider.Catalog, error) {
	if path == "" {
		return provider.DefaultCatalog(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	defer f.Close()
	c, err := provider.LoadCatalog(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// IsPostgres reports whether db is a PostgreSQL URL.
func IsPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Open opens the store db names: [postgres.Open] for a PostgreSQL URL,
// [residency.OpenFileStore] for a path.
func Open(ctx context.Context, db string) (residency.Store, error) {
	if IsPostgres(db) {
		return postgres.Open(ctx, db)
	}
	return residency.OpenFileStore(ctx, db)
}

// OpenExisting opens the store db names, as [Open] does, but creates
// none, for a tool that works on an existing store only (where a mistyped
// -db would otherwise get a new, empty one): a path where no file exists
// is an error matching [os.ErrNotExist], a PostgreSQL database without
// domicile's tables one matching [postgres.ErrNoTables]
// ([postgres.NoCreate]). A store of an older format is upgraded, as by
// Open.
func OpenExisting(ctx context.Context, db string) (residency.Store, error) {
	if IsPostgres(db) {
		return postgres.Open(ctx, db, postgres.NoCreate())
	}
	if _, err := os.Stat(db); err != nil {
		return nil, err // *PathError names the file
	}
	return residency.OpenFileStore(ctx, db)
}

// OpenLog opens the store db names read-only, to read its audit log: the
// PostgreSQL store for a URL ([postgres.ReadOnly]), the store file at a
// path ([residency.OpenFileStoreReadOnly]). Neither creates, upgrades or
// writes anything.
func OpenLog(ctx context.Context, db string) (residency.LogStore, error) {
	if IsPostgres(db) {
		return postgres.Open(ctx, db, postgres.ReadOnly())
	}
	return residency.OpenFileStoreReadOnly(ctx, db)
}

// Describe names the store for logs: a URL with its passwords masked
// (the user info's, and the password and sslpassword parameters of the
// query, which pgx reads too; a query that does not parse is shown as
// "..."), or the path.
func Describe(db string) string {
	if !IsPostgres(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return db[:strings.Index(db, "://")+3] + "..." // unparsable: show no part that may hold a password
	}
	// u.Query drops the pairs it cannot parse, a password among them
	// perhaps: a query that does not parse is not shown.
	if q, err := url.ParseQuery(u.RawQuery); err != nil {
		u.RawQuery = "..."
	} else if q.Has("password") || q.Has("sslpassword") {
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
