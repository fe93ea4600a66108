package residency

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// faultyStore wraps a real store and fails where a test says: onApply
// decides what the n-th Apply does, onLoad what LoadAccounts does before
// it reads.
type faultyStore struct {
	Store
	mu      sync.Mutex
	applies int
	onApply applyHook
	onLoad  func() error
	closed  chan struct{}
}

// applyHook decides what the n-th Apply of a faultyStore does; apply runs
// the wrapped store's Apply.
type applyHook func(ctx context.Context, n int, apply func() error) error

// openFaulty opens a Router with opts on a faultyStore over inner (a new
// file store if nil) whose Apply does what onApply says (nil: applies).
func openFaulty(t *testing.T, inner Store, onApply applyHook, opts ...Option) (*Router, *faultyStore) {
	t.Helper()
	return openFaultyAs(t, false, inner, onApply, opts...)
}

// promptFaulty is a faultyStore that says it is a PromptStore.
type promptFaulty struct{ *faultyStore }

func (promptFaulty) ReturnsPromptly() {}

// openFaultyAs is openFaulty, with a store the Router takes for a
// PromptStore if prompt.
func openFaultyAs(t *testing.T, prompt bool, inner Store, onApply applyHook, opts ...Option) (*Router, *faultyStore) {
	t.Helper()
	if inner == nil {
		fs, err := openFileStore(context.Background(), filepath.Join(t.TempDir(), "store.db"))
		if err != nil {
			t.Fatal(err)
		}
		inner = fs
	}
	s := &faultyStore{Store: inner, onApply: onApply, closed: make(chan struct{})}
	var as Store = s
	if prompt {
		as = promptFaulty{s}
	}
	r, err := Open(context.Background(), append([]Option{WithStore(as)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}

func (s *faultyStore) set(onApply applyHook, onLoad func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onApply, s.onLoad = onApply, onLoad
}

func (s *faultyStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applies
}

func (s *faultyStore) Apply(ctx context.Context, changes []Change) error {
	s.mu.Lock()
	s.applies++
	n, f := s.applies, s.onApply
	s.mu.Unlock()
	// The inner store runs to its end whatever happens to ctx, as a store
	// that ignores its context (or whose commit was already under way).
	apply := func() error { return s.Store.Apply(context.WithoutCancel(ctx), changes) }
	if f == nil {
		return apply()
	}
	return f(ctx, n, apply)
}

func (s *faultyStore) LoadAccounts(ctx context.Context, ids []string, fn func(StoredAccount) error) error {
	s.mu.Lock()
	f := s.onLoad
	s.mu.Unlock()
	if f != nil {
		if err := f(); err != nil {
			return err
		}
	}
	return s.Store.LoadAccounts(ctx, ids, fn)
}

func (s *faultyStore) Close() error {
	close(s.closed)
	return s.Store.Close()
}

var errFsync = errors.New("test: fsync failed")

// persistThenFail applies the n-th Apply and then reports err, as a store
// whose fsync of the meta page fails after the data reached the file.
func persistThenFail(n int, err error) applyHook {
	return func(_ context.Context, i int, apply func() error) error {
		if e := apply(); e != nil || i != n {
			return e
		}
		return err
	}
}

// failBefore fails the n-th Apply without applying anything.
func failBefore(n int, err error) applyHook {
	return func(_ context.Context, i int, apply func() error) error {
		if i == n {
			return err
		}
		return apply()
	}
}

// holdFirst makes the first Apply wait for release (after telling entered)
// and then do what then does; later ones do what then does.
func holdFirst(entered chan<- struct{}, release <-chan struct{}, then applyHook) applyHook {
	return holdNth(1, entered, release, then)
}

// holdNth is holdFirst for the n-th Apply.
func holdNth(n int, entered chan<- struct{}, release <-chan struct{}, then applyHook) applyHook {
	return func(ctx context.Context, i int, apply func() error) error {
		if i == n {
			entered <- struct{}{}
			<-release
		}
		if then == nil {
			return apply()
		}
		return then(ctx, i, apply)
	}
}

// placeBehind places "first" through r, whose store holds that Apply (the
// hook of holdFirst with entered and release), queues a Place of each of
// ids behind it in order, so that they make one batch, releases the
// first, and returns the queued Places' errors.
func placeBehind(t *testing.T, r *Router, entered, release chan struct{}, ids ...string) []error {
	t.Helper()
	ctx := context.Background()
	go r.Place(ctx, PlaceRequest{AccountID: "first", Country: "FR"})
	<-entered
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { _, errs[i] = r.Place(ctx, PlaceRequest{AccountID: id, Country: "DE"}) })
		waitQueued(t, r, i+1)
	}
	close(release)
	wg.Wait()
	return errs
}

// waitQueued waits until n requests wait in r's queue for a leader.
func waitQueued(t *testing.T, r *Router, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.queue.mu.Lock()
		got := len(r.queue.pending)
		r.queue.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", got, n)
		}
		runtime.Gosched()
	}
}

// within fails the test if f does not return within 10 s: a liveness check
// of something that would otherwise hang, not a measure of speed.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still waits after 10 s", what)
	}
}

// routerState is everything a Router holds, read through its methods.
type routerState struct {
	Placements []Placement
	History    map[string][]Event
	Agreements map[string][]Agreement
	Moves      []Move
	Statuses   map[string]provider.Status
}

