package residency

import (
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
func (r *Router) Accounts(dataCenter string) iter.Seq[Placement] {
	return r.accounts(func(p *Placement) bool { return p.DataCenter == dataCenter })
}

// AccountsInRegion yields the placement of every account whose home region
// is reg, in account ID order, from a snapshot as [Router.Accounts] does.
func (r *Router) AccountsInRegion(reg region.Region) iter.Seq[Placement] {
	return r.accounts(func(p *Placement) bool { return p.Region == reg })
}

func (r *Router) accounts(keep func(*Placement) bool) iter.Seq[Placement] {
	return func(yield func(Placement) bool) {
		for a := range r.snapshot().accounts() {
			if keep(&a.Placement) && !yield(a.Placement) {
				return
			}
		}
	}
}

// Moves yields every open move, in move ID order, from a snapshot. A
// migration script uses it to find moves an interrupted run left open.
func (r *Router) Moves() iter.Seq[Move] {
	return func(yield func(Move) bool) {
		for m := range all[*Move](r.db.Txn(false), tableMoves) {
			if !yield(*m) {
				return
			}
		}
	}
}

// History returns the account's audit trail, oldest first: its placement,
// moves begun, completed and aborted, and agreements granted and revoked.
func (r *Router) History(accountID string) ([]Event, error) {
	a, err := r.account(accountID)
	if err != nil {
		return nil, err
	}
	return slices.Clone(a.history), nil
}

// Agreements returns the account's transfer agreements, revoked and expired
// ones included, ordered by reference.
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

func (r *Router) account(accountID string) (*account, error) {
	if err := ValidAccountID(accountID); err != nil {
		return nil, err
	}
	a := r.lookup.get(accountID)
	if a == nil {
		return nil, fmt.Errorf("%w: account %q", ErrNotFound, accountID)
	}
	return a, nil
}
