package residency

import (
	"context"
	"errors"
	"testing"
)

// faultyTrailStore is a faultyStore over a TrailStore that is one too.
type faultyTrailStore struct{ *faultyStore }

func (s faultyTrailStore) Trail(ctx context.Context, id string) ([]Event, error) {
	return s.faultyStore.Store.(TrailStore).Trail(ctx, id)
}

// TestTrailStoreApplyFailsAfterPersisting: on a TrailStore, a change the
// store made durable before failing is found on reading back, as it is on
// other stores (TestApplyFailsAfterPersisting).
func TestTrailStoreApplyFailsAfterPersisting(t *testing.T) {
	ctx := context.Background()
	fs := &faultyStore{Store: trailMemStore{NewMemoryStore()}, onApply: persistThenFail(1, errFsync), closed: make(chan struct{})}
	r, err := Open(ctx, WithStore(faultyTrailStore{fs}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.trails == nil {
		t.Fatal("not a TrailStore")
	}
	p, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"})
	if err != nil {
		got, lerr := r.Lookup("a")
		t.Fatalf("Place with a store that persisted then failed: %v (ErrStoreFailed: %v); yet Lookup = %+v, %v", err, errors.Is(err, ErrStoreFailed), got, lerr)
	}
	if got, err := r.Lookup("a"); err != nil || got != p {
		t.Errorf("Lookup = %+v, %v; want %+v", got, err, p)
	}
}

// blockingTrails holds Trail until release, so that Close can run meanwhile.
type blockingTrails struct {
	trailMemStore
	entered chan struct{}
	release chan struct{}
}

func (s blockingTrails) Trail(ctx context.Context, id string) ([]Event, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.trailMemStore.Trail(ctx, id)
}

// TestHistoryRacingClose: History that Close overtakes answers ErrClosed,
// as README says every method does after Close.
func TestHistoryRacingClose(t *testing.T) {
	ctx := context.Background()
	s := blockingTrails{trailMemStore{NewMemoryStore()}, make(chan struct{}), make(chan struct{})}
	r, err := Open(ctx, WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := r.History(ctx, "a")
		done <- err
	}()
	<-s.entered
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	close(s.release)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("History overtaken by Close = %v, want ErrClosed", err)
	}
}

// trailStoreWithA returns a trailMemStore holding account "a", placed in
// Germany by a Router that stays open until the test ends.
func trailStoreWithA(t *testing.T) trailMemStore {
	t.Helper()
	s := trailMemStore{NewMemoryStore()}
	r, err := Open(context.Background(), WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := r.Place(context.Background(), PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCopyOfTrailStore: NewMemoryStoreFrom a TrailStore copies the trails,
// as its doc says ("everything src holds").
func TestCopyOfTrailStore(t *testing.T) {
	ctx := context.Background()
	s := trailStoreWithA(t)
	cp, err := NewMemoryStoreFrom(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, WithStore(cp))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if h, err := r.History(ctx, "a"); err != nil || len(h) != 1 {
		t.Errorf("History on the copy = %d events, %v; want 1", len(h), err)
	}
}

// TestWrappedTrailStore: a Store wrapper that embeds residency.Store (as
// examples/migrate's discard does) hides Trail; a Router on it would
// answer History with what it wrote since Open alone, so Open refuses the
// accounts its Load gives without their trail.
func TestWrappedTrailStore(t *testing.T) {
	ctx := context.Background()
	s := trailStoreWithA(t)
	if r, err := Open(ctx, WithStore(struct{ Store }{s})); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			r.Close()
		}
		t.Errorf("Open on a wrapper that hides Trail = %v, want ErrCorrupt", err)
	}
}

// TestTrailStoreApplyFailsBefore: the fix of holds still tells a change
// the store did not make from one it made.
func TestTrailStoreApplyFailsBefore(t *testing.T) {
	ctx := context.Background()
	fs := &faultyStore{Store: trailMemStore{NewMemoryStore()}, onApply: failBefore(1, errFsync), closed: make(chan struct{})}
	r, err := Open(ctx, WithStore(faultyTrailStore{fs}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"}); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("Place with a store that failed before applying = %v, want ErrStoreFailed", err)
	}
	if _, err := r.Lookup("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup after a failed Place = %v, want ErrNotFound", err)
	}
}

// shortTrailStore is a TrailStore whose trails lack their last event, as
// a damaged database's would.
type shortTrailStore struct{ trailMemStore }

func (s shortTrailStore) Trail(ctx context.Context, accountID string) ([]Event, error) {
	h, err := s.trailMemStore.Trail(ctx, accountID)
	return h[:max(len(h)-1, 0)], err
}

// TestShortTrail: History refuses a trail that does not reach the version
// the Router holds, rather than give it as the account's whole history.
func TestShortTrail(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx, WithStore(shortTrailStore{trailMemStore{NewMemoryStore()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if h, err := r.History(ctx, "a"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("History of a trail one event short = %d events, %v; want ErrCorrupt", len(h), err)
	}
}
