package residency

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestLeaderReturnsByItsDeadline: the package doc says that a write whose
// context ends while its batch is being committed returns at once
// (ErrUnavailable and the context's error), and that a write on a store
// that stops answering returns by its caller's deadline. A caller that
// leads its batch cannot leave it: when another request of the batch has
// no deadline (a caller without one, or the Router's own empty writes:
// kick, the follow goroutine's), or a later one, the batch's store calls
// are bounded by the write timeout (or that later deadline), and the
// leading caller waits for them.
//
// Observed: the leader, with a deadline of 2 s, is still waiting once
// its batch's Apply ends by the write timeout (10 s here; an hour would do
// the same), and returns only after it. Expected: it returns by its
// deadline (plus the store's grace at most), as a caller that does not
// lead does (TestCallerLeavesItsBatchAtItsDeadline).
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
			place := func(ctx context.Context, id string) <-chan error {
				c := make(chan error, 1)
				go func() {
					_, err := r.Place(ctx, PlaceRequest{AccountID: id, Country: "DE"})
					c <- err
				}()
				return c
			}
			queued := func(n int) {
				t.Helper()
				for deadline := time.Now().Add(time.Minute); ; {
					r.queue.mu.Lock()
					got := len(r.queue.pending)
					r.queue.mu.Unlock()
					if got == n {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d requests queued, want %d", got, n)
					}
					time.Sleep(time.Millisecond)
				}
			}
			first := place(ctx, "first") // leads the first batch, held in the store
			if n := waitFor(t, "the first Apply", entered); n != 1 {
				t.Fatalf("Apply %d entered first", n)
			}
			// The second batch: the leader, with a deadline ahead, then
			// a caller without one (or a later one).
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			leader := place(lctx, "leader")
			queued(1)
			octx := ctx
			if other.deadline > 0 {
				var cancel context.CancelFunc
				octx, cancel = context.WithTimeout(ctx, other.deadline)
				defer cancel()
			}
			others := place(octx, "other")
			queued(2)
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

// TestDeadlineCutWriteIsLearned: a store that commits a write but whose
// answer does not come before the caller's deadline (a database whose
// reply is lost, a fsync that returns late). The package doc says the
// caller gets ErrUnavailable and the context's error, "the outcome is
// not known yet (the Router learns it, and Router.Lookup and
// Router.History then show it)".
//
// Observed: the read back that would learn the outcome (settle's
// Router.reread) runs under the same callers' deadline, which has passed
// by then, so it fails at once; the account is only marked unresolved,
// and nothing reads it back until another write comes: Lookup answers
// ErrNotFound for the committed account for as long as no write comes
// (on a store that is not shared; a PromptStore, or any store whose call
// honours its context, gets no kick either). Expected: the Router learns
// the outcome by itself (reading back under the write timeout, as no
// caller waits for it any more, or kicking a resolve), and Lookup shows
// the account.
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
