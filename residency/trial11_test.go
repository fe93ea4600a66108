package residency_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

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
