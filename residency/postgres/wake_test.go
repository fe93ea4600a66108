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

// TestWakeupsPollWhileOwnAppendsNotify: Wakeups skips the notifications
// of the Store's own Appends, but still polls every poll interval (the
// Listener's promise, which covers what a notification does not say):
// a skipped notification must not put the next poll off. Here the Store
// appends every few tens of milliseconds for five poll intervals; without
// the fix each skipped notification restarted the wait for a poll, and
// no wake-up came at all.
func TestWakeupsPollWhileOwnAppendsNotify(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const poll = 300 * time.Millisecond
	s := openStore(t, dsn, postgres.WithPollInterval(poll), postgres.WithLease(time.Hour))
	wake, stop, err := s.Wakeups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	<-wake // the first, once it listens
	woke := 0
	end := time.Now().Add(5 * poll)
	for i := 0; time.Now().Before(end); i++ {
		if _, err := s.Append(ctx, []residency.Change{placed(fmt.Sprint("a-", i), "linode-eu", at)}, 0); err != nil {
			t.Fatal(err)
		}
		select {
		case <-wake:
			woke++
		default:
		}
		time.Sleep(poll / 10)
	}
	if woke == 0 {
		t.Errorf("no wake-up in %v of own Appends, with a poll interval of %v", 5*poll, poll)
	}
}
