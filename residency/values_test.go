package residency_test

import (
	"context"
	"testing"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

// TestReturnedValuesAreCopies changes everything a caller gets back (a
// Lookup result and its Move, the Move of BeginMove, the History and
// Agreements slices, the values the iterators yield) and checks that the
// Router's state, what it answers next, and its next writes are untouched.
// Placement.Move used to be a pointer shared with the Router: changing it
// through a Lookup result made the next writer panic.
func TestReturnedValuesAreCopies(t *testing.T) {
	ctx := context.Background()
	r := open(t)
	place(t, r, "acme", "DE")
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	m, err := r.BeginMove(ctx, "acme", "aws-us-west-1")
	if err != nil {
		t.Fatal(err)
	}
	id := m.ID
	before := snapshot(t, r)
	lookedUp, err := r.Lookup("acme")
	if err != nil {
		t.Fatal(err)
	}
	want := lookedUp

	forge := func(p *residency.Placement) {
		p.DataCenter, p.Region, p.Version, p.Transfer = "forged", region.UK, 99, "forged"
		p.Move.ID, p.Move.To, p.Move.ToRegion, p.Move.Transfer = "", "forged", region.UK, "forged"
	}
	forge(&lookedUp)
	m.ID, m.To, m.Transfer = "forged", "forged", "forged"
	h, _ := r.History(ctx, "acme")
	h[0].Kind, h[0].To, h[len(h)-1].MoveID = "forged", "forged", "forged"
	_ = append(h[:1], residency.Event{Kind: "forged"})
	ag, _ := r.Agreements("acme")
	ag[0].Reference, ag[0].To = "forged", region.UK
	for p := range r.AccountsInRegion(region.EU) {
		forge(&p)
	}
	for mv := range r.Moves() {
		mv.ID, mv.To = "forged", "forged"
	}

	unchanged(t, r, before, "changing returned values")
	if got, err := r.Lookup("acme"); err != nil || !cmp.Equal(want, got) {
		t.Errorf("Lookup after changing a returned copy = %+v, %v; want %+v", got, err, want)
	}
	// The next writers see the Router's own state.
	done, err := r.CompleteMove(ctx, id)
	if err != nil {
		t.Fatalf("CompleteMove after changing returned copies: %v", err)
	}
	if done.DataCenter != "aws-us-west-1" || done.Region != region.US || done.Transfer != "T-1" || done.Moving() || done.Version != want.Version+1 {
		t.Errorf("CompleteMove = %+v", done)
	}
	if rep, err := r.Verify(ctx); err != nil || !rep.OK() {
		t.Errorf("Verify = %+v, %v", rep.Violations, err)
	}
}

// TestCatalogHandle checks that overwriting what Router.Catalog returns
// leaves the Router's catalog alone.
func TestCatalogHandle(t *testing.T) {
	r := open(t)
	*r.Catalog() = provider.Catalog{}
	if _, ok := r.Catalog().DataCenter("linode-eu"); !ok {
		t.Fatal("overwriting the returned catalog emptied the Router's")
	}
	if p, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil || p.Region != region.EU {
		t.Errorf("Place after overwriting the returned catalog = %+v, %v", p, err)
	}
}
