package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// TestChangesCommitOrder interleaves two transactions: the first to start
// is held inside its transaction while the second commits. Positions
// follow commit order, so a reader that has read the second's change
// reads the first's after it, never skipping it.
func TestChangesCommitOrder(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)
	x1 := placed("x", "linode-eu", at)
	if err := s.Apply(ctx, []residency.Change{x1}); err != nil {
		t.Fatal(err)
	}
	// Another transaction writes x's next version and holds it
	// uncommitted: the Apply of the same version must wait for it inside
	// its own transaction.
	blocker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO domicile.events (account, version, prev, time_ns, kind, source, target, rule, reference, move_id)
		VALUES ('x', 2, 1, 0, 'move-begun', '', '', '', '', '')`); err != nil {
		t.Fatal(err)
	}

	x2 := next(x1, residency.MoveBegun, at, nil)
	held := make(chan error, 1)
	go func() { held <- s.Apply(ctx, []residency.Change{x2}) }()
	waitFor(t, "the first transaction to wait for the lock", func() bool {
		var n int
		err := blocker.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE NOT granted").Scan(&n)
		return err == nil && n > 0
	})

	// A writer waiting inside its transaction holds nobody up: the
	// second commits meanwhile (or the test fails, not hangs).
	y1 := placed("y", "linode-eu", at)
	yctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Apply(yctx, []residency.Change{y1}); err != nil {
		t.Fatalf("a second Apply while the first waits: %v", err)
	}
	pos, cs := changes(t, s, 1)
	if diff := cmp.Diff([]residency.Change{y1}, cs); diff != "" || !cmp.Equal(pos, []uint64{2}) {
		t.Fatalf("while the first is held: positions %v, changes (-want +got):\n%s", pos, diff)
	}
	select {
	case err := <-held:
		t.Fatalf("the held Apply returned %v", err)
	default:
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	pos, cs = changes(t, s, 2)
	if diff := cmp.Diff([]residency.Change{x2}, cs); diff != "" || !cmp.Equal(pos, []uint64{3}) {
		t.Fatalf("after it commits: positions %v, changes (-want +got):\n%s", pos, diff)
	}
}

// TestChangesConcurrentWriters has writers on several stores commit while
// a reader follows the log: the reader sees every change once, at
// positions without gaps, each account's versions in order, and a unit's
// changes together.
func TestChangesConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const writers, units = 6, 40
	stores := make([]*postgres.Store, writers)
	for i := range stores {
		stores[i] = openStore(t, dsn)
	}
	reader := openStore(t, dsn)

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			cur := map[int]residency.Change{}
			for u := range units {
				// Each unit: two changes of two accounts of this writer.
				var unit []residency.Change
				for k := range 2 {
					a := (u + k) % 5
					c, ok := cur[a]
					if !ok {
						c = placed(fmt.Sprintf("w%d-a%d", w, a), "linode-eu", at)
					} else {
						c = next(c, residency.MoveBegun, at, nil)
					}
					cur[a] = c
					unit = append(unit, c)
				}
				if err := stores[w].Apply(ctx, unit); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	const total = writers * units * 2
	var seen []residency.Change
	last := uint64(0)
	follow := func() {
		var err error
		last, err = reader.Changes(ctx, last, func(pos uint64, c residency.Change) error {
			if pos != uint64(len(seen))+1 {
				return fmt.Errorf("position %d after %d changes", pos, len(seen))
			}
			seen = append(seen, c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		follow()
	}
	follow()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != total {
		t.Fatalf("followed %d changes, want %d", len(seen), total)
	}
	version := map[string]uint64{}
	for i, c := range seen {
		id := c.Placement.AccountID
		if c.Placement.Version != version[id]+1 {
			t.Fatalf("change %d: %s at version %d after %d", i+1, id, c.Placement.Version, version[id])
		}
		version[id] = c.Placement.Version
		if i%2 == 1 && seen[i-1].Placement.AccountID[:2] != id[:2] {
			t.Fatalf("changes %d and %d of one unit came apart: %s, %s", i, i+1, seen[i-1].Placement.AccountID, id)
		}
	}
	for _, a := range load(t, reader) {
		if a.Placement.Version != version[a.Placement.AccountID] {
			t.Errorf("%s: stored at version %d, followed to %d", a.Placement.AccountID, a.Placement.Version, version[a.Placement.AccountID])
		}
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// while: the tests wait for events, never for fixed times.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wake waits for a wake-up of l.
func wake(t testing.TB, l *postgres.Listener, what string) {
	t.Helper()
	select {
	case <-l.C:
	case <-time.After(30 * time.Second):
		t.Fatalf("no wake-up: %s", what)
	}
}

// TestListenerNotifications: with polling out of the way (an hour), a
// change committed through another store wakes the listener, by
// notification.
func TestListenerNotifications(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn, postgres.WithPollInterval(time.Hour))
	other := openStore(t, dsn)
	l, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wake(t, l, "the first, once listening")
	if ok, err := l.Listening(); !ok || err != nil {
		t.Fatalf("Listening() = %v, %v after the first wake-up", ok, err)
	}
	last := uint64(0)
	for i := range 3 {
		c := placed(fmt.Sprint("n", i), "linode-eu", at)
		if err := other.Apply(ctx, []residency.Change{c}); err != nil {
			t.Fatal(err)
		}
		wake(t, l, "after a commit")
		pos, cs := changes(t, s, last)
		if diff := cmp.Diff([]residency.Change{c}, cs); diff != "" {
			t.Fatalf("changes after wake-up %d (-want +got):\n%s", i, diff)
		}
		last = pos[0]
	}
}

// TestListenerReconnects: the listener's connection is terminated; it
// reconnects by itself, wakes its follower to read what it missed, and
// listens again.
func TestListenerReconnects(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn, postgres.WithPollInterval(time.Hour))
	other := openStore(t, dsn)
	l, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wake(t, l, "the first, once listening")

	cfg, _ := pgx.ParseConfig(dsn)
	exec(t, pgtest.AdminDSN(t), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'domicile listener'", cfg.Database)
	// Committed while the listener is cut off: its notification is lost.
	missed := placed("missed", "linode-eu", at)
	if err := other.Apply(ctx, []residency.Change{missed}); err != nil {
		t.Fatal(err)
	}
	got := follow(t, s, l, 0, 1)
	if diff := cmp.Diff([]residency.Change{missed}, got); diff != "" {
		t.Fatalf("after reconnecting (-want +got):\n%s", diff)
	}
	waitFor(t, "the listener to listen again", func() bool { ok, _ := l.Listening(); return ok })
	for len(l.C) > 0 {
		<-l.C
	}
	after := placed("after", "linode-eu", at)
	if err := other.Apply(ctx, []residency.Change{after}); err != nil {
		t.Fatal(err)
	}
	wake(t, l, "a notification after reconnecting")
	if _, cs := changes(t, s, 1); !cmp.Equal([]residency.Change{after}, cs) {
		t.Fatalf("after the notification: %v", cs)
	}
}

// follow reads the log as a follower does, on every wake-up, until it has
// n changes after position after.
func follow(t testing.TB, s *postgres.Store, l *postgres.Listener, after uint64, n int) []residency.Change {
	t.Helper()
	var got []residency.Change
	for len(got) < n {
		wake(t, l, fmt.Sprintf("%d of %d changes read", len(got), n))
		_, cs := changes(t, s, after+uint64(len(got)))
		got = append(got, cs...)
	}
	return got
}

// TestListenerPollOnly never listens, as behind a proxy that pools by
// transaction: polling alone delivers every change.
func TestListenerPollOnly(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn, postgres.WithPollOnly(), postgres.WithPollInterval(20*time.Millisecond))
	other := openStore(t, dsn)
	l, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var want []residency.Change
	for i := range 3 {
		c := placed(fmt.Sprint("p", i), "linode-eu", at)
		if err := other.Apply(ctx, []residency.Change{c}); err != nil {
			t.Fatal(err)
		}
		want = append(want, c)
	}
	if diff := cmp.Diff(want, follow(t, s, l, 0, 3)); diff != "" {
		t.Fatalf("polled changes (-want +got):\n%s", diff)
	}
	if ok, err := l.Listening(); ok || err != nil {
		t.Errorf("Listening() = %v, %v; want false, nil when polling only", ok, err)
	}
	cfg, _ := pgx.ParseConfig(dsn)
	var n int
	conn, err := pgx.Connect(ctx, pgtest.AdminDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'domicile listener'", cfg.Database).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d listener connections, %v; want none", n, err)
	}
}

// TestCloseStopsListeners: closing the store stops its listeners.
func TestCloseStopsListeners(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wake(t, l, "the first")
	s.Close()
	l.Close() // returns: the listener has stopped
	if _, err := s.Listen(ctx); err != postgres.ErrClosed {
		t.Errorf("Listen after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Head(ctx); err != postgres.ErrClosed {
		t.Errorf("Head after Close = %v, want ErrClosed", err)
	}
}