func stateOf(t *testing.T, r *Router) routerState {
	t.Helper()
	s := routerState{History: map[string][]Event{}, Agreements: map[string][]Agreement{}, Statuses: map[string]provider.Status{}}
	for _, reg := range region.All() {
		for p := range r.AccountsInRegion(reg) {
			s.Placements = append(s.Placements, p)
			h, err := r.History(t.Context(), p.AccountID)
			if err != nil {
				t.Fatal(err)
			}
			s.History[p.AccountID] = h
			ag, err := r.Agreements(p.AccountID)
			if err != nil {
				t.Fatal(err)
			}
			s.Agreements[p.AccountID] = ag
		}
	}
	for m := range r.Moves() {
		s.Moves = append(s.Moves, m)
	}
	for _, d := range r.Catalog().All() {
		st, err := r.Status(d.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.Statuses[d.ID] = st
	}
	return s
}

// sameAsStored closes r and checks that a Router opened on the same store
// file holds what r held, and that counts per data center match.
func sameAsStored(t *testing.T, r *Router, s *faultyStore) {
	t.Helper()
	want := stateOf(t, r)
	counts := map[string]int64{}
	for id, n := range r.accountsOn {
		counts[id] = n.Load()
	}
	path := s.Store.(*fileStore).path
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(context.Background(), WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	if diff := cmp.Diff(want, stateOf(t, reopened)); diff != "" {
		t.Errorf("memory differs from the store (-memory +stored):\n%s", diff)
	}
	stored := map[string]int64{}
	for id, n := range reopened.accountsOn {
		stored[id] = n.Load()
	}
	if diff := cmp.Diff(stored, counts); diff != "" {
		t.Errorf("accounts per data center differ (-stored +memory):\n%s", diff)
	}
}

// TestApplyFailsAfterPersisting: a store that makes a change durable and
// then fails (an fsync error after the data reached the file) leaves the
// outcome unknown. The Router reads the account back, finds the change,
// answers success, and memory matches the store: later changes to the
// account carry the right version.
func TestApplyFailsAfterPersisting(t *testing.T) {
	ctx := context.Background()
	r, s := openFaulty(t, nil, persistThenFail(1, errFsync))
	p, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"})
	if err != nil {
		t.Fatalf("Place with a store that persisted then failed: %v", err)
	}
	if got, err := r.Lookup("a"); err != nil || got != p {
		t.Errorf("Lookup = %+v, %v; want %+v", got, err, p)
	}
	// The same request again finds the account, and a change to it is
	// accepted by the store: memory has the stored version.
	if again, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"}); err != nil || again != p {
		t.Errorf("Place again = %+v, %v; want %+v", again, err, p)
	}
	to := map[string]string{"linode-eu": "aws-eu-west-1"}[p.DataCenter]
	if to == "" {
		to = "linode-eu"
	}
	if _, err := r.BeginMove(ctx, "a", to); err != nil {
		t.Errorf("BeginMove after the failed Apply: %v", err)
	}
	sameAsStored(t, r, s)
}

// TestBatchFailsAfterPersisting is the same for a batch of many
// concurrent writes: none of them is turned into a conflict.
func TestBatchFailsAfterPersisting(t *testing.T) {
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	r, s := openFaulty(t, nil, holdFirst(entered, release, persistThenFail(2, errFsync)))
	const n = 32
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	wg.Go(func() { _, errs[n] = r.Place(ctx, PlaceRequest{AccountID: "first", Country: "FR"}) })
	<-entered
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("acct-%02d", i)
			if i%4 == 3 { // a second request for an account placed by the batch
				id = fmt.Sprintf("acct-%02d", i-1)
			}
			_, errs[i] = r.Place(ctx, PlaceRequest{AccountID: id, Country: "DE"})
		})
	}
	waitQueued(t, r, n)
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Place #%d: %v", i, err)
		}
	}
	if got := s.count(); got != 2 {
		t.Errorf("%d Apply calls, want 2 (the batch was not retried)", got)
	}
	sameAsStored(t, r, s)
}

// TestApplyFailsNotPersisted: a store that fails without applying makes
// each write of the batch fail with ErrStoreFailed, never ErrConflict, and
// leaves memory unchanged; a request that only read what the batch wrote
// runs again alone.
func TestApplyFailsNotPersisted(t *testing.T) {
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	r, s := openFaulty(t, nil, holdFirst(entered, release, failBefore(2, errFsync)))
	errs := placeBehind(t, r, entered, release, "a", "a")
	errNew, errSame := errs[0], errs[1]
	if !errors.Is(errNew, ErrStoreFailed) || !errors.Is(errNew, errFsync) || errors.Is(errNew, ErrConflict) || errors.Is(errNew, ErrUnavailable) {
		t.Errorf("Place in the failed batch: %v; want ErrStoreFailed wrapping the store's error", errNew)
	}
	// The second request saw the account the first one created in the
	// batch; that did not happen, so it ran again alone and created it.
	if errSame != nil {
		t.Errorf("Place that ran again alone: %v", errSame)
	}
	if _, err := r.Lookup("a"); err != nil {
		t.Errorf("Lookup after the retried Place: %v", err)
	}
	if got := s.count(); got != 3 {
		t.Errorf("%d Apply calls, want 3", got)
	}

	// A lone write that is not applied: memory is unchanged, and the
	// same write succeeds once the store works.
	n := s.count()
	s.set(failBefore(n+1, errFsync), nil)
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); !errors.Is(err, ErrStoreFailed) || errors.Is(err, ErrConflict) {
		t.Errorf("lone Place: %v; want ErrStoreFailed", err)
	}
	if _, err := r.Lookup("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup of the account not applied: %v", err)
	}
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); err != nil {
		t.Errorf("Place again: %v", err)
	}
	sameAsStored(t, r, s)
}

