package residency

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/domicile-go/domicile/region"
)

// refusingStore keeps changes in memory and refuses, with ErrConflict, any
// batch that changes an account whose ID starts with "stale", as a store
// shared with another process refuses a stale write.
type refusingStore struct {
	mu       sync.Mutex
	versions map[string]uint64
	closed   int
}

func (s *refusingStore) Load(context.Context, func(StoredAccount) error) error { return nil }
func (s *refusingStore) LoadAccounts(context.Context, []string, func(StoredAccount) error) error {
	return nil
}
func (s *refusingStore) Close() error                                           { s.closed++; return nil }
func (s *refusingStore) DataCenters(context.Context) ([]DataCenterState, error) { return nil, nil }

func (s *refusingStore) Apply(_ context.Context, changes []Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range changes {
		if strings.HasPrefix(c.Placement.AccountID, "stale") {
			return fmt.Errorf("%w: account %q changed elsewhere", ErrConflict, c.Placement.AccountID)
		}
	}
	for _, c := range changes {
		if c.DataCenter != nil {
			continue
		}
		if s.versions[c.Placement.AccountID]+1 != c.Placement.Version {
			return fmt.Errorf("version gap for %s", c.Placement.AccountID)
		}
		s.versions[c.Placement.AccountID] = c.Placement.Version
	}
	return nil
}

// TestStoreRefusalIsolated checks that a change the store refuses fails
// only its own call, even when group commit put it in a batch with others,
// and leaves nothing behind in memory. The first Apply holds the lead until
// all 64 requests are queued, so that they form one batch, which the store
// refuses: every run takes the path that retries request by request.
func TestStoreRefusalIsolated(t *testing.T) {
	ctx := context.Background()
	inner := &refusingStore{versions: map[string]uint64{}}
	entered, release := make(chan struct{}), make(chan struct{})
	r, s := openFaulty(t, inner, holdFirst(entered, release, nil))
	defer r.Close()
	firstErr := make(chan error, 1)
	go func() {
		_, err := r.Place(ctx, PlaceRequest{AccountID: "ok-first", Country: "DE"})
		firstErr <- err
	}()
	<-entered
	var wg sync.WaitGroup
	errs := make([]error, 64)
	for i := range errs {
		wg.Go(func() {
			id := fmt.Sprintf("ok-%d", i)
			if i%8 == 0 {
				id = fmt.Sprintf("stale-%d", i)
			}
			_, errs[i] = r.Place(ctx, PlaceRequest{AccountID: id, Country: "DE"})
		})
	}
	waitQueued(t, r, len(errs))
	close(release)
	wg.Wait()
	if err := <-firstErr; err != nil {
		t.Fatal(err)
	}
	// The held Apply, the batch's, and one for each request alone.
	if got, want := s.count(), 2+len(errs); got != want {
		t.Errorf("%d Apply calls, want %d", got, want)
	}
	for i, err := range errs {
		stale := i%8 == 0
		if stale != errors.Is(err, ErrConflict) || !stale && err != nil {
			t.Errorf("Place #%d (stale %v): %v", i, stale, err)
		}
		id := fmt.Sprintf("ok-%d", i)
		if stale {
			id = fmt.Sprintf("stale-%d", i)
		}
		_, lookupErr := r.Lookup(id)
		if stale != errors.Is(lookupErr, ErrNotFound) {
			t.Errorf("Lookup(%s) after Place: %v", id, lookupErr)
		}
	}
	n := 0
	for range r.AccountsInRegion(region.EU) {
		n++
	}
	if n != 57 || len(inner.versions) != 57 {
		t.Errorf("%d accounts in memory, %d in the store; want 57", n, len(inner.versions))
	}
}

// TestRouterClosesItsStore checks WithStore's promise: the Router closes
// the store when it is closed, and when Open fails.
func TestRouterClosesItsStore(t *testing.T) {
	ctx := context.Background()
	s := &refusingStore{versions: map[string]uint64{}}
	r, err := Open(ctx, WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	if s.closed != 0 {
		t.Fatalf("store closed %d times while open", s.closed)
	}
	r.Close()
	r.Close()
	if s.closed != 1 {
		t.Errorf("store closed %d times by Close, want 1", s.closed)
	}
	failing := &refusingStore{versions: map[string]uint64{}}
	if _, err := Open(ctx, WithStore(failing), WithCatalog(nil)); !errors.Is(err, ErrInvalidOption) || failing.closed != 1 {
		t.Errorf("Open with a bad option: %v; store closed %d times, want 1", err, failing.closed)
	}
}

// TestChangeCheckAccountID: Check's error for an account ID that is not
// valid matches ErrInvalidAccount as well as ErrInvalidChange, as its doc
// says; a valid change, of an account or a data center, passes.
func TestChangeCheckAccountID(t *testing.T) {
	valid := Change{
		Placement: Placement{AccountID: "acme", Region: region.EU, Version: 1},
		Event:     Event{AccountID: "acme", Version: 1, Kind: Placed},
	}
	if err := valid.Check(); err != nil {
		t.Errorf("Check of a valid placement: %v", err)
	}
	status := Change{DataCenter: &DataCenterState{ID: "linode-eu", Status: "draining", Version: 1}}
	if err := status.Check(); err != nil {
		t.Errorf("Check of a valid status: %v", err)
	}
	for _, id := range []string{"", "a\x00b", "a\xffb", strings.Repeat("a", MaxAccountIDLen+1)} {
		c := valid
		c.Placement.AccountID, c.Event.AccountID = id, id
		if err := c.Check(); !errors.Is(err, ErrInvalidChange) || !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("Check of account ID %.20q: %v; want ErrInvalidChange and ErrInvalidAccount", id, err)
		}
	}
}
