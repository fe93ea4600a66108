package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// replacedOnSkewedRouters opens two Routers on one database whose clocks
// are two hours apart: B's reads base, A's base+2h. Through B (the clock
// behind) the customer "acme" gives a consent to support-247 and a
// transfer agreement to the US, both to expire at base+1h: by B's clock
// live, by A's clock over. Then A deletes the account and places it afresh
// in the EU, and B catches up (Sync).
func replacedOnSkewedRouters(t *testing.T) (a, b *residency.Router, base time.Time) {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.Database(t)
	base = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	ahead := func() time.Time { return base.Add(2 * time.Hour) }
	behind := func() time.Time { return base }
	a = routertest.OnPostgres(t, dsn, []residency.Option{residency.WithClock(ahead)})
	b = routertest.OnPostgres(t, dsn, []residency.Option{residency.WithClock(behind)})
	if _, err := b.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := b.GrantAccess(ctx, residency.Consent{AccountID: "acme", SubProcessor: "support-247", Reference: "TICKET-1", ExpiresAt: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := b.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "DPA-1", ExpiresAt: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "acme", "customer left"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return a, b, base
}

// TestReplacedAccountHasNoConsentOfBeforeDeletionOnSkewedRouter checks
// the promise of Router.Delete: "The ID may later be placed afresh: the
// new account starts with no consents, agreements or objections in
// force."
//
// Before, Delete revoked only the consents live by the clock of the
// Router that deleted; one expired by that clock stayed unrevoked, and the
// account placed afresh inherited it. A Router whose clock is behind
// (WithClock skew, an NTP step back) found it live, and MayAccess let
// support-247 into the new account's data on a consent the customer gave
// before closing the old one. Delete now revokes expired ones too.
func TestReplacedAccountHasNoConsentOfBeforeDeletionOnSkewedRouter(t *testing.T) {
	_, b, _ := replacedOnSkewedRouters(t)
	if err := b.MayAccess("acme", "support-247"); !errors.Is(err, residency.ErrNoConsent) {
		t.Errorf("MayAccess(acme, support-247) on B after the account was deleted and placed afresh = %v, want ErrNoConsent (the consent TICKET-1 belongs to the deleted account)", err)
	}
	sps, err := b.SubProcessors("acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range sps {
		if sp.ID == "support-247" {
			t.Errorf("SubProcessors(acme) on B lists support-247 for the account placed afresh, on a consent of the deleted account")
		}
	}
}

// TestReplacedAccountHasNoAgreementOfBeforeDeletionOnSkewedRouter checks
// the same promise for transfer agreements, which guard the residency
// promise itself: an account placed afresh in the EU must not leave the
// EU on an agreement the customer gave for the deleted account.
//
// Before, as for consents, Delete revoked only agreements live by the
// deleting Router's clock; on B, whose clock is behind, BeginMove to
// aws-us-west-1 succeeded under the deleted account's DPA-1 (and Verify
// reported nothing, since it too found DPA-1 live).
func TestReplacedAccountHasNoAgreementOfBeforeDeletionOnSkewedRouter(t *testing.T) {
	ctx := context.Background()
	_, b, _ := replacedOnSkewedRouters(t)
	m, err := b.BeginMove(ctx, "acme", "aws-us-west-1")
	if !errors.Is(err, residency.ErrCrossRegion) {
		t.Errorf("BeginMove(acme, aws-us-west-1) on B after the account was deleted and placed afresh = %+v, %v; want ErrCrossRegion (DPA-1 belongs to the deleted account)", m, err)
	}
}

// TestAccessEndsOnEveryRouterOnceTheCallReturns checks what the docs of
// the calls that end access say on a shared store:
//   - RevokeAccess: "from then on it allows no access";
//   - Object: "while it stands, Router.MayAccess refuses that
//     sub-processor (ErrObjected)";
//   - Delete: "from then on Router.Lookup, Router.MayAccess and every
//     write say ErrNotFound".
//
// A support tool behind a load balancer asks MayAccess on whichever
// instance it reaches, right after the customer's revocation was recorded
// through another one.
//
// Before, none of these was fenced (only CompleteMove and Drain were), so
// another live Router went on answering nil for a moment after the call
// returned (in a trial, 48 times out of 50 right after RevokeAccess).
// They are fenced now, as CompleteMove is.
func TestAccessEndsOnEveryRouterOnceTheCallReturns(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a := routertest.OnPostgres(t, dsn, nil)
	b := routertest.OnPostgres(t, dsn, nil)
	const rounds = 20
	ends := []struct {
		name string
		sp   string
		end  func(id string, i int) error
	}{
		{"RevokeAccess", "support-247", func(id string, i int) error {
			return a.RevokeAccess(ctx, id, fmt.Sprint("TICKET-", i))
		}},
		{"Object", "twilio", func(id string, i int) error {
			return a.Object(ctx, residency.Objection{AccountID: id, SubProcessor: "twilio", Reference: fmt.Sprint("LETTER-", i)})
		}},
		{"Delete", "twilio", func(id string, i int) error {
			return a.Delete(ctx, id, "customer left")
		}},
	}
	for _, e := range ends {
		allowed := 0
		for i := range rounds {
			id := fmt.Sprint(e.name, "-", i)
			if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
				t.Fatal(err)
			}
			if err := a.GrantAccess(ctx, residency.Consent{AccountID: id, SubProcessor: "support-247", Reference: fmt.Sprint("TICKET-", i)}); err != nil {
				t.Fatal(err)
			}
			if err := a.Fence(ctx); err != nil { // B has applied the account and the consent
				t.Fatal(err)
			}
			if err := b.MayAccess(id, e.sp); err != nil {
				t.Fatalf("MayAccess(%s, %s) on B before %s = %v, want nil", id, e.sp, e.name, err)
			}
			if err := e.end(id, i); err != nil {
				t.Fatal(err)
			}
			if b.MayAccess(id, e.sp) == nil {
				allowed++
			}
		}
		if allowed > 0 {
			t.Errorf("MayAccess on another Router right after %s returned let %s in %d times out of %d, want 0", e.name, e.sp, allowed, rounds)
		}
	}
}

// TestAbortMoveEndsTargetHostAccessOnEveryRouter checks MayAccess's doc
// on a shared store once AbortMove returns: MayAccess allows "the hosts
// ... of the account's data center, its backup data center and the
// target of its open move", and after AbortMove the account has no open
// move, so the target's host, which runs neither of the account's data
// centers, is refused (ErrNoAccess), as on the Router that aborted.
//
// AbortMove narrows what the account allows, as CompleteMove does for the
// source's host and RevokeAccess for a consent, but it is the one such
// write left unfenced (its doc: "until other Routers apply it they answer
// the source, as they did during the move", true of Lookup, not of
// MayAccess): another live Router goes on letting the target's host in
// right after AbortMove returned, while the operator, told the copy "is
// no longer in use", deletes it or hands the data center back.
func TestAbortMoveEndsTargetHostAccessOnEveryRouter(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a := routertest.OnPostgres(t, dsn, nil)
	b := routertest.OnPostgres(t, dsn, nil)
	const rounds = 20
	allowed := 0
	for i := range rounds {
		id := fmt.Sprint("acct-", i)
		p, err := a.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
		if err != nil {
			t.Fatal(err)
		}
		// A data center of the region whose host runs neither the
		// account's data center nor its backup.
		hosts := map[string]bool{}
		for _, dc := range []string{p.DataCenter, p.Backup} {
			if d, ok := a.Catalog().DataCenter(dc); ok {
				hosts[string(d.Provider)] = true
			}
		}
		var target provider.DataCenter
		for _, d := range a.Catalog().All() {
			if d.Region == region.EU && !hosts[string(d.Provider)] {
				target = d
				break
			}
		}
		if target.ID == "" {
			t.Fatalf("no EU data center of another host than those of %+v", p)
		}
		host := string(target.Provider)
		m, err := a.BeginMove(ctx, id, target.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Fence(ctx); err != nil { // B has applied the move
			t.Fatal(err)
		}
		if err := b.MayAccess(id, host); err != nil {
			t.Fatalf("MayAccess(%s, %s) on B during the move to %s = %v, want nil", id, host, target.ID, err)
		}
		if _, err := a.AbortMove(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if err := a.MayAccess(id, host); !errors.Is(err, residency.ErrNoAccess) {
			t.Fatalf("MayAccess(%s, %s) on A after AbortMove = %v, want ErrNoAccess", id, host, err)
		}
		if b.MayAccess(id, host) == nil {
			allowed++
		}
	}
	if allowed > 0 {
		t.Errorf("MayAccess on another Router right after AbortMove returned let the aborted move's target host in %d times out of %d, want 0", allowed, rounds)
	}
}
