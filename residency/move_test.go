package residency_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// otherEU returns an EU data center other than the account's, on another
// provider than its backup's, so that a move changes both.
func otherDC(t *testing.T, r *residency.Router, p residency.Placement) string {
	t.Helper()
	for _, d := range r.Catalog().InRegion(p.Region) {
		if d.ID != p.DataCenter {
			return d.ID
		}
	}
	t.Fatalf("no other data center in %s", p.Region)
	return ""
}

func TestMoveInsideRegion(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	r := open(t, residency.WithClock(clk.Now))
	p := place(t, r, "acme", "DE")
	to := otherDC(t, r, p)

	clk.Add(time.Minute)
	m, err := r.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}
	want := residency.Move{ID: m.ID, AccountID: "acme", From: p.DataCenter, To: to, ToRegion: region.EU, Began: clk.Now()}
	if diff := cmp.Diff(want, m); diff != "" || !strings.HasPrefix(m.ID, "mv-") {
		t.Errorf("BeginMove mismatch (-want +got), ID %q:\n%s", m.ID, diff)
	}
	during, err := r.Lookup("acme")
	if err != nil {
		t.Fatal(err)
	}
	if during.DataCenter != p.DataCenter || !during.Moving() || during.Move != m || during.Version != 2 {
		t.Errorf("Lookup during the move = %+v; want the source, the move, version 2", during)
	}

	clk.Add(time.Minute)
	done, err := r.CompleteMove(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	dc, _ := r.Catalog().DataCenter(to)
	if done.DataCenter != to || done.Provider != dc.Provider || done.Region != region.EU || done.Moving() ||
		done.Version != 3 || done.Rule != "EU member state" || !done.Updated.Equal(clk.Now()) || done.Backup == to || done.Backup == "" {
		t.Errorf("CompleteMove = %+v", done)
	}
	if got, _ := r.Lookup("acme"); !cmp.Equal(got, done) {
		t.Errorf("Lookup after the move = %+v, want %+v", got, done)
	}
	if n := len(collect(r.Moves())); n != 0 {
		t.Errorf("%d open moves after CompleteMove", n)
	}
	h, _ := r.History(ctx, "acme")
	kinds := []residency.EventKind{}
	for _, e := range h {
		kinds = append(kinds, e.Kind)
	}
	if diff := cmp.Diff([]residency.EventKind{residency.Placed, residency.MoveBegun, residency.MoveCompleted}, kinds); diff != "" {
		t.Errorf("history kinds mismatch (-want +got):\n%s", diff)
	}
	last := h[2]
	if last.From != p.DataCenter || last.To != to || last.MoveID != m.ID || last.Version != 3 || !last.Time.Equal(clk.Now()) {
		t.Errorf("completed event = %+v", last)
	}
	// Completing or aborting it again finds no move.
	if _, err := r.CompleteMove(ctx, m.ID); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("second CompleteMove error = %v; want ErrNotFound", err)
	}
}

func collect[T any](seq func(func(T) bool)) []T {
	var out []T
	for v := range seq {
		out = append(out, v)
	}
	return out
}

func TestAbortMove(t *testing.T) {
	ctx := context.Background()
	r := open(t)
	p := place(t, r, "acme", "US")
	m, err := r.BeginMove(ctx, "acme", otherDC(t, r, p))
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.AbortMove(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := p
	want.Version = 3
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(residency.Placement{}, "Updated")); diff != "" {
		t.Errorf("AbortMove mismatch (-want +got):\n%s", diff)
	}
	if _, err := r.AbortMove(ctx, m.ID); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("second AbortMove error = %v; want ErrNotFound", err)
	}
	// The account can move again.
	if _, err := r.BeginMove(ctx, "acme", otherDC(t, r, p)); err != nil {
		t.Errorf("BeginMove after abort: %v", err)
	}
}