// TestApplySaysNotApplied: a store whose error matches ErrStoreFailed says
// that nothing was applied (the PostgreSQL store, for a statement the
// server refused or a connection it could not make): the Router answers it
// as it is, with no reading back (reads of the store fail throughout this
// test). While the store refuses every write, each write of a batch fails
// with its error: the batch is run again one request at a time, as for a
// conflict, unless the store could not be reached (a network error), when
// only the request that changed nothing runs again alone. Once the store
// takes writes again, later writes go on with no reading back either.
func TestApplySaysNotApplied(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		applies int // the batch, then the requests run again alone
	}{
		{"refused", fmt.Errorf("%w: test: permission denied", ErrStoreFailed), 4},
		{"unreachable", fmt.Errorf("%w: test: %w", ErrStoreFailed, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			entered, release := make(chan struct{}), make(chan struct{})
			refuseFrom2 := func(_ context.Context, i int, apply func() error) error {
				if i >= 2 {
					return tc.err
				}
				return apply()
			}
			r, s := openFaulty(t, nil, nil)
			unreadable := func() error { return errors.New("test: reading back") }
			s.set(holdFirst(entered, release, refuseFrom2), unreadable)
			for _, err := range placeBehind(t, r, entered, release, "a", "a") {
				if !errors.Is(err, tc.err) || errors.Is(err, ErrUnavailable) || strings.Count(err.Error(), "the store failed") != 1 {
					t.Errorf("Place in the refused batch: %v; want the store's error as it is", err)
				}
			}
			if got := s.count(); got != tc.applies {
				t.Errorf("%d Apply calls, want %d", got, tc.applies)
			}
			s.set(nil, unreadable)
			if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); err != nil {
				t.Errorf("a later Place: %v; want it placed with no reading back", err)
			}
			s.set(nil, nil)
			sameAsStored(t, r, s)
		})
	}
}

// refusesBad is a store that refuses, applying nothing, any unit that
// holds a change of account "bad", with an error matching ErrStoreFailed:
// a value the database refuses.
type refusesBad struct{ Store }

func (s refusesBad) Apply(ctx context.Context, changes []Change) error {
	for _, c := range changes {
		if c.Placement.AccountID == "bad" {
			return fmt.Errorf("%w: test: value refused", ErrStoreFailed)
		}
	}
	return s.Store.Apply(ctx, changes)
}

// TestStoreRefusesOneRequestOfABatch: when the store refuses a batch for
// one request's changes, saying nothing was applied (ErrStoreFailed), only
// that request fails: the batch runs again one request at a time, as for a
// conflict. Before, every request of the batch failed with it.
func TestStoreRefusesOneRequestOfABatch(t *testing.T) {
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	mem := NewMemoryStore()
	r, _ := openFaulty(t, refusesBad{mem}, holdFirst(entered, release, nil))
	errs := placeBehind(t, r, entered, release, "bad", "good")
	errBad, errGood := errs[0], errs[1]
	if !errors.Is(errBad, ErrStoreFailed) {
		t.Errorf("Place of the account the store refuses: %v; want ErrStoreFailed", errBad)
	}
	if errGood != nil {
		t.Errorf("Place of another account in its batch: %v; want it placed", errGood)
	}
	if _, err := r.Lookup("good"); err != nil {
		t.Errorf("Lookup(good): %v", err)
	}
	if _, err := r.Lookup("bad"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup(bad): %v; want ErrNotFound", err)
	}
	var stored []string
	if err := mem.Load(ctx, func(a StoredAccount) error {
		stored = append(stored, a.Placement.AccountID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"first", "good"}, stored); diff != "" {
		t.Errorf("accounts stored (-want +got):\n%s", diff)
	}
}

// TestRereadFails: when the store fails and reading it back fails too, the
// outcome is unknown: the write fails with ErrUnavailable, and so does
// every later write, without calling Apply, until the store can be read.
// Then the Router learns the outcome and goes on.
func TestRereadFails(t *testing.T) {
	ctx := context.Background()
	r, s := openFaulty(t, nil, nil)
	errRead := errors.New("test: connection lost")
	s.set(persistThenFail(1, errFsync), func() error { return errRead })
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"}); !errors.Is(err, ErrUnavailable) || !errors.Is(err, errFsync) || !errors.Is(err, errRead) {
		t.Errorf("Place: %v; want ErrUnavailable wrapping both errors", err)
	}
	if _, err := r.Lookup("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup while unknown: %v; want the state from before", err)
	}
	if err := r.Drain(ctx, "linode-eu"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Drain while unknown: %v; want ErrUnavailable", err)
	}
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Place while unknown: %v; want ErrUnavailable", err)
	}
	if got := s.count(); got != 1 {
		t.Errorf("%d Apply calls while the outcome is unknown, want 1", got)
	}

	s.set(nil, nil)
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); err != nil {
		t.Errorf("Place once the store reads again: %v", err)
	}
	if _, err := r.Lookup("a"); err != nil {
		t.Errorf("Lookup of the account whose Apply persisted: %v", err)
	}
	sameAsStored(t, r, s)
}

