// Package storeflag opens the store a tool's -db flag names: a PostgreSQL
// database for a URL starting with postgres:// or postgresql://, else the
// embedded store file at that path.
package storeflag

import (
	"context"
	"strings"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
)

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

// Describe names the store for logs: a URL without its password, or the
// path.
func Describe(db string) string {
	if !IsPostgres(db) {
		return db
	}
	if i := strings.Index(db, "://"); i >= 0 {
		rest := db[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				return db[:i+3] + rest[:colon] + ":xxxxx" + rest[at:]
			}
		}
	}
	return db
}
