package residency

import (
	"context"
	"fmt"
	"time"

	"github.com/domicile-go/domicile/region"

	"github.com/hashicorp/go-memdb"
)

// GrantTransfer records a customer's agreement that the account's data may
// move to region t.To. It allows [Router.BeginMove] to that region while it
// is live: until t.ExpiresAt (if set) and until revoked. The account must
// exist; t.To must be a valid region other than the account's own; the
// reference must be like an account ID and the expiry, if set, in the
// future ([ErrInvalidTransfer]). Granting the same agreement again, while
// it stands (unexpired and unrevoked), changes nothing, also once the
// account has moved to t.To; another agreement under a used reference is
// [ErrConflict].
func (r *Router) GrantTransfer(ctx context.Context, t Transfer) error {
	if r.isClosed() {
		return ErrClosed
	}
	if err := ValidAccountID(t.AccountID); err != nil {
		return r.refuse(err)
	}
	if err := validText(t.Reference, ErrInvalidTransfer, "reference"); err != nil {
		return r.refuse(fmt.Errorf("residency: account %q: %w", t.AccountID, err))
	}
	if !t.To.IsValid() {
		return r.refuse(fmt.Errorf("%w: account %q: region %d is not valid", ErrInvalidTransfer, t.AccountID, uint8(t.To)))
	}
	t.ExpiresAt = t.ExpiresAt.UTC()
	if err := validTime(t.ExpiresAt); err != nil {
		return r.refuse(fmt.Errorf("%w: account %q: expiry: %w", ErrInvalidTransfer, t.AccountID, err))
	}
	return r.write(ctx, subject{"account", t.AccountID}, func(w *writer) error {
		a := w.live(t.AccountID)
		if a == nil {
			return fmt.Errorf("%w: account %q", ErrNotFound, t.AccountID)
		}
		// Expired is expired, also for the same agreement again: it no
		// longer stands, and nil would tell the caller it does.
		if !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(w.now) {
			return fmt.Errorf("%w: account %q: agreement %q expired at %s", ErrInvalidTransfer, t.AccountID, t.Reference, t.ExpiresAt.Format(time.RFC3339))
		}
		if old := getAgreement(w.tx(), t.AccountID, t.Reference); old != nil {
			if old.Transfer == t && old.Revoked.IsZero() {
				return nil
			}
			return conflictWith(a, fmt.Sprintf("already has agreement %q (to %s, revoked %v)", t.Reference, old.To, !old.Revoked.IsZero()))
		}
		if t.To == a.Region {
			return fmt.Errorf("%w: account %q already lives in %s", ErrInvalidTransfer, t.AccountID, t.To)
		}
		w.put(a.change(w.now, Event{Kind: TransferGranted, From: a.Region.String(), To: t.To.String(), Reference: t.Reference},
			func(*Placement) {}), &Agreement{Transfer: t, Granted: w.now})
		w.onCommit(func() { r.metrics.transfer("granted") })
		return nil
	})
}

// RevokeTransfer ends a transfer agreement. Moves it allowed that are still
// open can no longer complete and must be aborted. It is not fenced: no
// answer from memory depends on an agreement, and a move that another
// Router, yet to apply the revocation, decides under it is refused by the
// store (the account's version moved on) and decided again. Revoking an
// agreement twice changes nothing.
func (r *Router) RevokeTransfer(ctx context.Context, accountID, reference string) error {
	return r.endRecord(ctx, accountID, reference, "agreement", false, func(w *writer, a *account) bool {
		ag := getAgreement(w.tx(), accountID, reference)
		if ag != nil && ag.Revoked.IsZero() {
			w.revokeAgreement(a, *ag, "")
			w.onCommit(func() { r.metrics.transfer("revoked") })
		}
		return ag != nil
	})
}

// revokeAgreement records the end of a transfer agreement, and returns the
// new row.
func (w *writer) revokeAgreement(a *account, ag Agreement, rule string) *account {
	ag.Revoked = w.now
	next := a.change(w.now, Event{Kind: TransferRevoked, From: a.Region.String(), To: ag.To.String(), Reference: ag.Reference, Rule: rule},
		func(*Placement) {})
	w.put(next, &ag)
	return next
}

// liveAgreement returns the account's live agreement that allows moves
// to region to and lasts longest (one without an end first, the first by
// reference among equals), so that a move begun under it stays covered as
// long as any agreement covers it; nil if there is none.
func liveAgreement(txn *memdb.Txn, accountID string, to region.Region, now time.Time) *Agreement {
	var best *Agreement
	for ag := range agreementsOf(txn, accountID) {
		if ag.To != to || !ag.Live(now) {
			continue
		}
		if best == nil || outlasts(ag, best) {
			best = ag
		}
	}
	return best
}

// outlasts reports whether agreement a ends after b (one without an end
// outlasts every other).
func outlasts(a, b *Agreement) bool {
	switch {
	case a.ExpiresAt.IsZero():
		return !b.ExpiresAt.IsZero()
	case b.ExpiresAt.IsZero():
		return false
	}
	return a.ExpiresAt.After(b.ExpiresAt)
}
