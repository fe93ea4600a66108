package residency

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

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
// latestDeadline skips the empty write and runsPast sees no later
// deadline. When the store refuses the batch (ErrConflict), commit runs
// each request alone: the caller's own write fails (the store fails and
// reading it back fails: its outcome unknown, its answer sent), then the
// empty write runs alone, where latestDeadline gives no deadline, so its
// resolve reads the store under the write timeout, in the caller's
// goroutine. Observed: the caller, with a deadline of 2 s, returns only
// once that read ends by the write timeout of 15 s. Expected: it returns
// by its deadline (its answer was known at once): the read either runs
// after the caller returned, or ends by the caller's deadline.
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
			place := func(ctx context.Context, id string) <-chan error {
				c := make(chan error, 1)
				go func() {
					_, err := r.Place(ctx, PlaceRequest{AccountID: id, Country: "DE"})
					c <- err
				}()
				return c
			}
			first := place(ctx, "first") // leads the first batch, held in the store
			waitFor(t, "the first Apply", entered)
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			leader := place(lctx, "leader")
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
