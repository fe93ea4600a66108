package residency_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

// TestCompleteMoveIntoAnnouncedDataCenter: a migration script begins a
// move into eu-b and is stopped; before it runs again, the catalog is
// changed by review to announce eu-b from a date still ahead (which, the
// README says, withdraws a data center in use at once until that date).
// BeginMove into eu-b is now refused with ErrNotEffective, so CompleteMove
// of the open move must be refused too (ErrNotEffective, which also
// matches ErrNoDataCenter as BeginMove's refusal does), changing nothing
// and leaving the move to be aborted; and Verify must at least warn of the
// open move, as it does of one into a drained data center.
//
// Observed: CompleteMove moves the account into eu-b, and Verify then
// reports the account as a violation ("announced from ... and may not hold
// data yet"): the Router itself made the violation. Before the
// CompleteMove, Verify says nothing of the open move.
func TestCompleteMoveIntoAnnouncedDataCenter(t *testing.T) {
	ctx := context.Background()
	dcs := []provider.DataCenter{
		{ID: "eu-a", Provider: provider.Linode, Region: region.EU},
		{ID: "eu-b", Provider: provider.AWS, Region: region.EU},
		{ID: "eu-c", Provider: provider.Websupport, Region: region.EU},
	}
	path := filepath.Join(t.TempDir(), "announced.db")
	clk := newClock()
	r := open(t, residency.WithCatalog(mustCatalog(t, dcs...)), residency.WithPath(path), residency.WithClock(clk.Now))
	var m residency.Move
	for i := 0; m.ID == ""; i++ {
		p := place(t, r, fmt.Sprintf("acct-%d", i), "DE")
		if p.DataCenter == "eu-b" {
			continue
		}
		var err error
		if m, err = r.BeginMove(ctx, p.AccountID, "eu-b"); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()

	// The catalog of the next run announces eu-b for next year.
	dcs[1].Effective = clk.Now().AddDate(1, 0, 0).Truncate(24 * time.Hour)
	r = open(t, residency.WithCatalog(mustCatalog(t, dcs...)), residency.WithPath(path), residency.WithClock(clk.Now))
	rep, err := r.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(append(rep.Violations, rep.Warnings...), func(f residency.Finding) bool {
		return f.AccountID == m.AccountID && f.DataCenter == "eu-b"
	}) {
		t.Errorf("Verify = %+v; want a finding about open move %s into eu-b, which is announced and cannot complete", rep, m.ID)
	}
	before := snapshot(t, r)
	p, err := r.CompleteMove(ctx, m.ID)
	if !errors.Is(err, residency.ErrNotEffective) || !errors.Is(err, residency.ErrNoDataCenter) {
		t.Errorf("CompleteMove into eu-b, announced from %s: placement on %q, error %v; want ErrNotEffective (and ErrNoDataCenter), as BeginMove refuses",
			dcs[1].Effective.Format(time.DateOnly), p.DataCenter, err)
	}
	unchanged(t, r, before, "CompleteMove into an announced data center")
	if rep, err := r.Verify(ctx); err != nil || !rep.OK() {
		t.Errorf("Verify after CompleteMove = %+v, %v; want no violation (the Router must not make one)", rep, err)
	}
	if _, err := r.AbortMove(ctx, m.ID); err != nil && !strings.Contains(err.Error(), "not found") {
		t.Errorf("AbortMove: %v", err)
	}
}

// TestBeginMoveTakesTheLongestAgreement: a customer signed two transfer
// agreements to the US: "DPA-2026-001", which ends in an hour, and
// "DPA-2026-002", which does not expire. A script begins a move to the US
// and copies for two hours (a large account). Since only the agreement a
// move began under counts at CompleteMove (TestCompleteMoveUnderItsOwnAgreement),
// BeginMove's choice decides whether the move can complete: it should
// take the live agreement that lasts longest, so that a move the customer
// allowed is not refused for an agreement picked by name.
//
// Observed: BeginMove takes the first live agreement by reference
// ("DPA-2026-001"), and CompleteMove two hours later is ErrCrossRegion:
// the move must be aborted and its data copied again, although a live
// agreement covered it throughout.
func TestBeginMoveTakesTheLongestAgreement(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	r := open(t, residency.WithClock(clk.Now))
	place(t, r, "acme", "FR")
	for _, tr := range []residency.Transfer{
		{AccountID: "acme", To: region.US, Reference: "DPA-2026-001", ExpiresAt: clk.Now().Add(time.Hour)},
		{AccountID: "acme", To: region.US, Reference: "DPA-2026-002"},
	} {
		if err := r.GrantTransfer(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	m, err := r.BeginMove(ctx, "acme", "aws-us-west-1")
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour)
	p, err := r.CompleteMove(ctx, m.ID)
	if err != nil {
		t.Fatalf("CompleteMove two hours later: %v (the move began under %q); want it completed under DPA-2026-002, live throughout", err, m.Transfer)
	}
	if p.Region != region.US || p.Transfer != "DPA-2026-002" {
		t.Errorf("CompleteMove = %+v; want the US under DPA-2026-002", p)
	}
}
