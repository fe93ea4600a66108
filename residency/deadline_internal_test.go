package residency

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// waitFor returns what c gives, failing the test if it gives nothing
// within a minute: the calls waited for here end by a deadline of a
// fraction of a second, against a write timeout of an hour.
func waitFor[T any](t *testing.T, what string, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("%s has not returned after a minute", what)
		panic("unreachable")
	}
}

// TestWriteEndsByTheCallersDeadline: on a store that does not answer
// until its context ends, a write whose caller has a deadline returns by
// it, not after the write timeout (an hour here), with an error matching
// ErrUnavailable and context.DeadlineExceeded; the Router then reads the
// account back before the next write, and holds what the store holds.
func TestWriteEndsByTheCallersDeadline(t *testing.T) {
	for _, prompt := range []bool{true, false} {
		t.Run(fmt.Sprintf("prompt=%v", prompt), func(t *testing.T) {
			ctx := context.Background()
			hang := func(ctx context.Context, n int, apply func() error) error {
				if n == 1 {
					<-ctx.Done()
					return fmt.Errorf("test: no answer: %w", ctx.Err())
				}
				return apply()
			}
			r, s := openFaultyAs(t, prompt, nil, hang, WithWriteTimeout(time.Hour))
			defer r.Close()
			placed := make(chan error, 1)
			go func() {
				dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
				_, err := r.Place(dctx, PlaceRequest{AccountID: "a", Country: "DE"})
				placed <- err
			}()
			err := waitFor(t, "Place with a deadline of 200 ms", placed)
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Place past its deadline = %v; want ErrUnavailable and context.DeadlineExceeded", err)
			}
			if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); err != nil {
				t.Fatalf("the next Place: %v", err)
			}
			if _, err := r.Lookup("a"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Lookup of the account the store did not apply = %v, want ErrNotFound", err)
			}
			sameAsStored(t, r, s)
		})
	}
}

// TestCallerLeavesItsBatchAtItsDeadline: a caller whose deadline passes
// while another caller leads their batch's commit returns at once, its
// outcome unknown (ErrUnavailable and context.DeadlineExceeded), while the
// leader, which has no deadline, waits for the store; the write stands
// once the store applies it.
func TestCallerLeavesItsBatchAtItsDeadline(t *testing.T) {
	ctx := context.Background()
	entered := make(chan int, 2)
	release := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	hold := func(_ context.Context, n int, apply func() error) error {
		if n <= 2 {
			entered <- n
			<-release[n-1]
		}
		return apply()
	}
	r, s := openFaulty(t, nil, hold, WithWriteTimeout(time.Hour))
	defer r.Close()
	first := placeAsync(ctx, r, "first") // leads the first batch, held in the store
	if n := waitFor(t, "the first Apply", entered); n != 1 {
		t.Fatalf("Apply %d entered first", n)
	}
	leader := placeAsync(ctx, r, "leader") // no deadline: leads the second batch
	waitQueued(t, r, 1)
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	hurried := placeAsync(dctx, r, "hurried")
	waitQueued(t, r, 2)
	close(release[0])
	if err := waitFor(t, "the first Place", first); err != nil {
		t.Fatal(err)
	}
	if n := waitFor(t, "the second Apply", entered); n != 2 {
		t.Fatalf("Apply %d entered second", n)
	}
	// The second batch is held in the store: the hurried caller leaves.
	err := waitFor(t, "the Place with a deadline", hurried)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Place whose deadline passed in its batch's commit = %v; want ErrUnavailable and context.DeadlineExceeded", err)
	}
	select {
	case err := <-leader:
		t.Fatalf("the leader returned (%v) while the store holds its batch", err)
	default:
	}
	close(release[1])
	if err := waitFor(t, "the leader's Place", leader); err != nil {
		t.Fatal(err)
	}
	if p, err := r.Lookup("hurried"); err != nil || p.Version != 1 {
		t.Errorf("Lookup of the write whose caller left = %+v, %v; want it placed", p, err)
	}
	sameAsStored(t, r, s)
}

// TestDropExpired: a batch's requests whose deadline has passed are
// answered with context.DeadlineExceeded before anything is decided; the
// others, without a deadline or with one ahead, stay in order.
func TestDropExpired(t *testing.T) {
	r := &Router{}
	now := time.Now()
	req := func(id string, deadline time.Time) *request {
		return &request{what: subject{"account", id}, done: make(chan error, 1), deadline: deadline}
	}
	none, ahead, passed, passed2 := req("none", time.Time{}), req("ahead", now.Add(time.Hour)), req("passed", now.Add(-time.Millisecond)), req("passed2", now.Add(-time.Hour))
	live := r.dropExpired([]*request{passed, none, ahead, passed2})
	if diff := cmp.Diff([]string{"none", "ahead"}, ids(live)); diff != "" {
		t.Errorf("dropExpired kept (-want +got):\n%s", diff)
	}
	for _, req := range []*request{passed, passed2} {
		select {
		case err := <-req.done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s answered %v, want context.DeadlineExceeded", req.what.id, err)
			}
		default:
			t.Errorf("%s not answered", req.what.id)
		}
	}
	for _, req := range live {
		if req.answered {
			t.Errorf("%s answered", req.what.id)
		}
	}
	batch := []*request{none, ahead}
	if got := r.dropExpired(batch); &got[0] != &batch[0] || len(got) != 2 {
		t.Errorf("dropExpired of a batch with nothing expired did not return it as it is")
	}
	if got := latestDeadline([]*request{ahead, req("sooner", now.Add(time.Minute))}); !got.Equal(ahead.deadline) {
		t.Errorf("latestDeadline = %v, want the later one, %v", got, ahead.deadline)
	}
	if got := latestDeadline([]*request{ahead, none}); !got.IsZero() {
		t.Errorf("latestDeadline with a request without one = %v, want none", got)
	}
}

