package residency_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

// The Store contract itself is checked by residency/storetest, which runs
// against MemoryStore; these tests cover what is MemoryStore's own.

func ExampleMemoryStore() {
	ctx := context.Background()
	s := residency.NewMemoryStore()
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		panic(err)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "de"}); err != nil {
		panic(err)
	}
	r.Close() // closes s; its data stays

	// A Router on another handle of the same data, as after a restart.
	r, err = residency.Open(ctx, residency.WithStore(s.Reopen()))
	if err != nil {
		panic(err)
	}
	defer r.Close()
	p, err := r.Lookup("acme")
	fmt.Println(p.Region, p.Version, err)
	// Output: EU 1 <nil>
}

// TestMemoryStoreHandles checks that handles share the data, and that a
// closed handle refuses every call with ErrStoreClosed while the others
// go on.
func TestMemoryStoreHandles(t *testing.T) {
	ctx := context.Background()
	a := residency.NewMemoryStore()
	b := a.Reopen()
	at := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	change := residency.Change{
		Placement: residency.Placement{AccountID: "acme", Region: region.EU, DataCenter: "linode-eu", Version: 1, Created: at, Updated: at},
		Event:     residency.Event{Time: at, Kind: residency.Placed, AccountID: "acme", To: "linode-eu", Version: 1},
	}
	if err := a.Apply(ctx, []residency.Change{change}); err != nil {
		t.Fatalf("Apply on the first handle: %v", err)
	}
	if err := b.Apply(ctx, []residency.Change{change}); !errors.Is(err, residency.ErrConflict) {
		t.Errorf("Apply of account %q at version 1 again, on the second handle = %v, want ErrConflict", "acme", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	fn := func(residency.StoredAccount) error { return nil }
	for name, err := range map[string]error{
		"Apply":        a.Apply(ctx, nil),
		"Load":         a.Load(ctx, fn),
		"LoadAccounts": a.LoadAccounts(ctx, []string{"acme"}, fn),
	} {
		if !errors.Is(err, residency.ErrStoreClosed) {
			t.Errorf("%s on a closed handle = %v, want ErrStoreClosed", name, err)
		}
	}
	if _, err := a.DataCenters(ctx); !errors.Is(err, residency.ErrStoreClosed) {
		t.Errorf("DataCenters on a closed handle = %v, want ErrStoreClosed", err)
	}
	var got []residency.StoredAccount
	if err := b.Load(ctx, func(s residency.StoredAccount) error { got = append(got, s); return nil }); err != nil {
		t.Fatalf("Load on the open handle: %v", err)
	}
	want := []residency.StoredAccount{{Placement: change.Placement, History: []residency.Event{change.Event}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load on the open handle mismatch (-want +got):\n%s", diff)
	}
}

// TestMemoryStoreConcurrent checks, under the race detector, that handles
// may be used from many goroutines at once, and that a unit is atomic to
// concurrent readers: Load sees an account's whole unit or none of it.
func TestMemoryStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	s := residency.NewMemoryStore()
	at := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			h := s.Reopen()
			for i := range 50 {
				id := fmt.Sprintf("w%d-%d", w, i)
				p := residency.Placement{AccountID: id, Region: region.EU, DataCenter: "linode-eu", Version: 1, Created: at, Updated: at}
				unit := []residency.Change{{Placement: p, Event: residency.Event{Time: at, Kind: residency.Placed, AccountID: id, Version: 1}}}
				p.Version = 2
				unit = append(unit, residency.Change{Placement: p, Event: residency.Event{Time: at, Kind: residency.MoveAborted, AccountID: id, Version: 2}})
				if err := h.Apply(ctx, unit); err != nil {
					t.Errorf("Apply(account %q): %v", id, err)
				}
			}
		})
		wg.Go(func() {
			for range 50 {
				err := s.Load(ctx, func(a residency.StoredAccount) error {
					if a.Placement.Version != 2 || len(a.History) != 2 {
						return fmt.Errorf("account %q at version %d with %d events, want 2 and 2", a.Placement.AccountID, a.Placement.Version, len(a.History))
					}
					return nil
				})
				if err != nil {
					t.Errorf("Load during Apply: %v", err)
				}
			}
		})
	}
	wg.Wait()
	n := 0
	s.Load(ctx, func(residency.StoredAccount) error { n++; return nil })
	if n != 200 {
		t.Errorf("Load after the writers: %d accounts, want 200", n)
	}
}

// TestNewMemoryStoreFrom checks a dry run's copy: it holds what the file
// store holds, and writes to it leave the file unchanged.
func TestNewMemoryStoreFrom(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "domicile.db")
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex", "initech"} {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginMove(ctx, "acme", "aws-us-west-1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Drain(ctx, "websupport-eu"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	file, err := residency.OpenFileStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	before := storeContents(t, file)
	dry, err := residency.NewMemoryStoreFrom(ctx, file)
	if err != nil {
		t.Fatalf("NewMemoryStoreFrom: %v", err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, storeContents(t, dry)); diff != "" {
		t.Errorf("the copy mismatches the file store (-file +copy):\n%s", diff)
	}

	r, err = residency.Open(ctx, residency.WithStore(dry))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "hooli", Country: "US"}); err != nil {
		t.Fatalf("Place on the copy: %v", err)
	}
	if err := r.Activate(ctx, "websupport-eu"); err != nil {
		t.Fatalf("Activate on the copy: %v", err)
	}
	r.Close()
	file, err = residency.OpenFileStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if diff := cmp.Diff(before, storeContents(t, file)); diff != "" {
		t.Errorf("the file store changed by writes to the copy (-before +after):\n%s", diff)
	}
}

// contents is everything a store holds.
type contents struct {
	Accounts    []residency.StoredAccount
	DataCenters []residency.DataCenterState
}

func storeContents(t *testing.T, s residency.Store) contents {
	t.Helper()
	var c contents
	if err := s.Load(context.Background(), func(a residency.StoredAccount) error {
		c.Accounts = append(c.Accounts, a)
		return nil
	}); err != nil {
		t.Fatalf("Load: %v", err)
	}
	var err error
	if c.DataCenters, err = s.DataCenters(context.Background()); err != nil {
		t.Fatalf("DataCenters: %v", err)
	}
	return c
}
