package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
)

// TestRouterReopens runs a Router on the store, closes it (which closes
// the store) and opens a new one on the database: it holds the same
// placements, trails, agreements and statuses, and Verify is clean.
func TestRouterReopens(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("acct-", i), Country: []string{"DE", "US", "GB", "SG"}[i%4]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acct-0", To: region.US, Reference: "T-1", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	m, err := r.BeginMove(ctx, "acct-0", "aws-us-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	p4, err := r.Lookup("acct-4") // DE: in EU
	if err != nil {
		t.Fatal(err)
	}
	to := "linode-eu"
	if p4.DataCenter == to {
		to = "aws-eu-west-1"
	}
	if _, err := r.BeginMove(ctx, "acct-4", to); err != nil {
		t.Fatal(err)
	}
	if err := r.Drain(ctx, "linode-uk"); err != nil {
		t.Fatal(err)
	}
	type state struct {
		Placements map[string]residency.Placement
		Histories  map[string][]residency.Event
		Agreements map[string][]residency.Agreement
		Status     provider.Status
	}
	read := func(r *residency.Router) state {
		st := state{Placements: map[string]residency.Placement{}, Histories: map[string][]residency.Event{}, Agreements: map[string][]residency.Agreement{}}
		for i := range 50 {
			id := fmt.Sprint("acct-", i)
			p, err := r.Lookup(id)
			if err != nil {
				t.Fatal(err)
			}
			st.Placements[id] = p
			if st.Histories[id], err = r.History(ctx, id); err != nil {
				t.Fatal(err)
			}
			if st.Agreements[id], err = r.Agreements(id); err != nil {
				t.Fatal(err)
			}
		}
		if st.Status, err = r.Status("linode-uk"); err != nil {
			t.Fatal(err)
		}
		return st
	}
	want := read(r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(ctx); err != postgres.ErrClosed {
		t.Errorf("the Router's Close left the store open: Head = %v", err)
	}

	s2 := openStore(t, dsn)
	r2, err := residency.Open(ctx, residency.WithStore(s2))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if diff := cmp.Diff(want, read(r2)); diff != "" {
		t.Errorf("reopened Router mismatch (-want +got):\n%s", diff)
	}
	if rep, err := r2.Verify(ctx); err != nil || len(rep.Violations) != 0 {
		t.Errorf("Verify = %+v, %v", rep.Violations, err)
	}
	if want.Status != provider.Draining {
		t.Errorf("status of linode-uk = %v, want draining", want.Status)
	}
}
