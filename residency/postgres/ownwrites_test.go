package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// readCounter is a Store that counts the calls of Changes and the changes
// they give.
type readCounter struct {
	*postgres.Store
	calls, read atomic.Int64
}

func (c *readCounter) Changes(ctx context.Context, after uint64, fn func(uint64, residency.Change) error) (uint64, error) {
	defer c.calls.Add(1)
	return c.Store.Changes(ctx, after, func(pos uint64, ch residency.Change) error {
		c.read.Add(1)
		return fn(pos, ch)
	})
}

// countingRouter opens a Router on a store that counts its reads of the
// log, with a poll interval and a lease of an hour (its follower's own
// timer reads the log every quarter of the lease): only notifications
// wake it within a test, unless opts say otherwise.
func countingRouter(t *testing.T, dsn string, opts ...postgres.Option) (*residency.Router, *readCounter) {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, append([]postgres.Option{postgres.WithPollInterval(time.Hour), postgres.WithLease(time.Hour)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c := &readCounter{Store: s}
	r, err := residency.Open(ctx, residency.WithStore(c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, c
}

// TestOwnWritesNotReadBack: a Router that writes right after what it has
// read knows its writes' positions from Append and does not read them
// back from the log (Sync returns at once); when another Router wrote in
// between, it reads the log by itself, with no wake-up from the store.
// The store here only polls, once an hour, so nothing else wakes it.
func TestOwnWritesNotReadBack(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a, c := countingRouter(t, dsn, postgres.WithPollOnly())
	// The first wake-up reads the log once, at once: let it, so that it
	// does not read what follows.
	eventually(t, "the Router reads the log once", func() error {
		if c.calls.Load() == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	for i := range 20 {
		if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("a-", i), Country: "DE"}); err != nil {
			t.Fatal(err)
		}
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.read.Load(); n != 0 {
		t.Errorf("the Router read %d changes back from the log, want 0: they were its own", n)
	}

	b := routertest.OnPostgres(t, dsn, nil)
	if _, err := b.Place(ctx, residency.PlaceRequest{AccountID: "b-0", Country: "US"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: "a-20", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first Router applies the other's write", func() error {
		_, err := a.Lookup("b-0")
		return err
	})
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.read.Load(); n != 2 {
		t.Errorf("the Router read %d changes from the log, want 2: the other Router's and its own after it", n)
	}
}

// TestOwnNotificationsWakeNoOne: with notifications on, a Router's own
// Places wake its follower for none of them, whatever the order in which
// its Append's reply and its notification arrive (the notification
// carries the writing Store's tag); an Apply through another Store on the
// same database wakes it. The notifications come in commit order, so once
// the other Store's change is applied every earlier one has been handled.
func TestOwnNotificationsWakeNoOne(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	r, c := countingRouter(t, dsn)
	other := openStore(t, dsn)
	// A first change from elsewhere, once the Router listens: after it is
	// applied, the wake-ups of the start are over.
	if err := other.Apply(ctx, []residency.Change{placed("x-0", "linode-eu", at)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Router applies the other Store's first change", func() error {
		_, err := r.Lookup("x-0")
		return err
	})
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before := c.calls.Load()
	for i := range 100 {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("a-", i), Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Apply(ctx, []residency.Change{placed("x-1", "linode-eu", at)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Router applies the other Store's second change", func() error {
		_, err := r.Lookup("x-1")
		return err
	})
	// One wake-up, for x-1: catchUp reads the log at most three times on
	// one.
	if n := c.calls.Load() - before; n > 3 {
		t.Errorf("the Router read the log %d times for 100 Places of its own and one change from elsewhere, want at most 3", n)
	}
}

// TestLateCommitAfterFailedAppendWakes: an Append that failed without
// saying whether it committed (here it timed out waiting for the head
// row) may still commit later: the server runs the statement on when the
// client's cancel request is lost or comes too late, or waits for a
// synchronous standby and then commits. That commit's notification,
// which carries the tag the Append was sent with, must wake the
// Store's Wakeups: the Router settled the write and read the log before
// it landed, and has no other way to learn it until its next renewal or
// poll (an hour here). The late notification is sent by hand, with the
// tag of the Store's Appends before the failure.
func TestLateCommitAfterFailedAppendWakes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn, postgres.WithPollInterval(time.Hour), postgres.WithLease(time.Hour))
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.Channel()}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	wake, stop, err := s.Wakeups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	<-wake // the first, once it listens

	// An Append that succeeds: its notification gives the tag.
	if _, err := s.Append(ctx, []residency.Change{placed("a-0", "linode-eu", at)}, 0); err != nil {
		t.Fatal(err)
	}
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, tag, ok := strings.Cut(n.Payload, " ")
	if !ok {
		t.Fatalf("an Append's notification %q carries no tag", n.Payload)
	}

	// An Append that times out waiting for the head row.
	lock, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pos FROM domicile.head FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = s.Append(actx, []residency.Change{placed("a-1", "linode-eu", at)}, 0)
	cancel()
	if err == nil || errors.Is(err, residency.ErrConflict) {
		t.Fatalf("Append while the head row is locked: %v, want an unknown outcome", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Its late commit's notification.
	if _, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", s.Channel(), "2 "+tag); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("the late commit of an Append that failed woke no one within 10 s (the next poll is in an hour)")
	}
}
