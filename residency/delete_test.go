package residency_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// TestDelete checks what a deletion ends, what it keeps, and that the ID
// can be placed afresh with its trail and versions going on.
func TestDelete(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	r, clk, p := accessRouter(t, residency.WithRegisterer(reg))
	place(t, r, "globex", "FR")
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	grant(t, r, "acme", "gated", "C-1", time.Time{})
	object(t, r, "acme", "svc", "O-1")
	clk.Add(time.Hour)
	if err := r.Delete(ctx, "acme", "trial expired"); err != nil {
		t.Fatal(err)
	}
	at := clk.Now()

	// Gone for every reader and writer that serves it.
	if _, err := r.Lookup("acme"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("Lookup after Delete = %v, want ErrNotFound", err)
	}
	if err := r.MayAccess("acme", hostOf(p.DataCenter)); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("MayAccess after Delete = %v, want ErrNotFound", err)
	}
	if _, err := r.SubProcessors("acme"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("SubProcessors after Delete = %v, want ErrNotFound", err)
	}
	for name, call := range map[string]func() error{
		"Delete":    func() error { return r.Delete(ctx, "acme", "again") },
		"BeginMove": func() error { _, err := r.BeginMove(ctx, "acme", "eu-a"); return err },
		"GrantTransfer": func() error {
			return r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.UK, Reference: "T-2"})
		},
		"RevokeTransfer": func() error { return r.RevokeTransfer(ctx, "acme", "T-1") },
		"GrantAccess": func() error {
			return r.GrantAccess(ctx, residency.Consent{AccountID: "acme", SubProcessor: "gated", Reference: "C-2"})
		},
		"RevokeAccess": func() error { return r.RevokeAccess(ctx, "acme", "C-1") },
		"Object": func() error {
			return r.Object(ctx, residency.Objection{AccountID: "acme", SubProcessor: "svc", Reference: "O-2"})
		},
		"Withdraw": func() error { return r.WithdrawObjection(ctx, "acme", "O-1") },
	} {
		if err := call(); !errors.Is(err, residency.ErrNotFound) {
			t.Errorf("%s on a deleted account = %v, want ErrNotFound", name, err)
		}
	}
	var ids []string
	for _, reg := range region.All() {
		for p := range r.AccountsInRegion(reg) {
			ids = append(ids, p.AccountID)
		}
	}
	for p := range r.Accounts(p.DataCenter) {
		if p.AccountID == "acme" {
			t.Errorf("Accounts(%s) yields the deleted account", p.DataCenter)
		}
	}
	if diff := cmp.Diff([]string{"globex"}, ids); diff != "" {
		t.Errorf("AccountsInRegion after Delete mismatch (-want +got):\n%s", diff)
	}
	rep, err := r.Verify(ctx)
	if err != nil || !rep.OK() || rep.Accounts != 1 {
		t.Errorf("Verify after Delete = %d accounts, %v, %v; want 1 account and no violation", rep.Accounts, rep.Violations, err)
	}
	accounts := metricValues(t, reg, "domicile_accounts")
	var total float64
	for _, v := range accounts {
		total += v
	}
	if total != 1 {
		t.Errorf("domicile_accounts after Delete sums to %v, want 1: %v", total, accounts)
	}

	// The trail stays, and ends with what the deletion ended and the
	// deletion itself.
	h, err := r.History(ctx, "acme")
	if err != nil {
		t.Fatalf("History of a deleted account: %v", err)
	}
	wantTail := []residency.Event{
		{Time: at, Kind: residency.TransferRevoked, AccountID: "acme", From: "EU", To: "US", Reference: "T-1", Rule: "account deleted", Version: 5},
		{Time: at, Kind: residency.AccessRevoked, AccountID: "acme", To: "gated", Reference: "C-1", Rule: "account deleted", Version: 6},
		{Time: at, Kind: residency.ObjectionWithdrawn, AccountID: "acme", To: "svc", Reference: "O-1", Rule: "account deleted", Version: 7},
		{Time: at, Kind: residency.Deleted, AccountID: "acme", From: p.DataCenter, Rule: "trial expired", Version: 8},
	}
	if len(h) != 8 {
		t.Fatalf("History has %d events, want 8: %v", len(h), h)
	}
	if diff := cmp.Diff(wantTail, h[4:]); diff != "" {
		t.Errorf("History's tail mismatch (-want +got):\n%s", diff)
	}
	ags, err := r.Agreements("acme")
	if err != nil || len(ags) != 1 || !ags[0].Revoked.Equal(at) {
		t.Errorf("Agreements after Delete = %v, %v; want T-1 revoked at the deletion", ags, err)
	}
	cs, err := r.Consents("acme")
	if err != nil || len(cs) != 1 || !cs[0].Revoked.Equal(at) {
		t.Errorf("Consents after Delete = %v, %v; want C-1 revoked at the deletion", cs, err)
	}
	os, err := r.Objections("acme")
	if err != nil || len(os) != 1 || !os[0].Withdrawn.Equal(at) {
		t.Errorf("Objections after Delete = %v, %v; want O-1 withdrawn at the deletion", os, err)
	}

	// Placed afresh: a new account, the same trail going on.
	clk.Add(time.Hour)
	fresh, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "US"})
	if err != nil {
		t.Fatalf("placing a deleted ID afresh: %v", err)
	}
	if fresh.Region != region.US || fresh.Version != 9 || !fresh.Created.Equal(clk.Now()) {
		t.Errorf("fresh placement = %+v, want region US, version 9, created now", fresh)
	}
	if err := r.MayAccess("acme", "svc"); err != nil {
		t.Errorf("MayAccess(svc) of the fresh account = %v: the old objection must not carry over", err)
	}
	if err := r.MayAccess("acme", "gated"); !errors.Is(err, residency.ErrNoConsent) {
		t.Errorf("MayAccess(gated) of the fresh account = %v: the old consent must not carry over", err)
	}
	h, _ = r.History(ctx, "acme")
	if last := h[len(h)-1]; len(h) != 9 || last.Kind != residency.Placed || last.Version != 9 {
		t.Errorf("History after placing afresh ends with %+v (%d events), want placed at version 9", last, len(h))
	}
	if total := sumValues(metricValues(t, reg, "domicile_accounts")); total != 2 {
		t.Errorf("domicile_accounts after placing afresh sums to %v, want 2", total)
	}
}

