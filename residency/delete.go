package residency

import (
	"context"
	"errors"
	"fmt"
)

// ErrInvalidReason: a deletion without a reason, or with one that is not 1
// to 255 bytes of valid UTF-8 without control characters.
var ErrInvalidReason = errors.New("residency: invalid reason")

// Delete closes the account, for a trial that expired or a customer who
// left: from then on [Router.Lookup], [Router.MayAccess] and every write
// say [ErrNotFound], and the account leaves the iterators, the metrics and
// [Router.Verify]. Its transfer agreements and consents not revoked yet
// are revoked, expired ones too (a clock that reads earlier, another
// instance's or this one's after a step back, must not find them live
// again), and its standing objections withdrawn, each on the audit trail
// with the rule "account deleted", and the trail ends with the deletion
// (event Deleted) and the reason given. All of it is durable before
// Delete returns, and on a shared store applied by every live Router, as
// for [Router.RevokeAccess] ([ErrNotFenced] when that wait gives up; the
// account is deleted all the same, and a second Delete is [ErrNotFound]:
// [Router.Fence] waits again).
//
// The audit trail stays: [Router.History], [Router.Agreements],
// [Router.Consents] and [Router.Objections] keep answering for the account,
// as an auditor needs. The ID may later be placed afresh: the new account
// starts with no consents, agreements or objections in force, and its trail
// and versions continue the old ones.
//
// An account with a move in progress is refused ([ErrMoveInProgress]):
// complete or abort the move first. An unknown or already deleted account
// is [ErrNotFound], a reason that is empty or not like an account ID
// [ErrInvalidReason]; neither changes anything.
func (r *Router) Delete(ctx context.Context, accountID, reason string) error {
	if r.isClosed() {
		return ErrClosed
	}
	if err := ValidAccountID(accountID); err != nil {
		return r.refuse(err)
	}
	if err := validText(reason, ErrInvalidReason, "reason"); err != nil {
		return r.refuse(fmt.Errorf("residency: deleting account %q: %w", accountID, err))
	}
	return r.writeFenced(ctx, subject{"account", accountID}, func(w *writer) error {
		a := w.live(accountID)
		if a == nil {
			return fmt.Errorf("%w: account %q", ErrNotFound, accountID)
		}
		if a.Moving() {
			return fmt.Errorf("%w: account %q is moving to %s (move %s): complete or abort it before deleting the account", ErrMoveInProgress, accountID, a.Move.To, a.Move.ID)
		}
		a = r.endAll(w, a)
		w.put(a.change(w.now, Event{Kind: Deleted, From: a.DataCenter, Rule: reason}, func(p *Placement) {
			p.DataCenter, p.Provider, p.Backup, p.Transfer = "", "", "", ""
		}), nil)
		w.onCommit(func() { r.metrics.deleted() })
		return nil
	})
}

// endAll ends every record of the account a that has not ended: it
// revokes its transfer agreements and consents, expired ones too (a clock
// that reads earlier, another instance's or this one's after a step back,
// would find them live again on the account placed afresh), and
// withdraws its objections, each with the rule "account deleted". It
// returns the account's new row.
func (r *Router) endAll(w *writer, a *account) *account {
	var agreements []Agreement
	for ag := range agreementsOf(w.tx(), a.AccountID) {
		if ag.Revoked.IsZero() {
			agreements = append(agreements, *ag)
		}
	}
	for _, ag := range agreements {
		a = w.revokeAgreement(a, ag, ruleDeleted)
		w.onCommit(func() { r.metrics.transfer("revoked") })
	}
	if x := a.access; x != nil {
		for _, c := range x.consents {
			if c.Revoked.IsZero() {
				a = w.revokeConsent(a, c, ruleDeleted)
				w.onCommit(func() { r.metrics.consent("revoked") })
			}
		}
		for _, o := range x.objections {
			if o.Live() {
				a = w.withdrawObjection(a, o, ruleDeleted)
				w.onCommit(func() { r.metrics.objection("withdrawn") })
			}
		}
	}
	return a
}

// deleted reports whether the row is that of a deleted account: it lives
// nowhere. Stores keep deleted accounts, with an empty DataCenter (see
// [Change]).
func (a *account) deleted() bool { return a.DataCenter == "" }
