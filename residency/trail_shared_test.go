package residency_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestSharedRoutersHoldNoTrails: Routers on PostgreSQL, a TrailStore,
// keep no audit trail in memory, neither the one that writes nor the one
// that follows its writes, nor one opened afterwards; History reads the
// trails from the database. The same writes through a Router on a file
// store, which keeps its trails in memory, are counted, so that the count
// is known to see them.
func TestSharedRoutersHoldNoTrails(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	open := func() *residency.Router { return routertest.OnPostgres(t, dsn, nil) }
	file, err := residency.Open(ctx, residency.WithPath(filepath.Join(t.TempDir(), "r.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	writer, follower := open(), open()
	const accounts = 20
	for _, r := range []*residency.Router{writer, file} {
		for i := range accounts {
			id := fmt.Sprint("acct-", i)
			p, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
			if err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				if _, err := r.BeginMove(ctx, id, p.Backup); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := follower.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	const events = accounts + accounts/2
	if n := residency.HeldEvents(file); n != events {
		t.Fatalf("the file store's Router holds %d events, want %d", n, events)
	}
	later := open()
	for name, r := range map[string]*residency.Router{"writer": writer, "follower": follower, "opened later": later} {
		if n := residency.HeldEvents(r); n != 0 {
			t.Errorf("%s holds %d events in memory, want 0", name, n)
		}
		for i := range accounts {
			h, err := r.History(ctx, fmt.Sprint("acct-", i))
			if want := 1 + (i+1)%2; err != nil || len(h) != want {
				t.Errorf("%s: History(acct-%d) = %d events, %v; want %d", name, i, len(h), err, want)
			}
		}
	}
}

// TestHeldEventsCountsEachEventOnce: the counter of
// TestSharedRoutersHoldNoTrails counts each event a Router holds once,
// wherever its rows are: in memdb's accounts table, among the committed
// rows that wait for it (older versions of an account among them), and in
// the lookup index, which holds the same rows as memdb. More accounts than
// wait for memdb at most (4096) put rows in all three.
func TestHeldEventsCountsEachEventOnce(t *testing.T) {
	ctx := context.Background()
	r, err := residency.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const accounts = 5000
	for i := range accounts {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("acct-", i), Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < accounts; i += 2 {
		id := fmt.Sprint("acct-", i)
		p, err := r.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.BeginMove(ctx, id, p.Backup); err != nil {
			t.Fatal(err)
		}
	}
	if n, want := residency.HeldEvents(r), accounts+accounts/2; n != want {
		t.Errorf("HeldEvents = %d, want %d", n, want)
	}
}