func ids(batch []*request) []string {
	var out []string
	for _, req := range batch {
		out = append(out, req.what.id)
	}
	return out
}

// TestLeaderReturnsByItsDeadline: a caller that leads its batch returns
// by its deadline too, with ErrUnavailable and the context's error, when
// another request of the batch has no deadline, or a later one: the
// batch's store calls may then last longer than the leader's deadline
// (the write timeout, or that later deadline), so the leader commits it
// in a goroutine of its own and its caller leaves as one that does not
// lead would (TestCallerLeavesItsBatchAtItsDeadline). (Before, it waited
// for the write timeout.)
func TestLeaderReturnsByItsDeadline(t *testing.T) {
	for _, other := range []struct {
		name     string
		deadline time.Duration // 0: none
	}{
		{"other without deadline", 0},
		{"other with a later deadline", time.Hour},
	} {
		t.Run(other.name, func(t *testing.T) {
			ctx := context.Background()
			entered := make(chan int, 2)
			release := make(chan struct{})
			leaderBack := make(chan struct{})
			byTimeout := make(chan bool, 1) // whether the second Apply ended by its context
			hook := func(ctx context.Context, n int, apply func() error) error {
				switch n {
				case 1:
					entered <- n
					<-release
				case 2:
					entered <- n
					// A store that stops answering until its context
					// ends; the test lets it go once the leader
					// returned.
					select {
					case <-ctx.Done():
						byTimeout <- true
						return fmt.Errorf("test: no answer: %w", ctx.Err())
					case <-leaderBack:
						byTimeout <- false
						return errTestServerGone
					}
				}
				return apply()
			}
			r, _ := openFaulty(t, nil, hook, WithWriteTimeout(10*time.Second))
			defer r.Close()
			first := placeAsync(ctx, r, "first") // leads the first batch, held in the store
			if n := waitFor(t, "the first Apply", entered); n != 1 {
				t.Fatalf("Apply %d entered first", n)
			}
			// The second batch: the leader, with a deadline ahead, then
			// a caller without one (or a later one).
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			leader := placeAsync(lctx, r, "leader")
			waitQueued(t, r, 1)
			octx := ctx
			if other.deadline > 0 {
				var cancel context.CancelFunc
				octx, cancel = context.WithTimeout(ctx, other.deadline)
				defer cancel()
			}
			others := placeAsync(octx, r, "other")
			waitQueued(t, r, 2)
			close(release)
			if err := waitFor(t, "the first Place", first); err != nil {
				t.Fatal(err)
			}
			if n := waitFor(t, "the second Apply", entered); n != 2 {
				t.Fatalf("Apply %d entered second", n)
			}
			err := waitFor(t, "the leader's Place", leader)
			close(leaderBack)
			if waitFor(t, "the second Apply's end", byTimeout) {
				t.Errorf("the leader (deadline 2 s) returned only once its batch's Apply ended by the write timeout of 10 s; want it back by its deadline")
			}
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("leader's Place past its deadline = %v; want ErrUnavailable and context.DeadlineExceeded", err)
			}
			waitFor(t, "the other Place", others)
		})
	}
}

// TestDeadlineCutWriteIsLearned: a store commits a write but its answer
// does not come before the caller's deadline (a database whose reply is
// lost, a fsync that returns late). The caller gets ErrUnavailable and
// the context's error, and the Router learns the outcome by itself: the
// reading back, which the callers' deadline ended too, runs again in the
// background under the write timeout (kick), and Lookup shows the
// account. (Before, nothing read it back until another write came.)
func TestDeadlineCutWriteIsLearned(t *testing.T) {
	for _, prompt := range []bool{true, false} {
		t.Run(fmt.Sprintf("prompt=%v", prompt), func(t *testing.T) {
			ctx := context.Background()
			commitThenHang := func(ctx context.Context, n int, apply func() error) error {
				if n != 1 {
					return apply()
				}
				if err := apply(); err != nil {
					return err
				}
				<-ctx.Done()
				return fmt.Errorf("test: the answer is lost: %w", ctx.Err())
			}
			r, s := openFaultyAs(t, prompt, nil, commitThenHang, WithWriteTimeout(time.Hour))
			defer r.Close()
			dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			_, err := r.Place(dctx, PlaceRequest{AccountID: "a", Country: "DE"})
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Place past its deadline = %v; want ErrUnavailable and context.DeadlineExceeded", err)
			}
			var lerr error
			for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if _, lerr = r.Lookup("a"); lerr == nil {
					break
				}
			}
			if lerr != nil {
				t.Errorf("Lookup of the account the store committed, 10 s after its write returned = %v; want it placed (the Router learns the outcome); unresolved = %v", lerr, r.outcomeUnknown.Load())
			}
			if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); err != nil {
				t.Fatalf("the next Place: %v", err)
			}
			if _, err := r.Lookup("a"); err != nil {
				t.Errorf("Lookup after the next write = %v; want it placed", err)
			}
			sameAsStored(t, r, s)
		})
	}
}

