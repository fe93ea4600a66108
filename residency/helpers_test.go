package residency_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
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

func mustCatalog(t testing.TB, dcs ...provider.DataCenter) *provider.Catalog {
	t.Helper()
	c, err := provider.NewCatalog(dcs...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// state is everything a Router records, read through its public API.
type state struct {
	Placements []residency.Placement
	Moves      []residency.Move
	History    map[string][]residency.Event
	Agreements map[string][]residency.Agreement
}

func snapshot(t testing.TB, r *residency.Router) state {
	t.Helper()
	s := state{History: map[string][]residency.Event{}, Agreements: map[string][]residency.Agreement{}}
	for _, reg := range region.All() {
		for p := range r.AccountsInRegion(reg) {
			s.Placements = append(s.Placements, p)
			h, err := r.History(context.Background(), p.AccountID)
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
	return s
}

// unchanged fails the test if r's state differs from before.
func unchanged(t testing.TB, r *residency.Router, before state, call string) {
	t.Helper()
	if diff := cmp.Diff(before, snapshot(t, r)); diff != "" {
		t.Errorf("%s changed the state (-before +after):\n%s", call, diff)
	}
}