// TestPlaceExistingAfterUnknownOutcome: Place and Create of an account in
// memory are writes too: while an earlier write's outcome is unknown they
// fail with ErrUnavailable, and once the store reads again they answer
// what it holds, rather than answer memory at once (a move the store
// committed, whose reply was lost, left Place answering the source).
// Found by a randomized test of store faults.
func TestPlaceExistingAfterUnknownOutcome(t *testing.T) {
	ctx := context.Background()
	r, s := openFaulty(t, nil, nil)
	req := PlaceRequest{AccountID: "acme", Country: "DE"}
	p, err := r.Place(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	to := "websupport-eu"
	if p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	m, err := r.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}
	errRead := errors.New("test: connection lost")
	s.set(persistThenFail(3, errFsync), func() error { return errRead })
	if _, err := r.CompleteMove(ctx, m.ID); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("CompleteMove, persisted, its reply lost, no read back: %v; want ErrUnavailable", err)
	}
	if got, created, err := r.Create(ctx, req); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Create(acme) while the outcome is unknown = %s v%d (created %v), %v; want ErrUnavailable", got.DataCenter, got.Version, created, err)
	}
	s.set(nil, nil)
	if got, err := r.Place(ctx, req); err != nil || got.DataCenter != to || got.Version != 3 {
		t.Errorf("Place(acme) once the store reads again = %s v%d, %v; want the stored move's target %s at v3", got.DataCenter, got.Version, err, to)
	}
	sameAsStored(t, r, s)
}

// TestStatusChangeOutcomeUnknown: a data center status whose Apply
// persisted and failed is read back too.
func TestStatusChangeOutcomeUnknown(t *testing.T) {
	ctx := context.Background()
	r, s := openFaulty(t, nil, nil)
	s.set(persistThenFail(1, errFsync), nil)
	if err := r.Drain(ctx, "linode-eu"); err != nil {
		t.Errorf("Drain: %v", err)
	}
	if st, _ := r.Status("linode-eu"); st != provider.Draining {
		t.Errorf("status %s after Drain, want draining", st)
	}
	s.set(failBefore(2, errFsync), nil)
	if err := r.Activate(ctx, "linode-eu"); !errors.Is(err, ErrStoreFailed) {
		t.Errorf("Activate not applied: %v; want ErrStoreFailed", err)
	}
	if st, _ := r.Status("linode-eu"); st != provider.Draining {
		t.Errorf("status %s after an Activate not applied, want draining", st)
	}
	sameAsStored(t, r, s)
}

// TestStatusOutcomeLearntBeforeDeciding: after a status change whose
// outcome stayed unknown (persisted, and the store could not be read
// back), the next change of that data center's status learns the outcome
// before it is decided, and so follows the stored version.
func TestStatusOutcomeLearntBeforeDeciding(t *testing.T) {
	ctx := context.Background()
	r, s := openFaulty(t, nil, nil)
	errRead := errors.New("test: connection lost")
	s.set(persistThenFail(1, errFsync), func() error { return errRead })
	if err := r.Drain(ctx, "linode-eu"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Drain: %v; want ErrUnavailable", err)
	}
	s.set(nil, nil)
	if err := r.Activate(ctx, "linode-eu"); err != nil {
		t.Fatalf("Activate once the store reads again: %v", err)
	}
	dcs, err := s.DataCenters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dcs) != 1 || dcs[0].Status != provider.Active || dcs[0].Version != 2 {
		t.Errorf("stored %+v; want linode-eu active at version 2", dcs)
	}
	sameAsStored(t, r, s)
}

// TestStorePanics: a store that panics fails the batch and releases the
// lead; the Router learns what was applied and goes on.
func TestStorePanics(t *testing.T) {
	ctx := context.Background()
	for _, prompt := range []bool{false, true} {
		for _, persist := range []bool{false, true} {
			t.Run(fmt.Sprintf("prompt=%v/persisted=%v", prompt, persist), func(t *testing.T) {
				r, s := openFaultyAs(t, prompt, nil, nil)
				s.set(func(_ context.Context, n int, apply func() error) error {
					if persist {
						apply()
					}
					panic("test: store bug")
				}, nil)
				_, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"})
				if persist != (err == nil) || !persist && !strings.Contains(err.Error(), "store panicked") {
					t.Errorf("Place with a panicking store: %v", err)
				}
				s.set(nil, nil)
				if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); err != nil {
					t.Errorf("Place after the panic: %v", err)
				}
				sameAsStored(t, r, s)
			})
		}
	}
}

