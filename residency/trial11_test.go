package residency_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

// TestReplacedAccountHasNoConsentAfterClockStepsBack checks, on one
// Router over the embedded file store, the promise of Router.Delete: "The
// ID may later be placed afresh: the new account starts with no
// consents, agreements or objections in force."
//
// Wrong now: Delete revokes only the consents live by the clock at the
// deletion; one that has expired by then stays unrevoked and the account
// placed afresh inherits it. When the clock later reads an earlier time
// (an NTP step back, or WithClock moved back as the doc says tests do;
// across instances, any skew), the old consent is live again and
// MayAccess lets support-247 into the new account's data.
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

// TestGrantTransferExpiredRetry: granting again, under the same reference
// and with the same content, a transfer agreement whose expiry has passed
// must not report success. GrantTransfer's doc: "the expiry, if set, in
// the future (ErrInvalidTransfer). Granting the same agreement again
// changes nothing" — the latter only while it stands, as GrantAccess
// already does for consents (TestGrantAccessExpiredRetry).
//
// Wrong now: GrantTransfer compares with the stored agreement before it
// checks the expiry, so it returns nil for the expired one: the caller
// (a migration script re-running its grant step) believes the customer's
// agreement is in force, and the BeginMove that follows is refused with
// ErrCrossRegion.
func TestGrantTransferExpiredRetry(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	r := open(t, residency.WithClock(clk.Now))
	place(t, r, "acme", "DE")
	tr := residency.Transfer{AccountID: "acme", To: region.US, Reference: "DPA-1", ExpiresAt: clk.Now().Add(time.Hour)}
	if err := r.GrantTransfer(ctx, tr); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour)
	before := snapshot(t, r)
	err := r.GrantTransfer(ctx, tr)
	if !errors.Is(err, residency.ErrInvalidTransfer) {
		_, moveErr := r.BeginMove(ctx, "acme", "aws-us-west-1")
		t.Errorf("GrantTransfer(the same agreement, expired an hour ago) = %v, want ErrInvalidTransfer (BeginMove to the US now says %v)", err, moveErr)
	}
	unchanged(t, r, before, "GrantTransfer of an expired agreement")
}

// TestGrantAccessAgainAfterMoveOutOfItsRegions: GrantAccess's doc says
// the sub-processor "must ... serve the account's home region ...
// otherwise ErrInvalidConsent", and "Granting the same consent again,
// while it stands, changes nothing". Once a move under a transfer
// agreement has taken the account to a region the sub-processor does not
// serve, the consent no longer lets it in (MayAccess: ErrNoAccess), so
// granting it again must be refused as a new one would be, not answered
// nil.
//
// Wrong now: GrantAccess compares with the stored consent before it
// checks the region, and returns nil: the support tool is told the grant
// holds while MayAccess refuses (the same fault TestGrantAccessExpiredRetry
// fixed for expiry: "nil would tell the caller it does").
func TestGrantAccessAgainAfterMoveOutOfItsRegions(t *testing.T) {
	ctx := context.Background()
	cat, err := provider.NewCatalogFrom(provider.Contents{
		DataCenters: []provider.DataCenter{
			{ID: "eu-a", Provider: provider.Linode, Region: region.EU},
			{ID: "us-a", Provider: provider.AWS, Region: region.US},
		},
		SubProcessors: []provider.SubProcessor{
			{ID: "support-eu", Name: "EU Support", Kind: provider.Subcontractor, RequiresConsent: true, Regions: region.SetOf(region.EU)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, residency.WithCatalog(cat))
	place(t, r, "acme", "DE")
	c := residency.Consent{AccountID: "acme", SubProcessor: "support-eu", Reference: "TICKET-1"}
	if err := r.GrantAccess(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "DPA-1"}); err != nil {
		t.Fatal(err)
	}
	m, err := r.BeginMove(ctx, "acme", "us-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.MayAccess("acme", "support-eu"); !errors.Is(err, residency.ErrNoAccess) {
		t.Fatalf("MayAccess(acme, support-eu) in the US = %v, want ErrNoAccess", err)
	}
	err = r.GrantAccess(ctx, c)
	if !errors.Is(err, residency.ErrInvalidConsent) {
		t.Errorf("GrantAccess(the same consent) after the account moved to the US, which support-eu does not serve = %v, want ErrInvalidConsent (MayAccess says %v)", err, r.MayAccess("acme", "support-eu"))
	}
}