func TestBeginMoveRefuses(t *testing.T) {
	ctx := context.Background()
	cat := mustCatalog(t,
		provider.DataCenter{ID: "eu-a", Provider: provider.Linode, Region: region.EU},
		provider.DataCenter{ID: "eu-b", Provider: provider.AWS, Region: region.EU, Weight: 1000},
		provider.DataCenter{ID: "eu-drain", Provider: provider.AWS, Region: region.EU, Status: provider.Draining},
		provider.DataCenter{ID: "eu-off", Provider: provider.AWS, Region: region.EU, Status: provider.Offline},
		provider.DataCenter{ID: "us-a", Provider: provider.AWS, Region: region.US},
	)
	r := open(t, residency.WithCatalog(cat))
	p := place(t, r, "acme", "DE")
	place(t, r, "moving", "DE")
	if _, err := r.BeginMove(ctx, "moving", otherDC(t, r, place(t, r, "moving", "DE"))); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, r)
	tests := []struct {
		name, account, to string
		want              error
	}{
		{"unknown account", "nobody", "eu-a", residency.ErrNotFound},
		{"invalid account", "", "eu-a", residency.ErrInvalidAccount},
		{"unknown data center", "acme", "mars-1", residency.ErrUnknownDataCenter},
		{"empty data center", "acme", "", residency.ErrUnknownDataCenter},
		{"same data center", "acme", p.DataCenter, residency.ErrConflict},
		{"draining target", "acme", "eu-drain", residency.ErrNoDataCenter},
		{"offline target", "acme", "eu-off", residency.ErrNoDataCenter},
		{"other region", "acme", "us-a", residency.ErrCrossRegion},
		{"already moving", "moving", "eu-a", residency.ErrMoveInProgress},
	}
	for _, tt := range tests {
		m, err := r.BeginMove(ctx, tt.account, tt.to)
		if !errors.Is(err, tt.want) || m != (residency.Move{}) {
			t.Errorf("%s: BeginMove = %+v, %v; want %v", tt.name, m, err, tt.want)
		}
	}
	unchanged(t, r, before, "refused BeginMove calls")
	for _, id := range []string{"", "mv-nope", strings.Repeat("m", 300)} {
		if _, err := r.CompleteMove(ctx, id); !errors.Is(err, residency.ErrNotFound) {
			t.Errorf("CompleteMove(%.10q) error = %v; want ErrNotFound", id, err)
		}
		if _, err := r.AbortMove(ctx, id); !errors.Is(err, residency.ErrNotFound) {
			t.Errorf("AbortMove(%.10q) error = %v; want ErrNotFound", id, err)
		}
	}
	unchanged(t, r, before, "CompleteMove and AbortMove of unknown moves")
}

func TestCrossRegionMoveWithAgreement(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	r := open(t, residency.WithClock(clk.Now))
	p := place(t, r, "acme", "FR")
	if _, err := r.BeginMove(ctx, "acme", "aws-us-west-1"); !errors.Is(err, residency.ErrCrossRegion) {
		t.Fatalf("BeginMove to US without agreement: %v; want ErrCrossRegion", err)
	}
	// An agreement for another region does not cover the US.
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.UK, Reference: "T-UK"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginMove(ctx, "acme", "aws-us-west-1"); !errors.Is(err, residency.ErrCrossRegion) {
		t.Fatalf("BeginMove to US with a UK agreement: %v; want ErrCrossRegion", err)
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-US", ExpiresAt: clk.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	m, err := r.BeginMove(ctx, "acme", "aws-us-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Transfer != "T-US" || m.ToRegion != region.US {
		t.Errorf("move = %+v; want agreement T-US to US", m)
	}
	if got, _ := r.Lookup("acme"); got.Region != region.EU || got.DataCenter != p.DataCenter {
		t.Errorf("during the move Lookup = %s/%s; want the EU source", got.Region, got.DataCenter)
	}
	done, err := r.CompleteMove(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Region != region.US || done.DataCenter != "aws-us-west-1" || done.Backup != "linode-us" ||
		done.Transfer != "T-US" || done.Rule != `transfer agreement "T-US"` || done.Country.String() != "FR" {
		t.Errorf("CompleteMove = %+v", done)
	}
	h, _ := r.History(ctx, "acme")
	last := h[len(h)-1]
	if last.Kind != residency.MoveCompleted || last.Reference != "T-US" || last.Rule != `transfer agreement "T-US"` {
		t.Errorf("last event = %+v; want the completed move naming agreement T-US", last)
	}
	// The home region is now the US: placing with the old country conflicts.
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "FR"}); !errors.Is(err, residency.ErrConflict) {
		t.Errorf("Place(FR) after the move: %v; want ErrConflict", err)
	}
	rep, err := r.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Errorf("Verify after the agreed move: %+v, %v", rep.Violations, err)
	}
}