// TestStoreCallGoexits: a store call that ends its goroutine with
// runtime.Goexit (a store double's t.FailNow) fails its batch as a panic
// does, and the Router goes on. On a PromptStore the call runs in the
// leading caller's goroutine, which ends: the caller queued behind it
// must get the lead, and memory must match the store once it has read
// the unknown outcome back.
func TestStoreCallGoexits(t *testing.T) {
	ctx := context.Background()
	for _, prompt := range []bool{false, true} {
		for _, persist := range []bool{false, true} {
			t.Run(fmt.Sprintf("prompt=%v/persisted=%v", prompt, persist), func(t *testing.T) {
				inStore, release := make(chan struct{}), make(chan struct{})
				r, s := openFaultyAs(t, prompt, nil, func(_ context.Context, n int, apply func() error) error {
					if n > 1 {
						return apply()
					}
					close(inStore)
					<-release
					if persist {
						apply()
					}
					runtime.Goexit()
					return nil
				})
				defer r.Close()
				type outcome struct {
					p   Placement
					err error
				}
				first, second := make(chan outcome, 1), make(chan outcome, 1)
				firstEnded := make(chan struct{})
				go func() {
					defer close(firstEnded)
					p, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"})
					first <- outcome{p, err}
				}()
				<-inStore
				go func() {
					p, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"})
					second <- outcome{p, err}
				}()
				within(t, "the second Place to queue", func() {
					for {
						r.queue.mu.Lock()
						n := len(r.queue.pending)
						r.queue.mu.Unlock()
						if n == 1 {
							return
						}
						time.Sleep(time.Millisecond)
					}
				})
				close(release)
				<-firstEnded
				select {
				case o := <-first:
					if prompt {
						t.Errorf("Place answered %+v, %v in the goroutine that exited", o.p, o.err)
					} else if persist != (o.err == nil) || !persist && !strings.Contains(o.err.Error(), "runtime.Goexit") {
						t.Errorf("Place whose store call exited: %+v, %v", o.p, o.err)
					}
				default:
					if !prompt {
						t.Error("Place's goroutine ended without an answer")
					}
				}
				within(t, "the queued Place", func() {
					if o := <-second; o.err != nil {
						t.Errorf("queued Place: %v", o.err)
					}
				})
				sameAsStored(t, r, s)
			})
		}
	}
}

// TestLeaderEndsMidBatch: when the goroutine that leads a batch of two
// ends inside it (runtime.Goexit in a PromptStore's Apply or in the
// clock, as a test double's t.FailNow does) or the clock panics (and
// the caller recovers, as net/http does), the batch's other caller is
// answered all the same, the lead passes on, and memory matches the
// store. The clock (WithClock) is called as a batch begins: outside
// commit's deferred recovery, the other caller would wait forever.
func TestLeaderEndsMidBatch(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		prompt  bool
		inStore bool // else in the clock
		panics  bool // else runtime.Goexit
		// The batch's Apply is refused (ErrConflict): its first
		// request runs alone, in a commit within commit, whose Apply
		// ends the goroutine.
		conflict bool
	}{
		{name: "PromptStore's Apply exits", prompt: true, inStore: true},
		{name: "PromptStore's Apply exits in a conflict's retry", prompt: true, inStore: true, conflict: true},
		{name: "clock exits", prompt: true},
		{name: "clock exits, store in a goroutine of its own"},
		{name: "clock panics", prompt: true, panics: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			end := func() {
				if tc.panics {
					panic("test: the clock failed")
				}
				runtime.Goexit()
			}
			var armed atomic.Bool
			clock := func() time.Time {
				if armed.Load() {
					// Only where a batch begins (through the
					// Router's wrapper that makes the time UTC).
					if pc, _, _, ok := runtime.Caller(2); ok && strings.HasSuffix(runtime.FuncForPC(pc).Name(), ".(*Router).commit") {
						armed.Store(false)
						end()
					}
				}
				return time.Now()
			}
			exitAt := 2 // the Apply that ends the goroutine
			if tc.conflict {
				exitAt = 3
			}
			entered, release := make(chan struct{}), make(chan struct{})
			r, s := openFaultyAs(t, tc.prompt, nil, holdFirst(entered, release, func(_ context.Context, n int, apply func() error) error {
				switch {
				case n == 2 && tc.conflict:
					return fmt.Errorf("test: %w", ErrConflict)
				case n == exitAt && tc.inStore:
					end()
				}
				return apply()
			}), WithClock(clock))
			// No deferred Close: it would wait for a caller that hangs.
			first := make(chan error, 1)
			go func() {
				_, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"})
				first <- err
			}()
			<-entered
			type outcome struct {
				id       string
				err      error
				panicked any
			}
			answers := make(chan outcome, 2)
			var ended sync.WaitGroup
			for _, id := range []string{"b", "c"} {
				ended.Go(func() {
					defer func() {
						if p := recover(); p != nil {
							answers <- outcome{id: id, panicked: p}
						}
					}()
					_, err := r.Place(ctx, PlaceRequest{AccountID: id, Country: "DE"})
					answers <- outcome{id: id, err: err}
				})
			}
			waitQueued(t, r, 2)
			armed.Store(!tc.inStore)
			close(release)
			if err := <-first; err != nil {
				t.Fatalf("first Place: %v", err)
			}
			within(t, "the callers of the batch whose leader ended", ended.Wait)
			close(answers)
			var got []outcome
			for o := range answers {
				got = append(got, o)
			}
			want := 1 // the leader's goroutine ended without an answer
			if tc.panics {
				want = 2 // commit recovers the panic: both are answered
			}
			if len(got) != want {
				t.Errorf("%d callers answered, want %d: %+v", len(got), want, got)
			}
			for _, o := range got {
				switch {
				case o.panicked != nil:
					t.Errorf("Place %s panicked: %v", o.id, o.panicked)
				case o.err == nil:
					t.Errorf("Place %s succeeded in a batch that failed", o.id)
				case tc.inStore && !errors.Is(o.err, ErrUnavailable):
					t.Errorf("Place %s: %v, want ErrUnavailable (the store may hold it)", o.id, o.err)
				}
			}
			within(t, "a Place after the batch", func() {
				if _, err := r.Place(ctx, PlaceRequest{AccountID: "d", Country: "DE"}); err != nil {
					t.Errorf("Place after the batch: %v", err)
				}
			})
			sameAsStored(t, r, s)
		})
	}
}

