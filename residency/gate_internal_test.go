package residency

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestStaleGateStopsEveryMemoryRead checks that the reads that decide
// where data lives and who may touch it all answer ErrStale while the
// lease has run out, and answer again once it is renewed.
func TestStaleGateStopsEveryMemoryRead(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.Place(ctx, PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string]func() error{
		"Lookup":        func() error { _, err := r.Lookup("acme"); return err },
		"MayAccess":     func() error { return r.MayAccess("acme", string(p.Provider)) },
		"SubProcessors": func() error { _, err := r.SubProcessors("acme"); return err },
		"Ready":         r.Ready,
	}
	r.gate.Or(gateStale)
	for name, read := range reads {
		if err := read(); !errors.Is(err, ErrStale) {
			t.Errorf("%s with the lease run out = %v, want ErrStale", name, err)
		}
	}
	r.gate.And(^gateStale)
	for name, read := range reads {
		if err := read(); err != nil {
			t.Errorf("%s once renewed = %v, want nil", name, err)
		}
	}
	r.Close()
	for name, read := range reads {
		if err := read(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// TestStaleErrorSaysWhy checks that once the lease runs out, the reads
// answer an error that matches ErrStale and tells how the last call to
// the store failed since the last renewal (and only that one), without
// matching that failure's sentinels, and that Lookup allocates nothing
// either way. The follower is driven by hand: no store is involved.
func TestStaleErrorSaysWhy(t *testing.T) {
	ctx := context.Background()
	r, _ := handFollowed(t, &follower{})
	// runOut ends the lease now and waits for its timer.
	runOut := func() {
		t.Helper()
		r.renewed(time.Now(), false)
		for r.gate.Load()&gateStale == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	lookup := func() string {
		t.Helper()
		_, err := r.Lookup("acme")
		if !errors.Is(err, ErrStale) {
			t.Fatalf("Lookup = %v, want ErrStale", err)
		}
		if n := testing.AllocsPerRun(100, func() { r.Lookup("acme") }); n != 0 {
			t.Errorf("Lookup while stale allocates %v times, want 0", n)
		}
		return err.Error()
	}
	denied := errors.New("ERROR: permission denied for table members (SQLSTATE 42501)")
	r.failed(opRenew, denied)
	if _, err := r.Lookup("acme"); err != nil {
		t.Fatalf("Lookup within the lease = %v, want nil", err)
	}
	// The failure came before the renewal that runOut makes: not why.
	runOut()
	if got := lookup(); got != ErrStale.Error() {
		t.Errorf("Lookup, no failure since the last renewal = %q, want the bare ErrStale", got)
	}
	r.renewed(time.Now().Add(time.Hour), true)
	if n := testing.AllocsPerRun(100, func() { r.Lookup("acme") }); n != 0 {
		t.Errorf("Lookup allocates %v times, want 0", n)
	}

	r.renewed(time.Now().Add(20*time.Millisecond), false)
	r.failed(opRenew, denied)
	for r.gate.Load()&gateStale == 0 {
		time.Sleep(time.Millisecond)
	}
	want := ErrStale.Error() + ": renewing its lease failed: " + denied.Error()
	if got := lookup(); got != want {
		t.Errorf("Lookup = %q, want %q", got, want)
	}
	_, _, err := r.Create(ctx, PlaceRequest{AccountID: "new", Country: "DE"})
	if want := `account "new": ` + want; err == nil || err.Error() != want || !errors.Is(err, ErrStale) {
		t.Errorf("Create = %v, want %q matching ErrStale", err, want)
	}
	// A later failure while stale is told instead; its sentinels are
	// not matched.
	r.failed(opFollow, context.DeadlineExceeded)
	want = ErrStale.Error() + ": following its log failed: " + context.DeadlineExceeded.Error()
	if got := lookup(); got != want {
		t.Errorf("Lookup after another failure = %q, want %q", got, want)
	}
	if _, err := r.Lookup("acme"); errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lookup = %v matches the failure's context.DeadlineExceeded", err)
	}
	// Renewed but not yet caught up: still stale, still saying why.
	r.renewed(time.Now().Add(time.Hour), false)
	if got := lookup(); got != want {
		t.Errorf("Lookup once renewed, not caught up = %q, want %q", got, want)
	}
	r.renewed(time.Now().Add(time.Hour), true)
	if _, err := r.Lookup("acme"); err != nil {
		t.Errorf("Lookup once caught up = %v, want nil", err)
	}
}

// TestReadsCheckTheLeaseEnd: once the lease has ended by the monotonic
// clock, Lookup and MayAccess answer ErrStale even though the lease's
// timer has not run, as after a pause of the process (SIGSTOP, a frozen
// VM), when the overdue timer waits for the scheduler while reads run
// (TestScaleStoppedInstanceAnswersNoSourceAfterFence shows it with a real
// pause: before, a resumed Router answered a fenced move's source for up
// to 10 ms). Within the lease, Lookup still allocates nothing.
func TestReadsCheckTheLeaseEnd(t *testing.T) {
	r, f := handFollowed(t, &follower{})
	if _, err := r.Lookup("acme"); err != nil {
		t.Fatalf("Lookup within the lease = %v, want nil", err)
	}
	if n := testing.AllocsPerRun(100, func() { r.Lookup("acme") }); n != 0 {
		t.Errorf("Lookup within the lease allocates %v times, want 0", n)
	}
	// The lease's end passes while its timer does not run.
	f.leaseEnd.Store(int64(time.Since(f.origin)))
	if _, err := r.Lookup("acme"); !errors.Is(err, ErrStale) {
		t.Errorf("Lookup past the lease's end, its timer not run = %v, want ErrStale", err)
	}
	if err := r.MayAccess("acme", "twilio"); !errors.Is(err, ErrStale) {
		t.Errorf("MayAccess past the lease's end = %v, want ErrStale", err)
	}
	if r.gate.Load()&gateStale == 0 {
		t.Error("the Router is not marked stale past its lease's end")
	}
}

// pausedStore is the part of a shared store catchUp calls, for
// TestRenewalPastTheLeaseEndCatchesUpFirst: its log holds nothing after
// what was read, but its head is one further (another Router committed
// since, and its fence did not wait for a member whose lease was over).
type pausedStore struct {
	SharedStore
	head uint64
}

func (s pausedStore) Changes(ctx context.Context, after uint64, fn func(uint64, Change) error) (uint64, error) {
	return after, nil
}
func (s pausedStore) Head(context.Context) (uint64, error) { return s.head, nil }
func (s pausedStore) Lease() time.Duration                 { return time.Second }

type pausedMember struct{ Membership }

func (pausedMember) Renew(context.Context, uint64) (time.Time, error) {
	return time.Now().Add(time.Hour), nil
}

// TestRenewalPastTheLeaseEndCatchesUpFirst: a renewal that comes after
// the lease ended by the monotonic clock, before its timer ran (the
// process paused between the follow goroutine's read of the log and its
// renewal), must leave the Router stale until it has applied everything
// committed before the renewal, as a renewal after the timer ran does
// (catchUp's Head check): other Routers' fences stopped waiting for it
// at the lease's end. Before, catchUp decided by the gate alone
// (gateStale), which the late timer had not set and no read happened to
// set, so renewed(end, false) moved the lease's end and Lookup answered
// from a memory that lacked the head's change.
func TestRenewalPastTheLeaseEndCatchesUpFirst(t *testing.T) {
	ctx := context.Background()
	r, f := handFollowed(t, &follower{s: pausedStore{head: 1}, member: pausedMember{}})
	// The lease's end passes while its timer does not run, and no read
	// comes before the follow goroutine renews.
	f.leaseEnd.Store(int64(time.Since(f.origin)))
	r.catchUp(ctx)
	if _, err := r.Lookup("acme"); !errors.Is(err, ErrStale) {
		t.Errorf("Lookup after a renewal past the lease's end, the head (1) not applied (%d) = %v, want ErrStale", f.applied.Load(), err)
	}
}

// handFollowed opens a Router in memory holding account "acme", and
// drives f as its follower by hand, with a lease that ends in an hour:
// no goroutine follows, and the lease's timer is an hour away. The
// Router is closed when the test ends.
func handFollowed(t *testing.T, f *follower) (*Router, *follower) {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	f.origin = time.Now()
	r.follow = f
	r.renewed(time.Now().Add(time.Hour), false)
	t.Cleanup(func() {
		f.leaseMu.Lock()
		f.leaseGen++
		f.timer.Stop()
		f.leaseMu.Unlock()
		r.follow = nil
		r.Close()
	})
	return r, f
}
