package main

import (
	"context"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
)

// openPostgresLog opens the PostgreSQL store at url.
func openPostgresLog(ctx context.Context, url string) (residency.LogStore, error) {
	s, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	return s, nil
}