// TestPromptStoreCalledByTheWriter: a PromptStore's Apply runs in the
// goroutine of the caller whose write leads the batch, any other store's
// in a goroutine of its own, which the Router can give up on.
func TestPromptStoreCalledByTheWriter(t *testing.T) {
	ctx := context.Background()
	for _, prompt := range []bool{false, true} {
		t.Run(fmt.Sprintf("prompt=%v", prompt), func(t *testing.T) {
			var stack string
			r, s := openFaultyAs(t, prompt, nil, func(_ context.Context, _ int, apply func() error) error {
				buf := make([]byte, 64<<10)
				stack = string(buf[:runtime.Stack(buf, false)])
				return apply()
			})
			defer r.Close()
			if _, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
				t.Fatal(err)
			}
			const caller = "residency.(*Router).Place("
			if got := strings.Contains(stack, caller); got != prompt {
				t.Errorf("Apply's goroutine runs Place: %v, want %v; its stack:\n%s", got, prompt, stack)
			}
			sameAsStored(t, r, s)
		})
	}
}

// TestWriteFuncPanics: a panic while a batch is led fails that batch and
// releases the lead.
func TestWriteFuncPanics(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.write(ctx, subject{}, func(w *writer) error { panic("test: bug") })
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("write that panicked: %v", err)
	}
	within(t, "Place after a panic", func() {
		if _, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
			t.Errorf("Place after a panic: %v", err)
		}
	})
}

// TestStoreHangs: a store that ignores its context and does not return
// fails the write after the write timeout, with ErrUnavailable; later
// writes fail at once; reads and snapshots do not wait. Once the store
// returns, the Router reads the outcome back by itself.
func TestStoreHangs(t *testing.T) {
	ctx := context.Background()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	r, s := openFaulty(t, nil, holdFirst(entered, release, nil), WithWriteTimeout(50*time.Millisecond))
	within(t, "Place on a hung store", func() {
		if _, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"}); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Place on a hung store: %v; want ErrUnavailable", err)
		}
	})
	within(t, "writes and snapshots while the store hangs", func() {
		if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Place while the store hangs: %v; want ErrUnavailable", err)
		}
		if rep, err := r.Verify(ctx); err != nil || !rep.OK() {
			t.Errorf("Verify while the store hangs: %+v, %v", rep, err)
		}
		for range r.AccountsInRegion(region.EU) {
		}
		if _, err := r.PlanEvacuation(ctx, "linode-eu"); err != nil {
			t.Errorf("PlanEvacuation while the store hangs: %v", err)
		}
	})
	close(release) // the Apply now persists and returns
	within(t, "reading the outcome back", func() {
		for {
			if _, err := r.Lookup("a"); err == nil {
				return
			}
			runtime.Gosched()
		}
	})
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); err != nil {
		t.Errorf("Place once the store returned: %v", err)
	}
	sameAsStored(t, r, s)
}

// TestSnapshotsDoNotWaitForAWrite: while a write waits for the store (here
// with the default write timeout of 30 s), snapshots and reads answer.
func TestSnapshotsDoNotWaitForAWrite(t *testing.T) {
	ctx := context.Background()
	r, s := openFaulty(t, nil, nil)
	defer r.Close()
	p, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	s.set(holdNth(2, entered, release, nil), nil)
	placed := make(chan error)
	go func() {
		_, err := r.BeginMove(ctx, "a", map[bool]string{true: "aws-eu-west-1", false: "linode-eu"}[p.DataCenter == "linode-eu"])
		placed <- err
	}()
	<-entered
	within(t, "reads while a write waits for the store", func() {
		if rep, err := r.Verify(ctx); err != nil || !rep.OK() || rep.Accounts != 1 || rep.Moves != 0 {
			t.Errorf("Verify: %+v, %v", rep, err)
		}
		n := 0
		for range r.Accounts(p.DataCenter) {
			n++
		}
		if n != 1 {
			t.Errorf("Accounts yields %d, want 1", n)
		}
		if plan, err := r.PlanEvacuation(ctx, p.DataCenter); err != nil || len(plan.Moves) != 1 {
			t.Errorf("PlanEvacuation: %+v, %v", plan, err)
		}
		if h, err := r.History(ctx, "a"); err != nil || len(h) != 1 {
			t.Errorf("History: %v, %v", h, err)
		}
		if got, err := r.Lookup("a"); err != nil || got != p {
			t.Errorf("Lookup: %+v, %v", got, err)
		}
	})
	close(release)
	if err := <-placed; err != nil {
		t.Fatal(err)
	}
}

