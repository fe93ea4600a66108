package residency_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// lostReply is a PostgreSQL store whose next Append commits and then
// reports a failure, as when the server's reply is lost: the store itself
// saw no failure, so the commit's notification carries its usual tag, and
// its Wakeups skip it as its own.
// With exit set instead, its next Append commits and then ends the
// calling goroutine (runtime.Goexit, as a test double's t.FailNow does).
type lostReply struct {
	*postgres.Store
	fail, exit atomic.Bool
}

func (s *lostReply) Append(ctx context.Context, changes []residency.Change, statuses uint64) (uint64, error) {
	pos, err := s.Store.Append(ctx, changes, statuses)
	if err == nil && s.exit.CompareAndSwap(true, false) {
		runtime.Goexit()
	}
	if err == nil && s.fail.CompareAndSwap(true, false) {
		return 0, errors.New("test: the reply was lost")
	}
	return pos, err
}

// TestSettledWriteIsFollowed: a write whose reply was lost, which the
// Router finds stored when it reads the account back, is answered as a
// success, and the Router's follower then reads the log up to it by
// itself: no notification wakes it (its own are skipped), and it neither
// polls nor renews its lease within the test.
func TestSettledWriteIsFollowed(t *testing.T) {
	ctx := context.Background()
	r, s := openLostReply(t)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "b", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	before := residency.AppliedPos(r)
	s.fail.Store(true)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "c", Country: "DE"}); err != nil {
		t.Fatalf("Place whose reply was lost, found stored: %v", err)
	}
	if s.fail.Load() {
		t.Fatal("the store's Append was not called")
	}
	waitApplied(t, r, before+1)
}

// TestExitedWriteIsFollowed: a write whose store call committed and then
// ended the leading caller's goroutine (a PromptStore's call runs in it)
// fails its batch, and the Router's follower then reads the log up to the
// write by itself, as after a lost reply (TestSettledWriteIsFollowed).
func TestExitedWriteIsFollowed(t *testing.T) {
	ctx := context.Background()
	r, s := openLostReply(t)
	before := residency.AppliedPos(r)
	s.exit.Store(true)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		r.Place(ctx, residency.PlaceRequest{AccountID: "b", Country: "DE"})
		t.Error("Place returned in the goroutine its store call ended")
	}()
	<-ended
	if s.exit.Load() {
		t.Fatal("the store's Append was not called")
	}
	waitApplied(t, r, before+1)
	if p, err := r.Lookup("b"); err != nil || p.DataCenter == "" {
		t.Errorf("Lookup of the account the exited write placed: %+v, %v", p, err)
	}
}

// openLostReply opens a Router on a lostReply store of a new database,
// with an hour's poll interval and lease (its follow goroutine neither
// polls nor renews, at a quarter of the lease, within a test), once the
// first wake-up of its Listener is past: another Router's write, which it
// applies once its Listener is connected, is at position 1.
func openLostReply(t *testing.T) (*residency.Router, *lostReply) {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.Database(t)
	ps, err := postgres.Open(ctx, dsn, postgres.WithPollInterval(time.Hour), postgres.WithLease(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s := &lostReply{Store: ps}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	r2 := routertest.OnPostgres(t, dsn, nil)
	if _, err := r2.Place(ctx, residency.PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, r, 1)
	return r, s
}

// waitApplied waits until r has applied the log up to pos, for at most
// 10 s.
func waitApplied(t *testing.T, r *residency.Router, pos uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for residency.AppliedPos(r) < pos {
		if time.Now().After(deadline) {
			t.Fatalf("the Router has applied the log up to %d, after 10 s waiting for %d", residency.AppliedPos(r), pos)
		}
		time.Sleep(time.Millisecond)
	}
}
