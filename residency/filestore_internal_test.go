package residency

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// syncSettings are the settings of a bbolt DB that decide whether a commit
// reaches the disk before it returns.
type syncSettings struct {
	NoSync, NoGrowSync, NoFreelistSync, ReadOnly bool
	FreelistType                                 bolt.FreelistType
}

func syncSettingsOf(db *bolt.DB) syncSettings {
	return syncSettings{db.NoSync, db.NoGrowSync, db.NoFreelistSync, db.IsReadOnly(), db.FreelistType}
}

// TestFileStoreSyncs fails if the file store stops syncing its commits:
// the bbolt DB behind a Router's WithPath (and behind OpenFileStore) must
// fdatasync every commit, its growth and its freelist, before and after
// Apply; and Apply must write pages through a bbolt transaction, which
// bbolt's Commit fdatasyncs under these settings.
func TestFileStoreSyncs(t *testing.T) {
	ctx := context.Background()
	want := syncSettings{FreelistType: bolt.FreelistMapType}
	path := filepath.Join(t.TempDir(), "sync.db")
	r, err := Open(ctx, WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, ok := r.store.(*fileStore)
	if !ok {
		t.Fatalf("WithPath gave a %T, want *fileStore", r.store)
	}
	if diff := cmp.Diff(want, syncSettingsOf(s.db)); diff != "" {
		t.Errorf("bbolt settings at Open (-want +got):\n%s", diff)
	}
	before := s.db.Stats()
	for i := range 3 {
		if _, err := r.Place(ctx, PlaceRequest{AccountID: "acct-" + string(rune('a'+i)), Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(want, syncSettingsOf(s.db)); diff != "" {
		t.Errorf("bbolt settings after Apply (-want +got):\n%s", diff)
	}
	// Each Place is one Apply, one bbolt write transaction: a commit with
	// its fdatasync (bbolt's Tx.Commit writes, then syncs unless NoSync).
	// A store that kept its changes elsewhere would write no page.
	after := s.db.Stats()
	diff := after.Sub(&before)
	if got := diff.TxStats.GetWrite(); got == 0 {
		t.Errorf("three Applies wrote %d pages", got)
	}
	if diff := cmp.Diff(want, syncSettingsOf(mustOpenFileStore(t, filepath.Join(t.TempDir(), "other.db")).db)); diff != "" {
		t.Errorf("bbolt settings of OpenFileStore (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(*boltOptions(time.Second), bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType}); diff != "" {
		t.Errorf("bbolt options (-got +want):\n%s", diff)
	}
}

func mustOpenFileStore(t *testing.T, path string) *fileStore {
	t.Helper()
	s, err := openFileStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFileStoreRefusesTimesOutOfRange checks that Apply refuses a unit
// holding a time the format cannot hold before writing any of it, and
// stores the extremes it can hold exactly.
func TestFileStoreRefusesTimesOutOfRange(t *testing.T) {
	ctx := context.Background()
	s := mustOpenFileStore(t, filepath.Join(t.TempDir(), "times.db"))
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	change := func(id string, version uint64, ag *Agreement) Change {
		p := Placement{AccountID: id, Version: version, Region: region.EU, DataCenter: "linode-eu", Created: at, Updated: at}
		return Change{Placement: p, Event: Event{AccountID: id, Version: version, Time: at, Kind: Placed}, Agreement: ag}
	}
	year10000 := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		changes []Change
	}{
		{"agreement expiring in 10000", []Change{change("ok", 1, nil), change("far", 1, &Agreement{Transfer: Transfer{AccountID: "far", To: region.US, Reference: "T", ExpiresAt: year10000}, Granted: at})}},
		{"event before year 1", func() []Change {
			c := change("early", 1, nil)
			c.Event.Time = time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC)
			return []Change{change("ok", 1, nil), c}
		}()},
		{"status changed in 10000", []Change{change("ok", 1, nil), {DataCenter: &DataCenterState{ID: "linode-eu", Status: "draining", Changed: year10000}}}},
	}
	for _, tt := range tests {
		err := s.Apply(ctx, tt.changes)
		if !errors.Is(err, errTimeRange) || errors.Is(err, ErrConflict) {
			t.Errorf("%s: Apply error = %v; want one matching errTimeRange", tt.name, err)
		}
	}
	n := 0
	if err := s.Load(ctx, func(StoredAccount) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("after refused units: Load found %d accounts, %v; want none", n, err)
	}
	if st, err := s.DataCenters(ctx); err != nil || len(st) != 0 {
		t.Errorf("after refused units: DataCenters = %v, %v; want none", st, err)
	}
	// The extremes it holds come back exactly.
	far := &Agreement{Transfer: Transfer{AccountID: "far", To: region.US, Reference: "T", ExpiresAt: maxTime}, Granted: minTime.Add(time.Nanosecond)}
	want := change("far", 1, far)
	if err := s.Apply(ctx, []Change{want}); err != nil {
		t.Fatal(err)
	}
	var got []StoredAccount
	if err := s.Load(ctx, func(a StoredAccount) error { got = append(got, a); return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]StoredAccount{{Placement: want.Placement, History: []Event{want.Event}, Agreements: []Agreement{*far}}}, got); diff != "" {
		t.Errorf("stored extremes (-want +got):\n%s", diff)
	}
}

// TestFileStoreLoadAccounts checks that LoadAccounts reads the accounts
// asked for, in the order asked, each exactly as Load reads it (events and
// agreements included, also for account IDs that are prefixes of others),
// and skips the accounts the store does not hold.
func TestFileStoreLoadAccounts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "load.db")
	r, err := Open(ctx, WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "a b", "ab", "b"} {
		if _, err := r.Place(ctx, PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a", "ab"} {
		if err := r.GrantTransfer(ctx, Transfer{AccountID: id, To: region.US, Reference: "T-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	s := r.store.(*fileStore)
	all := map[string]StoredAccount{}
	if err := s.Load(ctx, func(a StoredAccount) error { all[a.Placement.AccountID] = a; return nil }); err != nil {
		t.Fatal(err)
	}
	var got []StoredAccount
	if err := s.LoadAccounts(ctx, []string{"b", "zz", "ab", "a", "a b"}, func(a StoredAccount) error { got = append(got, a); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []StoredAccount{all["b"], all["ab"], all["a"], all["a b"]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadAccounts (-want +got):\n%s", diff)
	}
	if len(all["a"].Agreements) != 1 || len(all["a"].History) != 2 || len(all["a b"].Agreements) != 0 {
		t.Errorf("Load read account a as %+v and a b as %+v", all["a"], all["a b"])
	}
	r.Close()
}