// TestStoreHonoursDeadline: Apply's context has the write timeout. A
// write whose store call ran out of it fails, saying so, but its error does
// not match context.DeadlineExceeded: the caller's context, here without a
// deadline, did not end, and a caller that checks for its own deadline
// first must not be misled.
func TestStoreHonoursDeadline(t *testing.T) {
	ctx := context.Background()
	for _, prompt := range []bool{false, true} {
		t.Run(fmt.Sprintf("prompt=%v", prompt), func(t *testing.T) {
			r, s := openFaultyAs(t, prompt, nil, func(ctx context.Context, n int, apply func() error) error {
				if _, ok := ctx.Deadline(); !ok {
					return errors.New("test: Apply's context has no deadline")
				}
				if n == 1 {
					<-ctx.Done()
					return &net.OpError{Op: "read", Net: "tcp", Err: fmt.Errorf("%w: %w", errTestServerGone, ctx.Err())}
				}
				return apply()
			}, WithWriteTimeout(20*time.Millisecond))
			_, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"})
			if !errors.Is(err, ErrStoreFailed) || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "write timeout") {
				t.Errorf("Place past the deadline: %v; want ErrStoreFailed, saying the write timeout ended, not matching context.DeadlineExceeded", err)
			}
			// What the store's error matched, it still matches.
			var oe *net.OpError
			if !errors.Is(err, errTestServerGone) || !errors.As(err, &oe) {
				t.Errorf("Place past the deadline: %v; want it to match the store's error and its *net.OpError", err)
			}
			if _, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
				t.Errorf("Place again: %v", err)
			}
			sameAsStored(t, r, s)
		})
	}
}

var errTestServerGone = errors.New("test: the server is gone")

// TestTimedOut: only a store error of a call that the write timeout
// ended becomes a writeTimeoutError, and never a conflict, nor one of a
// call its callers' deadline ended.
func TestTimedOut(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	conflict := fmt.Errorf("%w (%w)", &ConflictError{AccountID: "a", Stale: true}, context.DeadlineExceeded)
	timeout := fmt.Errorf("waiting: %w", context.DeadlineExceeded)
	for _, tt := range []struct {
		name      string
		ctx       context.Context
		err       error
		byCallers bool
		rewrite   bool
	}{
		{"the write timeout ended the call", expired, timeout, false, true},
		{"the callers' deadline ended the call", expired, timeout, true, false},
		{"a conflict as the timeout ended", expired, conflict, false, false},
		{"another error as the timeout ended", expired, errTestServerGone, false, false},
		{"the store's own deadline, call context live", context.Background(), timeout, false, false},
		{"the call's context cancelled", cancelled, timeout, false, false},
		{"no error", expired, nil, false, false},
	} {
		got := timedOut(tt.ctx, tt.err, time.Second, tt.byCallers)
		var wt *writeTimeoutError
		if rewrote := errors.As(got, &wt); rewrote != tt.rewrite {
			t.Errorf("%s: timedOut = %v; rewritten %v, want %v", tt.name, got, rewrote, tt.rewrite)
		}
		if !tt.rewrite && got != tt.err {
			t.Errorf("%s: timedOut = %v, want the error unchanged", tt.name, got)
		}
	}
}

// TestCloseWithHungStore: Close returns although the store hangs, and
// closes the store once its call returns.
func TestCloseWithHungStore(t *testing.T) {
	ctx := context.Background()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	r, s := openFaulty(t, nil, holdFirst(entered, release, nil), WithWriteTimeout(50*time.Millisecond))
	placed, queued := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"})
		placed <- err
	}()
	<-entered
	go func() {
		_, err := r.Place(ctx, PlaceRequest{AccountID: "queued", Country: "DE"})
		queued <- err
	}()
	waitQueued(t, r, 1)
	within(t, "Close", func() {
		if err := r.Close(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Close with a hung store: %v; want ErrUnavailable", err)
		}
	})
	if err := <-placed; !errors.Is(err, ErrUnavailable) {
		t.Errorf("Place: %v", err)
	}
	if err := <-queued; !errors.Is(err, ErrClosed) {
		t.Errorf("Place queued when Close was called: %v; want ErrClosed", err)
	}
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "b", Country: "DE"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Place after Close: %v", err)
	}
	select {
	case <-s.closed:
		t.Fatal("store closed while its Apply runs")
	default:
	}
	close(release)
	within(t, "closing the store", func() { <-s.closed })
}

// TestWithdrawQueued: a caller whose context ends while its request waits
// for a leader gets the context's error, and its request never runs.
func TestWithdrawQueued(t *testing.T) {
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	r, s := openFaulty(t, nil, holdFirst(entered, release, nil))
	first := make(chan error)
	go func() {
		_, err := r.Place(ctx, PlaceRequest{AccountID: "first", Country: "DE"})
		first <- err
	}()
	<-entered
	cctx, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error)
	go func() {
		_, err := r.Place(cctx, PlaceRequest{AccountID: "gave-up", Country: "DE"})
		gaveUp <- err
	}()
	waitQueued(t, r, 1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Errorf("Place whose context ended in the queue: %v", err)
	}
	waitQueued(t, r, 0)
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lookup("gave-up"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup of the withdrawn account: %v", err)
	}
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "after", Country: "DE"}); err != nil {
		t.Errorf("Place after the withdrawal: %v", err)
	}
	sameAsStored(t, r, s)
}

// TestWithdrawPassesTheLead: a request told to lead that withdraws passes
// the lead to the next queued request, or releases it.
func TestWithdrawPassesTheLead(t *testing.T) {
	newReq := func() *request { return &request{done: make(chan error, 1)} }
	a, b := newReq(), newReq()
	q := &queue{pending: []*request{a, b}, leading: true}
	q.handOff()
	if !q.withdraw(a) {
		t.Fatal("withdraw of a queued request: false")
	}
	if got := <-b.done; got != errLead {
		t.Errorf("next request got %v, want errLead", got)
	}
	if !q.leading || !slices.Equal(q.pending, []*request{b}) {
		t.Errorf("after withdrawing the one told to lead: leading %v, %d pending", q.leading, len(q.pending))
	}
	b.done <- errLead
	if !q.withdraw(b) || q.leading || len(q.pending) != 0 {
		t.Errorf("after withdrawing the last: leading %v, %d pending", q.leading, len(q.pending))
	}
	if q.withdraw(newReq()) {
		t.Error("withdraw of a request no longer queued: true")
	}
}

