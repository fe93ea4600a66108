package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

// The records of consents, objections and deletions (residency/consent.go,
// residency/delete.go), as the Router gives them to a store.

// consented is the change after c that records a consent: granted at t,
// and ended at revoked unless that is zero.
func consented(c residency.Change, ref, subProcessor string, t, expires, revoked time.Time) residency.Change {
	kind, when := residency.AccessGranted, t
	if !revoked.IsZero() {
		kind, when = residency.AccessRevoked, revoked
	}
	n := next(c, kind, when, func(p *residency.Placement, e *residency.Event) { e.To, e.Reference = subProcessor, ref })
	n.Consent = &residency.ConsentRecord{
		Consent: residency.Consent{AccountID: c.Placement.AccountID, SubProcessor: subProcessor, Reference: ref, ExpiresAt: expires},
		Granted: t, Revoked: revoked,
	}
	return n
}

// objected is the change after c that records an objection: raised at t,
// and withdrawn at withdrawn unless that is zero.
func objected(c residency.Change, ref, subProcessor string, t, withdrawn time.Time) residency.Change {
	kind, when := residency.Objected, t
	if !withdrawn.IsZero() {
		kind, when = residency.ObjectionWithdrawn, withdrawn
	}
	n := next(c, kind, when, func(p *residency.Placement, e *residency.Event) { e.To, e.Reference = subProcessor, ref })
	n.Objection = &residency.ObjectionRecord{
		Objection: residency.Objection{AccountID: c.Placement.AccountID, SubProcessor: subProcessor, Reference: ref},
		Raised:    t, Withdrawn: withdrawn,
	}
	return n
}

// deleted is the change after c that deletes the account, as Router.Delete
// makes it: the placement keeps its region, country, rule and creation,
// and lives nowhere.
func deleted(c residency.Change, t time.Time, reason string) residency.Change {
	return next(c, residency.Deleted, t, func(p *residency.Placement, e *residency.Event) {
		e.From, e.Rule = p.DataCenter, reason
		p.DataCenter, p.Provider, p.Backup, p.Transfer = "", "", "", ""
	})
}

func testConsents(t *testing.T, open Opener) {
	f := newFixture(t, open)
	// Accounts whose IDs are prefixes of one another, so that a store that
	// keys consents by account ID and reference must keep them apart.
	for _, id := range []string{"a", "a b", "ab"} {
		c := placed(id, at)
		unit := []residency.Change{c}
		for i, ref := range []string{"C-2", "C-10", "C-1", "c-1", longText("C-")} {
			expires := []time.Time{{}, at.AddDate(1, 0, 0), extremeTimes[len(extremeTimes)-1].t, at, extremeTimes[0].t}[i]
			c = consented(c, ref, "support-247", at, expires, time.Time{})
			unit = append(unit, c)
		}
		f.apply(fmt.Sprintf("account %q with five consents", id), unit...)
		c = consented(c, "C-10", "support-247", at, at.AddDate(1, 0, 0), at.Add(time.Hour))
		f.apply(fmt.Sprintf("account %q: consent %q revoked", id, "C-10"), c)
	}
	f.check("consents granted and revoked, one per reference, in reference order")
}

func testObjections(t *testing.T, open Opener) {
	f := newFixture(t, open)
	for _, id := range []string{"a", "a b", "ab"} {
		c := placed(id, at)
		unit := []residency.Change{c}
		for _, ref := range []string{"O-2", "O-10", "O-1", "o-1", longText("O-")} {
			c = objected(c, ref, "twilio "+ref, at, time.Time{})
			unit = append(unit, c)
		}
		f.apply(fmt.Sprintf("account %q with five objections", id), unit...)
		c = objected(c, "O-10", "twilio O-10", at, at.Add(time.Hour))
		f.apply(fmt.Sprintf("account %q: objection %q withdrawn", id, "O-10"), c)
	}
	f.check("objections raised and withdrawn, one per reference, in reference order")
}

// testDeleted checks that a store keeps a deleted account, its trail and
// its ended records, and its version: the ID placed afresh goes on from it.
func testDeleted(t *testing.T, open Opener) {
	f := newFixture(t, open)
	c := placed("gone", at)
	f.apply(`account "gone" placed`, c)
	c = next(c, residency.TransferGranted, at, func(p *residency.Placement, e *residency.Event) {
		e.From, e.To, e.Reference = "EU", "US", "T-1"
	})
	c.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: "gone", To: region.US, Reference: "T-1"}, Granted: at}
	f.apply(`account "gone": agreement`, c)
	c = consented(c, "C-1", "support-247", at, time.Time{}, time.Time{})
	f.apply(`account "gone": consent`, c)
	c = objected(c, "O-1", "twilio", at, time.Time{})
	f.apply(`account "gone": objection`, c)

	// The deletion: what it ends, then the deletion, in one unit.
	end := at.Add(time.Hour)
	revoke := next(c, residency.TransferRevoked, end, func(p *residency.Placement, e *residency.Event) {
		e.From, e.To, e.Reference, e.Rule = "EU", "US", "T-1", "account deleted"
	})
	revoke.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: "gone", To: region.US, Reference: "T-1"}, Granted: at, Revoked: end}
	unit := []residency.Change{revoke, consented(revoke, "C-1", "support-247", at, time.Time{}, end)}
	unit[1].Event.Rule = "account deleted"
	unit = append(unit, objected(unit[1], "O-1", "twilio", at, end))
	unit[2].Event.Rule = "account deleted"
	gone := deleted(unit[2], end, "trial expired")
	unit = append(unit, gone)
	f.apply(`account "gone" deleted`, unit...)
	f.apply(`account "kept" placed`, placed("kept", at))
	f.check(`a deleted account, kept with its trail, agreements, consents and objections`)

	// A store must not drop the deleted account: placing the ID afresh
	// as a new account (version 1) is a stale write.
	f.refuse(`account "gone" placed afresh at version 1`, conflict{account: "gone", stored: gone.Placement.Version, expected: 0}, placed("gone", end))
	again := placed("gone", end.Add(time.Hour))
	again.Placement.Version = gone.Placement.Version + 1
	again.Event.Version = again.Placement.Version
	f.apply(`account "gone" placed afresh, one version after its deletion`, again)
	f.check(`a deleted account placed afresh, its trail going on`)

	kinds := map[residency.EventKind]bool{}
	for _, a := range f.want.accounts() {
		for _, e := range a.History {
			kinds[e.Kind] = true
		}
	}
	for _, k := range []residency.EventKind{residency.AccessGranted, residency.AccessRevoked, residency.Objected, residency.ObjectionWithdrawn, residency.Deleted} {
		if !kinds[k] {
			t.Fatalf("storetest: the fixture lacks an event of kind %s", k)
		}
	}
}
