package residency

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/hashicorp/go-memdb"
)

// BeginMove starts moving an account to data center to and marks it moving.
// The caller then copies the data and calls [Router.CompleteMove], or
// [Router.AbortMove] to give up. Until then [Router.Lookup] still answers
// the source.
//
// The target must be an active data center of the catalog other than the
// account's own, in the account's home region, or in a region a live
// transfer agreement of the account covers ([ErrCrossRegion] otherwise);
// the move records the one of those agreements that lasts longest, which
// [Router.CompleteMove] checks again.
// A move to the data center the account lives on is a [*ConflictError]
// (not stale): a script run again finds its account there already. An
// account moves once at a time: a second BeginMove while a move is open
// is [ErrMoveInProgress], whose text names the open move ([Router.Lookup]
// gives it as Placement.Move). An unknown account is [ErrNotFound].
func (r *Router) BeginMove(ctx context.Context, accountID, to string) (Move, error) {
	if r.isClosed() {
		return Move{}, ErrClosed
	}
	if err := ValidAccountID(accountID); err != nil {
		return Move{}, r.refuse(err)
	}
	var out Move
	err := r.write(ctx, subject{"account", accountID}, func(w *writer) error {
		a := w.live(accountID)
		if a == nil {
			return fmt.Errorf("%w: account %q", ErrNotFound, accountID)
		}
		if a.Moving() {
			return fmt.Errorf("%w: account %q is moving to %s (move %s)", ErrMoveInProgress, accountID, a.Move.To, a.Move.ID)
		}
		target, ok := r.dataCenters[to]
		switch {
		case !ok:
			return fmt.Errorf("%w %.80q: account %q", ErrUnknownDataCenter, to, accountID)
		case to == a.DataCenter:
			return conflictWith(a, "already lives in "+to)
		case !w.topo.isActive(to):
			return fmt.Errorf("%w: account %q: data center %s is %s and takes no accounts", ErrNoDataCenter, accountID, to, w.topo.status[to])
		case !target.EffectiveAt(w.now):
			return notYet(accountID, target)
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
	if err != nil {
		return Move{}, err
	}
	return out, nil
}

func crossRegion(a *account, to string, toRegion region.Region) error {
	return fmt.Errorf("%w: account %q lives in %s, data center %s is in %s, and no live transfer agreement covers %s", ErrCrossRegion, a.AccountID, a.Region, to, toRegion, toRegion)
}

// CompleteMove switches the account to the move's target and ends the move.
// The target is checked again, and CompleteMove refuses, leaving the move
// open to be aborted, if the target
//   - left the catalog ([ErrUnknownDataCenter]);
//   - is no longer active: drained or offline since BeginMove
//     ([ErrNoDataCenter]); [Router.PlanEvacuation] lists such moves;
//   - is announced from a date still ahead, as a catalog changed since
//     BeginMove may say ([ErrNotEffective], which matches ErrNoDataCenter
//     too; [Router.Verify] warns of such moves);
//   - is in another region and the transfer agreement the move began under
//     (Move.Transfer) has since expired or been revoked ([ErrCrossRegion]).
//     Only that agreement counts: another one granted meanwhile neither
//     blocks the move nor stands in for it.
//
// A move to another region changes the account's home region and records
// the agreement's reference.
//
// The account's backup data center is chosen again for the target (often
// the source becomes the backup): the placement returned names it. When
// it changed, the copy in the old backup is no longer the account's
// backup, which the trail does not record: a migration script that keeps
// backups moves or deletes it, and makes the new one.
//
// On a shared store ([SharedStore]) CompleteMove returns only once this
// Router, and every other live Router on it, has applied the move (and
// everything committed before it), so the source copy may be
// deleted as soon as it returns; a Router cut off from the store holds it
// up for at most its lease (and answers [ErrStale] by then), one closed
// cleanly not at all. An error after the move was committed matches
// [ErrNotFenced] and comes with the placement: the move is done, but the
// source copy must not be deleted yet ([Router.Fence] waits again).
//
// A move ID that is not open is [ErrNotFound]: one never begun, and one
// already completed or aborted alike (a script run again, say). Which of
// them it was shows on the account: [Router.Lookup] gives where it lives,
// [Router.History] how its moves ended.
func (r *Router) CompleteMove(ctx context.Context, moveID string) (Placement, error) {
	if err := r.checkMoveID(moveID); err != nil {
		return Placement{}, err
	}
	var out Placement
	pos, err := r.writeAt(ctx, subject{"move", moveID}, func(w *writer) error {
		m, a, err := w.openMove(moveID)
		if err != nil {
			return err
		}
		target, ok := r.dataCenters[m.To]
		if !ok {
			return fmt.Errorf("%w %q: move %s of account %q", ErrUnknownDataCenter, m.To, m.ID, a.AccountID)
		}
		if !w.topo.isActive(m.To) {
			return fmt.Errorf("%w: move %s of account %q: data center %s is %s and takes no accounts; abort the move", ErrNoDataCenter, m.ID, a.AccountID, m.To, w.topo.status[m.To])
		}
		if !target.EffectiveAt(w.now) {
			return fmt.Errorf("move %s: %w; abort the move", m.ID, notYet(a.AccountID, target))
		}
		e := Event{Kind: MoveCompleted, From: m.From, To: m.To, MoveID: m.ID}
		edit := func(p *Placement) {
			p.DataCenter, p.Provider, p.Backup, p.Move = target.ID, target.Provider, w.topo.backupFor(a.AccountID, target), Move{}
		}
		if target.Region != a.Region {
			ag := moveAgreement(w.tx(), m, target.Region, w.now)
			if ag == nil {
				return fmt.Errorf("%w (agreement %q of move %s is no longer live; abort the move)", crossRegion(a, m.To, target.Region), m.Transfer, m.ID)
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
	if err != nil {
		return Placement{}, err
	}
	if err := r.fence(ctx, pos, "move "+moveID); err != nil {
		return out, err
	}
	return out, nil
}

// AbortMove ends the move and leaves the account where it was: the data
// copied to the target is no longer in use. It is recorded on the trail
// (MoveAborted), and a later BeginMove may try again. As for CompleteMove,
// a move ID that is not open (never begun, completed or aborted already)
// is [ErrNotFound]. During the move [Router.MayAccess] let the target's
// host in too: on a shared store AbortMove returns once every live Router
// has applied it, as [Router.RevokeAccess] does, so that none lets that
// host in after it returns; when that wait gives up, the error matches
// [ErrNotFenced], the move is aborted all the same, and the placement
// comes with the error.
func (r *Router) AbortMove(ctx context.Context, moveID string) (Placement, error) {
	if err := r.checkMoveID(moveID); err != nil {
		return Placement{}, err
	}
	var out Placement
	err := r.writeFenced(ctx, subject{"move", moveID}, func(w *writer) error {
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
	if err != nil && !errors.Is(err, ErrNotFenced) {
		return Placement{}, err
	}
	return out, err
}

// moveAgreement returns the agreement that allows move m out of the
// account's home region: the one BeginMove recorded in m.Transfer, if it is
// still live and covers region to, the target's region; nil otherwise. Another
// agreement that covers the region does not stand in for it: the audit
// trail names the agreement the move began under, and a move whose
// agreement ended must be aborted and begun again under another.
func moveAgreement(txn *memdb.Txn, m *Move, to region.Region, now time.Time) *Agreement {
	if m.Transfer == "" {
		return nil
	}
	ag := getAgreement(txn, m.AccountID, m.Transfer)
	if ag == nil || ag.To != to || !ag.Live(now) {
		return nil
	}
	return ag
}

// openMove returns an open move and its account.
// checkMoveID is ErrClosed after Close, and refuses a move ID that no
// move can have (empty, or longer than an account ID may be) before a
// write names it in an error.
func (r *Router) checkMoveID(moveID string) error {
	if r.isClosed() {
		return ErrClosed
	}
	if moveID == "" || len(moveID) > MaxAccountIDLen {
		return r.refuse(fmt.Errorf("%w: move %.40q", ErrNotFound, moveID))
	}
	return nil
}

func (w *writer) openMove(moveID string) (*Move, *account, error) {
	m := getMove(w.tx(), moveID)
	if m == nil {
		return nil, nil, fmt.Errorf("%w: move %q", ErrNotFound, moveID)
	}
	return m, w.account(m.AccountID), nil
}
