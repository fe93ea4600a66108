package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestApplyOnTheRoutersStoreWakes: a Router skips the wake-ups of its
// own writes, but not those of the Store's Apply called by anyone else
// (another goroutine of the program on the same Store): it applies them at
// once, not at its next renewal or poll.
func TestApplyOnTheRoutersStoreWakes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	// Polling once an hour and renewing every quarter of a minute: only a
	// notification makes the Router read the log within seconds.
	s := openStore(t, dsn, postgres.WithPollInterval(time.Hour), postgres.WithLease(time.Minute))
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "own", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, []residency.Change{placed("by-apply", "linode-eu", at)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := r.Lookup("by-apply")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("not applied within 10 s, long before the next renewal (15 s) would read it: %w", err))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