func TestCrossRegionMoveAgreementEnds(t *testing.T) {
	ctx := context.Background()
	for _, end := range []string{"revoked", "expired"} {
		t.Run(end, func(t *testing.T) {
			clk := newClock()
			r := open(t, residency.WithClock(clk.Now))
			place(t, r, "acme", "JP")
			if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.EU, Reference: "T-1", ExpiresAt: clk.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			m, err := r.BeginMove(ctx, "acme", "websupport-eu")
			if err != nil {
				t.Fatal(err)
			}
			if end == "revoked" {
				if err := r.RevokeTransfer(ctx, "acme", "T-1"); err != nil {
					t.Fatal(err)
				}
			} else {
				clk.Add(time.Hour)
			}
			rep, err := r.Verify(ctx)
			if err != nil || len(rep.Violations) != 1 || !strings.Contains(rep.Violations[0].Problem, "without a live transfer agreement") {
				t.Errorf("Verify with an open move under a %s agreement: %+v, %v", end, rep.Violations, err)
			}
			before := snapshot(t, r)
			if _, err := r.CompleteMove(ctx, m.ID); !errors.Is(err, residency.ErrCrossRegion) {
				t.Fatalf("CompleteMove after the agreement %s: %v; want ErrCrossRegion", end, err)
			}
			unchanged(t, r, before, "refused CompleteMove")
			p, err := r.AbortMove(ctx, m.ID)
			if err != nil || p.Region != region.APAC || p.Moving() {
				t.Errorf("AbortMove = %+v, %v; want the account back in APAC", p, err)
			}
			if _, err := r.BeginMove(ctx, "acme", "websupport-eu"); !errors.Is(err, residency.ErrCrossRegion) {
				t.Errorf("BeginMove after the agreement %s: %v; want ErrCrossRegion", end, err)
			}
			if rep, _ := r.Verify(ctx); !rep.OK() {
				t.Errorf("Verify after abort: %+v", rep.Violations)
			}
		})
	}
}