// loadHookStore is a Store whose n-th LoadAccounts does what hook says
// before it reads (hook gets the call's context, unlike faultyStore's
// onLoad).
type loadHookStore struct {
	Store
	mu    sync.Mutex
	loads int
	hook  func(ctx context.Context, n int) error
}

func (s *loadHookStore) LoadAccounts(ctx context.Context, ids []string, fn func(StoredAccount) error) error {
	s.mu.Lock()
	s.loads++
	n := s.loads
	s.mu.Unlock()
	if err := s.hook(ctx, n); err != nil {
		return err
	}
	return s.Store.LoadAccounts(ctx, ids, fn)
}

// TestLeaderWithKickReturnsByItsDeadline: a caller that leads a batch
// holding a Router's own empty write (a kick, queued behind it as settle
// and storeCall queue theirs) leads it in its own goroutine, since
// latestDeadline skips the empty write. When the store refuses the batch
// (ErrConflict), each request runs alone but the empty write, which the
// batch already did the work of: the caller's own write fails (the store
// fails and reading it back fails, its outcome unknown), and the caller
// returns by its deadline. (Before, the empty write ran alone, with no
// deadline, and its resolve held the caller up until the write timeout.)
func TestLeaderWithKickReturnsByItsDeadline(t *testing.T) {
	for _, prompt := range []bool{true, false} {
		t.Run(fmt.Sprintf("prompt=%v", prompt), func(t *testing.T) {
			ctx := context.Background()
			fs, err := openFileStore(ctx, t.TempDir()+"/store.db")
			if err != nil {
				t.Fatal(err)
			}
			leaderBack := make(chan struct{})
			// cutBy is the deadline of the context that ended the hanging
			// read, once one did; the test lets the read go once the
			// leader returned.
			var (
				mu    sync.Mutex
				cutBy time.Time
			)
			inner := &loadHookStore{Store: fs, hook: func(ctx context.Context, n int) error {
				switch n {
				case 1: // settle's read back of the leader's write
					return errTestServerGone
				case 2: // the empty write's resolve, run alone
					select {
					case <-ctx.Done():
						mu.Lock()
						cutBy, _ = ctx.Deadline()
						mu.Unlock()
						return fmt.Errorf("test: no answer: %w", ctx.Err())
					case <-leaderBack:
						return errTestServerGone
					}
				}
				return nil
			}}
			entered, release := make(chan struct{}), make(chan struct{})
			r, _ := openFaultyAs(t, prompt, inner, holdFirst(entered, release, func(_ context.Context, n int, apply func() error) error {
				switch n {
				case 2: // the batch of the leader and the empty write
					return fmt.Errorf("test: %w", ErrConflict)
				case 3: // the leader's write alone
					return errTestServerGone
				}
				return apply()
			}), WithWriteTimeout(15*time.Second))
			defer r.Close()
			first := placeAsync(ctx, r, "first") // leads the first batch, held in the store
			waitFor(t, "the first Apply", entered)
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			leader := placeAsync(lctx, r, "leader")
			waitQueued(t, r, 1)
			go r.kick() // an empty write of the Router's own, queued behind
			waitQueued(t, r, 2)
			close(release)
			if err := waitFor(t, "the first Place", first); err != nil {
				t.Fatal(err)
			}
			err = waitFor(t, "the leader's Place", leader)
			mu.Lock()
			d := cutBy
			mu.Unlock()
			close(leaderBack)
			if ld, _ := lctx.Deadline(); d.After(ld) {
				t.Errorf("the leader (deadline 2 s) returned only once its batch's empty write, run alone in its goroutine, ended its read by a deadline %v after the leader's (the write timeout of 15 s); want it back by its deadline", d.Sub(ld).Round(time.Second))
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("leader's Place = %v; want ErrUnavailable (outcome unknown)", err)
			}
		})
	}
}

// placeAsync places account id through r in a goroutine; Place's error
// comes on the channel.
func placeAsync(ctx context.Context, r *Router, id string) <-chan error {
	c := make(chan error, 1)
	go func() {
		_, err := r.Place(ctx, PlaceRequest{AccountID: id, Country: "DE"})
		c <- err
	}()
	return c
}