func sumValues(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// TestDeleteDurable checks that deletions, consents and objections survive
// a restart of the file store, and that a deleted ID placed afresh after
// it continues its versions.
func TestDeleteDurable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	clk := newClock()
	opts := []residency.Option{residency.WithPath(path), residency.WithCatalog(accessCatalog(t, clk.Now())), residency.WithClock(clk.Now)}
	r, err := residency.Open(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	place(t, r, "acme", "DE")
	place(t, r, "globex", "DE")
	place(t, r, "initech", "US")
	grant(t, r, "acme", "gated", "C-1", clk.Now().Add(time.Hour))
	grant(t, r, "globex", "gated", "C-2", time.Time{})
	object(t, r, "globex", "svc", "O-1")
	object(t, r, "globex", "later", "O-2")
	if err := r.WithdrawObjection(ctx, "globex", "O-2"); err != nil {
		t.Fatal(err)
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "initech", To: region.EU, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "initech", "customer left"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, r)
	deleted := trailOf(t, r, "initech")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r, err = residency.Open(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if diff := cmp.Diff(before, snapshot(t, r)); diff != "" {
		t.Errorf("state after reopening mismatch (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(deleted, trailOf(t, r, "initech")); diff != "" {
		t.Errorf("the deleted account's records after reopening mismatch (-before +after):\n%s", diff)
	}
	if _, err := r.Lookup("initech"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("Lookup of the deleted account after reopening = %v, want ErrNotFound", err)
	}
	for sp, want := range map[string]error{"gated": nil, "svc": residency.ErrObjected, "later": residency.ErrNotEffective} {
		if err := r.MayAccess("globex", sp); !errors.Is(err, want) {
			t.Errorf("MayAccess(globex, %s) after reopening = %v, want %v", sp, err, want)
		}
	}
	if err := r.MayAccess("acme", "gated"); err != nil {
		t.Errorf("MayAccess(acme, gated) after reopening = %v, want nil", err)
	}
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "initech", Country: "US"})
	if err != nil {
		t.Fatal(err)
	}
	if want := deleted.History[len(deleted.History)-1].Version + 1; p.Version != want {
		t.Errorf("placing the deleted ID afresh after reopening: version %d, want %d", p.Version, want)
	}
	rep, err := r.Verify(ctx)
	if err != nil || !rep.OK() || rep.Accounts != 3 {
		t.Errorf("Verify = %d accounts, %v, %v; want 3 and no violation", rep.Accounts, rep.Violations, err)
	}
}

// records are what a Router keeps of one account, deleted or not.
type records struct {
	History    []residency.Event
	Agreements []residency.Agreement
	Consents   []residency.ConsentRecord
	Objections []residency.ObjectionRecord
}

func trailOf(t testing.TB, r *residency.Router, id string) records {
	t.Helper()
	var out records
	var err error
	if out.History, err = r.History(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if out.Agreements, err = r.Agreements(id); err != nil {
		t.Fatal(err)
	}
	if out.Consents, err = r.Consents(id); err != nil {
		t.Fatal(err)
	}
	if out.Objections, err = r.Objections(id); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(out.History, func(e residency.Event) bool { return e.Kind == residency.Deleted }) {
		t.Fatalf("%s's trail has no deletion: %v", id, out.History)
	}
	return out
}

// TestReplacedAccountHasNoConsentAfterClockStepsBack checks, on one
// Router over the embedded file store, the promise of Router.Delete: "The
// ID may later be placed afresh: the new account starts with no
// consents, agreements or objections in force."
//
// Before, Delete revoked only the consents live by the clock at the
// deletion; one expired by then stayed unrevoked and the account placed
// afresh inherited it. When the clock later read an earlier time (an NTP
// step back; across instances, any skew), the old consent was live again
// and MayAccess let support-247 into the new account's data.
func TestReplacedAccountHasNoConsentAfterClockStepsBack(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	start := clk.Now()
	r := open(t, residency.WithPath(filepath.Join(t.TempDir(), "domicile.db")), residency.WithClock(clk.Now))
	place(t, r, "acme", "DE")
	if err := r.GrantAccess(ctx, residency.Consent{AccountID: "acme", SubProcessor: "support-247", Reference: "TICKET-1", ExpiresAt: start.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour) // the consent has expired
	if err := r.Delete(ctx, "acme", "customer left"); err != nil {
		t.Fatal(err)
	}
	place(t, r, "acme", "DE")
	clk.Add(-90 * time.Minute) // the clock steps back, half an hour past the grant

	if err := r.MayAccess("acme", "support-247"); !errors.Is(err, residency.ErrNoConsent) {
		t.Errorf("MayAccess(acme, support-247) on the account placed afresh = %v, want ErrNoConsent (TICKET-1 was the deleted account's)", err)
	}
}

// TestOlderDeletionLeavesNoConsentToRevive checks Router.Delete's promise
// ("The ID may later be placed afresh: the new account starts with no
// consents, agreements or objections in force") on a store file written
// before commit 6603193, whose Delete revoked only the consents and
// transfer agreements live by its clock (testdata/deleted-expired.db.gz,
// written by testdata/mkdeleted at 6f2a2ed: "acme" placed at 09:00 with
// the consent TICKET-1 and the agreement DPA-1 to the US, both expiring
// at 10:00, and deleted at 11:00, leaving both unrevoked).
//
// Now, Delete revokes expired records too, but what older deletions left
// stays: the account placed afresh inherits the unrevoked TICKET-1 and
// DPA-1, and once the clock reads before 10:00 (a step back, or on a
// shared store another instance's clock that is behind, as
// TestReplacedAccountHasNoConsentOfBeforeDeletionOnSkewedRouter sets up)
// MayAccess lets support-247 into the new account's data and BeginMove
// takes it to the US, both on the deleted account's records. Nothing
// (Open, Place afresh, MayAccess's liveness) ends them.
func TestOlderDeletionLeavesNoConsentToRevive(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "domicile.db")
	gunzipFixture(t, "deleted-expired.db.gz", path)
	clk := newClock() // 09:00, the fixture's start
	clk.Add(3 * time.Hour)
	r := open(t, residency.WithPath(path), residency.WithClock(clk.Now))
	if _, err := r.Lookup("acme"); !errors.Is(err, residency.ErrNotFound) {
		t.Fatalf("Lookup(acme) in the fixture = %v, want ErrNotFound (deleted)", err)
	}
	place(t, r, "acme", "DE")
	clk.Add(-150 * time.Minute) // 09:30: the clock steps back

	if err := r.MayAccess("acme", "support-247"); !errors.Is(err, residency.ErrNoConsent) {
		t.Errorf("MayAccess(acme, support-247) on the account placed afresh = %v, want ErrNoConsent (TICKET-1 was the deleted account's)", err)
	}
	if m, err := r.BeginMove(ctx, "acme", "aws-us-west-1"); !errors.Is(err, residency.ErrCrossRegion) {
		t.Errorf("BeginMove(acme, aws-us-west-1) on the account placed afresh = %+v, %v; want ErrCrossRegion (DPA-1 was the deleted account's)", m, err)
	}
}
