package postgres_test

import (
	"context"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/domicile-go/domicile/residency/storetest"
)

// TestConformance runs the Store conformance suite against the PostgreSQL
// store, each subtest on a database of its own, reopened on the same
// database.
func TestConformance(t *testing.T) {
	ctx := context.Background()
	storetest.Run(t, func(t *testing.T) (residency.Store, func() (residency.Store, error)) {
		dsn := pgtest.Database(t)
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		return s, func() (residency.Store, error) { return postgres.Open(ctx, dsn) }
	})
}