func TestConcurrentMoves(t *testing.T) {
	ctx := context.Background()
	r := open(t)
	const n = 200
	for i := range n {
		place(t, r, fmt.Sprintf("acct-%d", i), "DE")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	began := 0
	// Several goroutines race to move every account: exactly one BeginMove
	// per account wins, the others get ErrMoveInProgress or, once it
	// completed, move it again.
	for g := range 4 {
		wg.Go(func() {
			for i := range n {
				id := fmt.Sprintf("acct-%d", i)
				p, err := r.Lookup(id)
				if err != nil {
					t.Error(err)
					return
				}
				m, err := r.BeginMove(ctx, id, otherDC(t, r, p))
				switch {
				case errors.Is(err, residency.ErrMoveInProgress), errors.Is(err, residency.ErrConflict):
					continue
				case err != nil:
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
				mu.Lock()
				began++
				mu.Unlock()
				if _, err := r.CompleteMove(ctx, m.ID); err != nil {
					t.Errorf("CompleteMove: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if began < n {
		t.Errorf("%d moves began, want at least %d", began, n)
	}
	if rep, err := r.Verify(ctx); err != nil || !rep.OK() || rep.Accounts != n || rep.Moves != 0 {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
	for i := range n {
		h, _ := r.History(ctx, fmt.Sprintf("acct-%d", i))
		p, _ := r.Lookup(fmt.Sprintf("acct-%d", i))
		if uint64(len(h)) != p.Version || h[len(h)-1].Version != p.Version {
			t.Fatalf("acct-%d: %d events, version %d", i, len(h), p.Version)
		}
	}
}

// TestCompleteMoveUnderItsOwnAgreement: a move checks the agreement it began
// under, not whichever live agreement sorts first.
func TestCompleteMoveUnderItsOwnAgreement(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		revokeB bool
		want    error
		reason  string
	}{
		{"second agreement granted", false, nil, "agreement A sorts before B and covers the US too: it must not make B's move uncompletable"},
		{"own agreement revoked", true, residency.ErrCrossRegion, "A is live and covers the US, but the move began under B: A does not stand in for it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := open(t)
			place(t, r, "acme", "FR")
			if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "B"}); err != nil {
				t.Fatal(err)
			}
			m, err := r.BeginMove(ctx, "acme", "aws-us-west-1")
			if err != nil || m.Transfer != "B" {
				t.Fatalf("BeginMove = %+v, %v; want a move under B", m, err)
			}
			if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "A"}); err != nil {
				t.Fatal(err)
			}
			if tt.revokeB {
				if err := r.RevokeTransfer(ctx, "acme", "B"); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, r)
			p, err := r.CompleteMove(ctx, m.ID)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CompleteMove: %v; want %v (%s)", err, tt.want, tt.reason)
			}
			if err != nil {
				unchanged(t, r, before, "refused CompleteMove")
				if rep, _ := r.Verify(ctx); len(rep.Violations) != 1 {
					t.Errorf("Verify with the move's agreement revoked: %+v; want one violation", rep.Violations)
				}
				return
			}
			if p.Region != region.US || p.Transfer != "B" || p.Rule != `transfer agreement "B"` {
				t.Errorf("CompleteMove = %+v; want the US under agreement B", p)
			}
			h, _ := r.History(ctx, "acme")
			if last := h[len(h)-1]; last.Kind != residency.MoveCompleted || last.Reference != "B" {
				t.Errorf("last event = %+v; want the completed move naming B", last)
			}
		})
	}
}

// TestCompleteMoveIntoDrainedDataCenter: a data center drained while a move
// into it is open does not receive the account; the move is listed by the
// evacuation plan and can be aborted.
func TestCompleteMoveIntoDrainedDataCenter(t *testing.T) {
	ctx := context.Background()
	for _, status := range []string{"draining", "offline"} {
		t.Run(status, func(t *testing.T) {
			cat := mustCatalog(t,
				provider.DataCenter{ID: "eu-a", Provider: provider.Linode, Region: region.EU},
				provider.DataCenter{ID: "eu-b", Provider: provider.AWS, Region: region.EU},
				provider.DataCenter{ID: "eu-c", Provider: provider.Websupport, Region: region.EU},
			)
			path := filepath.Join(t.TempDir(), "drain.db")
			r := open(t, residency.WithCatalog(cat), residency.WithPath(path))
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
			if status == "draining" {
				if err := r.Drain(ctx, "eu-b"); err != nil {
					t.Fatal(err)
				}
			} else {
				// The catalog of a later run says offline.
				r.Close()
				cat := mustCatalog(t,
					provider.DataCenter{ID: "eu-a", Provider: provider.Linode, Region: region.EU},
					provider.DataCenter{ID: "eu-b", Provider: provider.AWS, Region: region.EU, Status: provider.Offline},
					provider.DataCenter{ID: "eu-c", Provider: provider.Websupport, Region: region.EU},
				)
				r = open(t, residency.WithCatalog(cat), residency.WithPath(path))
			}
			before := snapshot(t, r)
			if _, err := r.CompleteMove(ctx, m.ID); !errors.Is(err, residency.ErrNoDataCenter) || !strings.Contains(err.Error(), "abort") {
				t.Fatalf("CompleteMove into a %s data center: %v; want ErrNoDataCenter telling to abort", status, err)
			}
			unchanged(t, r, before, "refused CompleteMove")
			rep, err := r.Verify(ctx)
			if err != nil || !rep.OK() || !slices.ContainsFunc(rep.Warnings, func(f residency.Finding) bool {
				return f.AccountID == m.AccountID && f.DataCenter == "eu-b" && strings.Contains(f.Problem, "must be aborted")
			}) {
				t.Errorf("Verify = %+v, %v; want a warning that move %s into eu-b must be aborted", rep, err, m.ID)
			}

			plan, err := r.PlanEvacuation(ctx, "eu-b")
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Stranded) != 1 {
				t.Fatalf("plan of eu-b strands %v; want the incoming move", plan.Stranded)
			}
			s := plan.Stranded[0]
			if s.AccountID != m.AccountID || s.MoveID != m.ID || !errors.Is(s.Err, residency.ErrMoveInProgress) || !strings.Contains(s.Err.Error(), "abort") {
				t.Errorf("stranded = %+v; want account %s, move %s, ErrMoveInProgress telling to abort", s, m.AccountID, m.ID)
			}
			if _, err := r.AbortMove(ctx, m.ID); err != nil {
				t.Fatalf("AbortMove: %v", err)
			}
			if plan, err := r.PlanEvacuation(ctx, "eu-b"); err != nil || len(plan.Stranded) != 0 {
				t.Errorf("plan after the abort strands %v, %v; want none", plan.Stranded, err)
			}
			if rep, _ := r.Verify(ctx); slices.ContainsFunc(rep.Warnings, func(f residency.Finding) bool { return f.AccountID == m.AccountID }) {
				t.Errorf("Verify after the abort still warns: %+v", rep.Warnings)
			}
		})
	}
}

// TestCompleteMoveIntoAnnouncedDataCenter: a migration script begins a
// move into eu-b and is stopped; before it runs again, the catalog is
// changed by review to announce eu-b from a date still ahead (which, the
// README says, withdraws a data center in use at once until that date).
// BeginMove into eu-b is now refused with ErrNotEffective, so CompleteMove
// of the open move is refused too (ErrNotEffective, which also
// matches ErrNoDataCenter as BeginMove's refusal does), changing nothing
// and leaving the move to be aborted; and Verify warns of the open move,
// as it does of one into a drained data center.
//
// (Before, CompleteMove moved the account into eu-b, and Verify then
// reported the Router's own move as a violation; before the CompleteMove
// it said nothing of the open move.)
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
// (Before, BeginMove took the first by reference, and CompleteMove two
// hours later was ErrCrossRegion.)
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
