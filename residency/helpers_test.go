package residency_test

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func open(t testing.TB, opts ...residency.Option) *residency.Router {
	t.Helper()
	r, err := residency.Open(context.Background(), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func place(t testing.TB, r *residency.Router, id, country string) residency.Placement {
	t.Helper()
	p, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: id, Country: country})
	if err != nil {
		t.Fatalf("Place(%s, %s): %v", id, country, err)
	}
	return p
}

// rowsIn yields n import rows of accounts in Germany, named
// fmt.Sprintf(format, i).
func rowsIn(format string, n int) iter.Seq[residency.ImportRow] {
	return func(yield func(residency.ImportRow) bool) {
		for i := range n {
			if !yield(residency.ImportRow{AccountID: fmt.Sprintf(format, i), Country: "DE"}) {
				return
			}
		}
	}
}

func mustCatalog(t testing.TB, dcs ...provider.DataCenter) *provider.Catalog {
	t.Helper()
	c, err := provider.NewCatalog(dcs...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// state is everything a Router records, read through its public API.
type state = routertest.State

// snapshot reads r's state: [routertest.Of], under the name these tests
// use.
func snapshot(t testing.TB, r *residency.Router) state { return routertest.Of(t, r) }

// unchanged fails the test if r's state differs from before.
func unchanged(t testing.TB, r *residency.Router, before state, call string) {
	t.Helper()
	if diff := cmp.Diff(before, snapshot(t, r)); diff != "" {
		t.Errorf("%s changed the state (-before +after):\n%s", call, diff)
	}
}
