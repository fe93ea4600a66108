package residency

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/domicile-go/domicile/region"
)

// BeginMove starts moving an account to data center to and marks it moving.
// The caller then copies the data and calls [Router.CompleteMove], or
// [Router.AbortMove] to give up. Until then [Router.Lookup] still answers
// the source.
//
// The target must be an active data center of the catalog other than the
// account's own, in the account's home region, or in a region a live
// transfer agreement of the account covers ([ErrCrossRegion] otherwise).
// An account moves once at a time ([ErrMoveInProgress]).
func (r *Router) BeginMove(ctx context.Context, accountID, to string) (Move, error) {
	if err := ValidAccountID(accountID); err != nil {
		return Move{}, r.refuse(err)
	}
	var out Move
	err := r.write(ctx, func(w *writer) error {
		a := w.account(accountID)
		if a == nil {
			return fmt.Errorf("%w: account %q", ErrNotFound, accountID)
		}
		if a.Moving() {
			return fmt.Errorf("%w: account %q is moving to %s (move %s)", ErrMoveInProgress, accountID, a.Move.To, a.Move.ID)
		}
		target, ok := r.dataCenters[to]
		switch {
		case !ok:
			return fmt.Errorf("%w %q: account %q", ErrUnknownDataCenter, to, accountID)
		case to == a.DataCenter:
			return fmt.Errorf("%w: account %q already lives in %s", ErrConflict, accountID, to)
		case !w.topo.isActive(to):
			return fmt.Errorf("%w: account %q: data center %s is %s and takes no accounts", ErrNoDataCenter, accountID, to, w.topo.status[to])
		}
		m := &Move{ID: "mv-" + rand.Text(), AccountID: accountID, From: a.DataCenter, To: to, ToRegion: target.Region, Began: w.now}
		if target.Region != a.Region {
			ag := liveAgreement(w.tx(), accountID, target.Region, w.now)
			if ag == nil {
				return crossRegion(a, to, target.Region)
			}
			m.Transfer = ag.Reference
		}
		w.put(a.change(w.now, Event{Kind: MoveBegun, From: m.From, To: m.To, Reference: m.Transfer, MoveID: m.ID},
			func(p *Placement) { p.Move = *m }), nil)
		w.onCommit(func() { r.metrics.moved("begun", m) })
		out = *m
		return nil
	})
	return out, err
}

func crossRegion(a *account, to string, toRegion region.Region) error {
	return fmt.Errorf("%w: account %q lives in %s, data center %s is in %s, and no live transfer agreement covers %s", ErrCrossRegion, a.AccountID, a.Region, to, toRegion, toRegion)
}

// CompleteMove switches the account to the move's target and ends the move.
// The target is checked again: if it left the catalog, or the transfer
// agreement that allowed a move to another region has since expired or been
// revoked, CompleteMove refuses ([ErrUnknownDataCenter], [ErrCrossRegion])
// and the move stays open to be aborted. A move to another region changes
// the account's home region and records the agreement's reference.
func (r *Router) CompleteMove(ctx context.Context, moveID string) (Placement, error) {
	var out Placement
	err := r.write(ctx, func(w *writer) error {
		m, a, err := w.openMove(moveID)
		if err != nil {
			return err
		}
		target, ok := r.dataCenters[m.To]
		if !ok {
			return fmt.Errorf("%w %q: move %s of account %q", ErrUnknownDataCenter, m.To, m.ID, a.AccountID)
		}
		e := Event{Kind: MoveCompleted, From: m.From, To: m.To, MoveID: m.ID}
		edit := func(p *Placement) {
			p.DataCenter, p.Provider, p.Backup, p.Move = target.ID, target.Provider, w.topo.backupFor(a.AccountID, target), Move{}
		}
		if target.Region != a.Region {
			ag := liveAgreement(w.tx(), a.AccountID, target.Region, w.now)
			if ag == nil || ag.Reference != m.Transfer {
				return fmt.Errorf("%w (agreement %q no longer live; abort move %s)", crossRegion(a, m.To, target.Region), m.Transfer, m.ID)
			}
			e.Rule, e.Reference = fmt.Sprintf("transfer agreement %q", ag.Reference), ag.Reference
			inRegion := edit
			edit = func(p *Placement) {
				inRegion(p)
				p.Region, p.Rule, p.Transfer = target.Region, e.Rule, ag.Reference
			}
		}
		next := a.change(w.now, e, edit)
		w.put(next, nil)
		w.onCommit(func() { r.metrics.moved("completed", m) })
		out = next.Placement
		return nil
	})
	return out, err
}

// AbortMove ends the move and leaves the account where it was.
func (r *Router) AbortMove(ctx context.Context, moveID string) (Placement, error) {
	var out Placement
	err := r.write(ctx, func(w *writer) error {
		m, a, err := w.openMove(moveID)
		if err != nil {
			return err
		}
		next := a.change(w.now, Event{Kind: MoveAborted, From: m.From, To: m.To, Reference: m.Transfer, MoveID: m.ID},
			func(p *Placement) { p.Move = Move{} })
		w.put(next, nil)
		w.onCommit(func() { r.metrics.moved("aborted", m) })
		out = next.Placement
		return nil
	})
	return out, err
}

// openMove returns an open move and its account.
func (w *writer) openMove(moveID string) (*Move, *account, error) {
	if moveID == "" || len(moveID) > MaxAccountIDLen {
		return nil, nil, fmt.Errorf("%w: move %.40q", ErrNotFound, moveID)
	}
	m := getMove(w.tx(), moveID)
	if m == nil {
		return nil, nil, fmt.Errorf("%w: move %q", ErrNotFound, moveID)
	}
	return m, w.account(m.AccountID), nil
}
