package residency_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

func TestGrantTransfer(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	r := open(t, residency.WithClock(clk.Now))
	place(t, r, "acme", "DE")
	tr := residency.Transfer{AccountID: "acme", To: region.US, Reference: "DPA-2026-17", ExpiresAt: clk.Now().Add(48 * time.Hour)}
	if err := r.GrantTransfer(ctx, tr); err != nil {
		t.Fatal(err)
	}
	// Granting the same agreement again is a no-op.
	if err := r.GrantTransfer(ctx, tr); err != nil {
		t.Fatalf("second GrantTransfer: %v", err)
	}
	got, err := r.Agreements("acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []residency.Agreement{{Transfer: tr, Granted: clk.Now()}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Agreements mismatch (-want +got):\n%s", diff)
	}
	if !got[0].Live(clk.Now()) || got[0].Live(tr.ExpiresAt) {
		t.Errorf("Live: before expiry %v, at expiry %v", got[0].Live(clk.Now()), got[0].Live(tr.ExpiresAt))
	}

	clk.Add(time.Hour)
	if err := r.RevokeTransfer(ctx, "acme", "DPA-2026-17"); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeTransfer(ctx, "acme", "DPA-2026-17"); err != nil {
		t.Errorf("second RevokeTransfer: %v", err)
	}
	got, _ = r.Agreements("acme")
	if len(got) != 1 || !got[0].Revoked.Equal(clk.Now()) || got[0].Live(clk.Now()) {
		t.Errorf("after revoke: %+v", got)
	}
	// A revoked reference cannot be granted again.
	if err := r.GrantTransfer(ctx, tr); !errors.Is(err, residency.ErrConflict) {
		t.Errorf("GrantTransfer of a revoked reference: %v; want ErrConflict", err)
	}
	h, _ := r.History(ctx, "acme")
	var trail []string
	for _, e := range h {
		trail = append(trail, strings.Join([]string{string(e.Kind), e.From, e.To, e.Reference}, " "))
	}
	wantTrail := []string{"placed  " + h[0].To + " ", "transfer-granted EU US DPA-2026-17", "transfer-revoked EU US DPA-2026-17"}
	if diff := cmp.Diff(wantTrail, trail); diff != "" {
		t.Errorf("audit trail mismatch (-want +got):\n%s", diff)
	}
}

func TestGrantTransferRefuses(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	r := open(t, residency.WithClock(clk.Now))
	place(t, r, "acme", "DE")
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "used"}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, r)
	tests := []struct {
		name string
		tr   residency.Transfer
		want error
	}{
		{"unknown account", residency.Transfer{AccountID: "nobody", To: region.US, Reference: "x"}, residency.ErrNotFound},
		{"invalid account", residency.Transfer{AccountID: "a\x00", To: region.US, Reference: "x"}, residency.ErrInvalidAccount},
		{"no region", residency.Transfer{AccountID: "acme", Reference: "x"}, residency.ErrInvalidTransfer},
		{"invalid region", residency.Transfer{AccountID: "acme", To: 42, Reference: "x"}, residency.ErrInvalidTransfer},
		{"own region", residency.Transfer{AccountID: "acme", To: region.EU, Reference: "x"}, residency.ErrInvalidTransfer},
		{"empty reference", residency.Transfer{AccountID: "acme", To: region.US}, residency.ErrInvalidTransfer},
		{"reference with a newline", residency.Transfer{AccountID: "acme", To: region.US, Reference: "a\nb"}, residency.ErrInvalidTransfer},
		{"oversized reference", residency.Transfer{AccountID: "acme", To: region.US, Reference: strings.Repeat("r", 256)}, residency.ErrInvalidTransfer},
		{"already expired", residency.Transfer{AccountID: "acme", To: region.US, Reference: "x", ExpiresAt: clk.Now()}, residency.ErrInvalidTransfer},
		{"reference used for another agreement", residency.Transfer{AccountID: "acme", To: region.UK, Reference: "used"}, residency.ErrConflict},
	}
	for _, tt := range tests {
		if err := r.GrantTransfer(ctx, tt.tr); !errors.Is(err, tt.want) {
			t.Errorf("%s: GrantTransfer error = %v; want %v", tt.name, err, tt.want)
		}
	}
	if err := r.RevokeTransfer(ctx, "acme", "unknown"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("RevokeTransfer(unknown) error = %v; want ErrNotFound", err)
	}
	if err := r.RevokeTransfer(ctx, "", "used"); !errors.Is(err, residency.ErrInvalidAccount) {
		t.Errorf("RevokeTransfer(empty account) error = %v; want ErrInvalidAccount", err)
	}
	unchanged(t, r, before, "refused agreement calls")
	if _, err := r.Agreements("nobody"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("Agreements(nobody) error = %v", err)
	}
	if _, err := r.History(ctx, "nobody"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("History(nobody) error = %v", err)
	}
}

// TestGrantTransferExpiredRetry: granting again, under the same reference
// and with the same content, a transfer agreement whose expiry has passed
// must not report success. GrantTransfer's doc: "the expiry, if set, in
// the future (ErrInvalidTransfer). Granting the same agreement again
// changes nothing" — the latter only while it stands, as GrantAccess
// already does for consents (TestGrantAccessExpiredRetry).
//
// Before, GrantTransfer compared with the stored agreement before it
// checked the expiry, so it returned nil for the expired one: the caller
// (a migration script re-running its grant step) believed the customer's
// agreement in force, and the BeginMove that followed was refused with
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
