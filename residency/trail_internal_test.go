package residency

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// trailMemStore is a MemoryStore that keeps the trails to itself, as the
// PostgreSQL store does: Load and LoadAccounts give no History, Trail
// reads it.
type trailMemStore struct{ *MemoryStore }

func (s trailMemStore) Load(ctx context.Context, fn func(StoredAccount) error) error {
	return s.MemoryStore.Load(ctx, func(a StoredAccount) error { a.History = nil; return fn(a) })
}

func (s trailMemStore) LoadAccounts(ctx context.Context, ids []string, fn func(StoredAccount) error) error {
	return s.MemoryStore.LoadAccounts(ctx, ids, func(a StoredAccount) error { a.History = nil; return fn(a) })
}

func (s trailMemStore) Trail(ctx context.Context, accountID string) ([]Event, error) {
	var h []Event
	err := s.MemoryStore.LoadAccounts(ctx, []string{accountID}, func(a StoredAccount) error { h = a.History; return nil })
	return h, err
}

// TestTrailStore: a Router on a TrailStore holds no trail in memory, and
// answers History from the store, before and after a reopen, for every
// kind of write and for a deleted account placed afresh.
func TestTrailStore(t *testing.T) {
	ctx := context.Background()
	s := trailMemStore{NewMemoryStore()}
	r, err := Open(ctx, WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.trails == nil {
		t.Fatal("the Router did not take the store for a TrailStore")
	}
	p, err := r.Place(ctx, PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	var to string
	for _, d := range r.ordered {
		if d.Region == p.Region && d.ID != p.DataCenter && d.ID != p.Backup {
			to = d.ID
			break
		}
	}
	m, err := r.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.GrantTransfer(ctx, Transfer{AccountID: "acme", To: p.Region + 1, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "gone", Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "gone", "closed by the customer"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Place(ctx, PlaceRequest{AccountID: "gone", Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]EventKind{
		"acme": {Placed, MoveBegun, MoveCompleted, TransferGranted},
		"gone": {Placed, Deleted, Placed},
	}
	check := func(r *Router, when string) {
		t.Helper()
		for id, kinds := range want {
			h, err := r.History(ctx, id)
			if err != nil {
				t.Fatalf("%s: History(%s): %v", when, id, err)
			}
			var got []EventKind
			for i, e := range h {
				got = append(got, e.Kind)
				if e.AccountID != id || e.Version != uint64(i+1) {
					t.Errorf("%s: History(%s)[%d] is of account %q version %d", when, id, i, e.AccountID, e.Version)
				}
			}
			if diff := cmp.Diff(kinds, got); diff != "" {
				t.Errorf("%s: History(%s) kinds mismatch (-want +got):\n%s", when, id, diff)
			}
			if a := r.lookup.get(id); a == nil {
				t.Errorf("%s: account %s is not in the lookup index", when, id)
			} else if a.history != nil {
				t.Errorf("%s: account %s: the Router holds a trail of %d events in memory, want none", when, id, len(a.history))
			}
		}
		if _, err := r.History(ctx, "never-placed"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: History of an account never placed: %v, want ErrNotFound", when, err)
		}
		// The trail given is the caller's: the store's is untouched.
		h, _ := r.History(ctx, "acme")
		again := slices.Clone(h)
		h[0].Kind = "overwritten"
		if h2, _ := r.History(ctx, "acme"); !cmp.Equal(again, h2) {
			t.Errorf("%s: History gave the store's own trail to the caller", when)
		}
	}
	check(r, "open")
	copied, err := NewMemoryStoreFrom(ctx, s.MemoryStore)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(ctx, WithStore(trailMemStore{copied}))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	check(r2, "reopened")
}
