package residency

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/domicile-go/domicile/region"
)

// Accounts yields the placement of every account on the data center, in
// account ID order, from a snapshot taken when iteration starts, with every
// write acknowledged by then: changes made meanwhile are not seen. It scans
// every account (see schema.go on why there is no data center index): about
// 50 ns an account.
//
// An iteration that starts after [Router.Close] yields nothing; one that
// started before goes on to its end. To tell an empty result from a closed
// Router, check [Router.Err] after the loop: nil means the loop saw every
// account.
func (r *Router) Accounts(dataCenter string) iter.Seq[Placement] {
	return r.accounts(func(p *Placement) bool { return p.DataCenter == dataCenter })
}

// AccountsInRegion yields the placement of every account whose home region
// is reg, in account ID order, from a snapshot as [Router.Accounts] does.
// After [Router.Close] it yields nothing: see [Router.Err].
func (r *Router) AccountsInRegion(reg region.Region) iter.Seq[Placement] {
	return r.accounts(func(p *Placement) bool { return p.Region == reg })
}

func (r *Router) accounts(keep func(*Placement) bool) iter.Seq[Placement] {
	return func(yield func(Placement) bool) {
		if r.isClosed() {
			return
		}
		for a := range r.snapshot().accounts() {
			if !a.deleted() && keep(&a.Placement) && !yield(a.Placement) {
				return
			}
		}
	}
}

// Moves yields every open move, in move ID order, from a snapshot. A
// migration script uses it to find moves an interrupted run left open.
// After [Router.Close] it yields nothing: see [Router.Err].
func (r *Router) Moves() iter.Seq[Move] {
	return func(yield func(Move) bool) {
		if r.isClosed() {
			return
		}
		for m := range all[*Move](r.db.Txn(false), tableMoves) {
			if !yield(*m) {
				return
			}
		}
	}
}

// History returns the account's audit trail, oldest first: its placement,
// moves begun, completed and aborted, agreements granted and revoked,
// consents granted and revoked, objections raised and withdrawn, and its
// deletion. It answers for a deleted account too: the trail stays, as an
// auditor needs, and goes on if the ID is placed afresh. It returns
// [ErrNotFound] for an account never placed, and [ErrClosed] after
// [Router.Close].
//
// On a [TrailStore] (PostgreSQL), the trail is read from the store, within
// ctx, and may include changes committed elsewhere that this Router has
// not applied yet; otherwise it is a memory read and ctx is not used.
func (r *Router) History(ctx context.Context, accountID string) ([]Event, error) {
	a, err := r.account(accountID)
	if err != nil {
		return nil, err
	}
	if r.trails == nil {
		return slices.Clone(a.history), nil
	}
	tctx, cancel := r.untilClose(ctx)
	defer cancel()
	h, err := r.trails.Trail(tctx, accountID)
	if err != nil {
		if r.isClosed() {
			return nil, ErrClosed // Close closed the store under Trail
		}
		return nil, fmt.Errorf("residency: reading the history of account %q: %w", accountID, err)
	}
	// The store's trail reaches at least the version this Router holds,
	// committed before it was applied here.
	if v := a.Version; uint64(len(h)) < v || h[v-1].Version != v {
		return nil, fmt.Errorf("%w: the history of account %q does not reach its version %d (%d events)", ErrCorrupt, accountID, v, len(h))
	}
	return h, nil
}

// Agreements returns the account's transfer agreements, revoked and expired
// ones included, ordered by reference; for a deleted account too. After [Router.Close] it returns
// [ErrClosed], as History does.
func (r *Router) Agreements(accountID string) ([]Agreement, error) {
	if _, err := r.account(accountID); err != nil {
		return nil, err
	}
	var out []Agreement
	for ag := range agreementsOf(r.db.Txn(false), accountID) {
		out = append(out, *ag)
	}
	return out, nil
}

// Err returns [ErrClosed] once the Router is closed, and nil before. The
// iterators ([Router.Accounts], [Router.AccountsInRegion], [Router.Moves])
// cannot return an error and yield nothing after Close: as with
// [bufio.Scanner.Err], a caller checks Err after the loop, and nil means the
// loop saw everything. A non-nil Err after a loop means the Router was
// closed during or before it; the loop may then have seen nothing.
func (r *Router) Err() error {
	if r.isClosed() {
		return ErrClosed
	}
	return nil
}

func (r *Router) account(accountID string) (*account, error) {
	if r.isClosed() {
		return nil, ErrClosed
	}
	if err := ValidAccountID(accountID); err != nil {
		return nil, err
	}
	a := r.lookup.get(accountID)
	if a == nil {
		return nil, fmt.Errorf("%w: account %q", ErrNotFound, accountID)
	}
	return a, nil
}