// TestRefusalCountedOnce: a request refused in a batch that the store
// refuses runs again alone; its refusal is counted once.
func TestRefusalCountedOnce(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	entered, release := make(chan struct{}), make(chan struct{})
	r, s := openFaulty(t, &refusingStore{versions: map[string]uint64{}}, holdFirst(entered, release, nil), WithRegisterer(reg))
	defer r.Close()
	go r.Place(ctx, PlaceRequest{AccountID: "first", Country: "DE"})
	<-entered
	var wg sync.WaitGroup
	var errStale, errMissing error
	wg.Go(func() { _, errStale = r.Place(ctx, PlaceRequest{AccountID: "stale-1", Country: "DE"}) })
	waitQueued(t, r, 1)
	wg.Go(func() { _, errMissing = r.BeginMove(ctx, "missing", "linode-eu") })
	waitQueued(t, r, 2)
	close(release)
	wg.Wait()
	if !errors.Is(errStale, ErrConflict) || !errors.Is(errMissing, ErrNotFound) {
		t.Fatalf("Place: %v; BeginMove: %v", errStale, errMissing)
	}
	if got := s.count(); got != 3 { // first, the batch, then stale-1 alone
		t.Fatalf("%d Apply calls, want 3: the batch was not retried request by request", got)
	}
	if got := refusals(t, reg, "not_found"); got != 1 {
		t.Errorf("not_found refusals counted %v times, want 1", got)
	}
}

func refusals(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "domicile_refusals_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no refusals metric for %s", reason)
	return 0
}

// TestSnapshotSeesWaitingRows: scans see the rows that wait for memdb's
// accounts table, newest first, in ID order, with those already flushed.
func TestSnapshotSeesWaitingRows(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var want []string
	for i := range behindLimit + 10 {
		id := fmt.Sprintf("a%05d", (i*7919)%(behindLimit+10))
		place(t, r, id)
		want = append(want, id)
	}
	if len(r.behind) == 0 || len(r.behind) >= behindLimit {
		t.Fatalf("%d rows waiting; the test needs some in memdb and some waiting", len(r.behind))
	}
	p, err := r.Lookup(want[len(want)-1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginMove(ctx, p.AccountID, map[bool]string{true: "aws-eu-west-1", false: "linode-eu"}[p.DataCenter == "linode-eu"]); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	var got []string
	moving := 0
	for p := range r.AccountsInRegion(region.EU) {
		got = append(got, p.AccountID)
		if p.Moving() {
			moving++
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accounts mismatch (-want +got):\n%s", diff)
	}
	if moving != 1 {
		t.Errorf("%d accounts moving, want 1 (the newest row)", moving)
	}
	if rep, err := r.Verify(ctx); err != nil || !rep.OK() || rep.Accounts != len(want) || rep.Moves != 1 {
		t.Errorf("Verify: %+v, %v", rep, err)
	}
}

func place(t *testing.T, r *Router, id string) {
	t.Helper()
	if _, err := r.Place(context.Background(), PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
		t.Fatal(err)
	}
}

// TestWriteTimeoutOption: the write timeout must be positive.
func TestWriteTimeoutOption(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := Open(context.Background(), WithWriteTimeout(d)); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Open(WithWriteTimeout(%v)): %v; want ErrInvalidOption", d, err)
		}
	}
	r, err := Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.writeTimeout != DefaultWriteTimeout {
		t.Errorf("default write timeout %v, want %v", r.writeTimeout, DefaultWriteTimeout)
	}
}

// TestQueuedWriteErrorsNameTheirSubject: a write that waits in the queue
// behind a batch being committed, and gives up (its context ends) or is
// turned away (Close), gets an error that names its account, as every
// other error of a write does.
func TestQueuedWriteErrorsNameTheirSubject(t *testing.T) {
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	r, _ := openFaulty(t, nil, func(ctx context.Context, n int, apply func() error) error {
		if n == 1 {
			close(entered)
			<-release
		}
		return apply()
	})
	place := func(ctx context.Context, id string) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := r.Place(ctx, PlaceRequest{AccountID: id, Country: "DE"})
			done <- err
		}()
		return done
	}
	// until waits, within a bound, for cond on the queue (under its lock).
	until := func(what string, cond func(q *queue) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			r.queue.mu.Lock()
			ok := cond(&r.queue)
			r.queue.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
		}
	}
	leader := place(ctx, "a")
	<-entered

	gives, giveUp := context.WithCancel(ctx)
	gaveUp := place(gives, "b")
	until("b queued", func(q *queue) bool { return len(q.pending) == 1 })
	giveUp()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `account "b"`) {
		t.Errorf("a queued write whose context ended: %v; want context.Canceled, naming account \"b\"", err)
	}

	turned := place(ctx, "c")
	until("c queued", func(q *queue) bool { return len(q.pending) == 1 })
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	until("Close to stop writes", func(q *queue) bool { return q.closed })
	close(release)
	if err := <-leader; err != nil {
		t.Errorf("the batch being committed when Close came: %v", err)
	}
	if err := <-turned; !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), `account "c"`) {
		t.Errorf("a queued write turned away by Close: %v; want ErrClosed, naming account \"c\"", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}
