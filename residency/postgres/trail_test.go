package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestHistoryCancelled: History on PostgreSQL with a cancelled context
// fails with an error matching the context's.
func TestHistoryCancelled(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t))
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.History(cctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("History(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := s.Trail(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := r.History(ctx, "a"); !errors.Is(err, residency.ErrClosed) {
		t.Errorf("History after Close = %v, want ErrClosed", err)
	}
}
