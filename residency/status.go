package residency

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
)

// DataCenterState is a data center's runtime status, set by [Router.Drain]
// or [Router.Activate]; it overrides the catalog's status and is kept in
// the store.
type DataCenterState struct {
	ID      string          `json:"id"`
	Status  provider.Status `json:"status"`
	Changed time.Time       `json:"changed"`
	// Version counts the data center's status changes: the first one
	// stored is version 1, and a store refuses a change whose version is
	// not one more than the stored one, as it does an account's.
	Version uint64 `json:"version,omitzero"`
}

// topology is every data center's effective status and, per region, the
// active ones, ordered by ID. It is immutable: a status change publishes a
// new one, so that readers (Verify, metrics) need no lock and writers see
// the status of their batch.
type topology struct {
	status map[string]provider.Status
	// states are the runtime states read from the store or set since,
	// with their versions; statuses is the sum of their versions: how
	// many status changes this topology has seen.
	states   map[string]DataCenterState
	statuses uint64
	active   [region.APAC + 1][]*dataCenter
	// announced is set when a data center has an effective date: then
	// the active ones take accounts only from that date, by clock.
	announced bool
	clock     func() time.Time
}

func (r *Router) newTopology(states map[string]DataCenterState) *topology {
	t := &topology{status: make(map[string]provider.Status, len(r.ordered)), states: states, clock: r.now}
	for _, st := range states {
		t.statuses += st.Version
	}
	for _, d := range r.ordered {
		t.announced = t.announced || !d.Effective.IsZero()
		s := d.Status
		if o, ok := states[d.ID]; ok {
			s = o.Status
		}
		t.status[d.ID] = s
		if s == provider.Active {
			t.active[d.Region] = append(t.active[d.Region], d)
		}
	}
	return t
}

func (t *topology) isActive(id string) bool { return t.status[id] == provider.Active }

// withState returns the runtime states with st in place of its data
// center's: a new map, since topologies are immutable.
func (t *topology) withState(st DataCenterState) map[string]DataCenterState {
	states := make(map[string]DataCenterState, len(t.states)+1)
	for id, s := range t.states {
		states[id] = s
	}
	states[st.ID] = st
	return states
}

// newer returns the runtime states with those of states that are newer
// (a higher version) than t's, or nil when none is.
func (t *topology) newer(states []DataCenterState) map[string]DataCenterState {
	var out map[string]DataCenterState
	for _, st := range states {
		if st.Version <= t.states[st.ID].Version {
			continue
		}
		if out == nil {
			out = make(map[string]DataCenterState, len(t.states)+1)
			for id, s := range t.states {
				out[id] = s
			}
		}
		out[st.ID] = st
	}
	return out
}

// Drain stops new accounts and incoming moves from going to the data center;
// its accounts stay until moved ([Router.PlanEvacuation]). The status is
// kept in the store and overrides the catalog's until [Router.Activate].
// Draining a draining data center changes nothing. On a shared store
// ([SharedStore]) Drain returns, as [Router.CompleteMove] does, only once
// this Router, and every other live Router on it, has applied it and
// everything committed before it (so a [Router.PlanEvacuation] right after
// it sees every account placed there before the drain); when it cannot tell, the
// drain stands and Drain returns an error matching [ErrNotFenced]. Either
// way no Router places an account or begins a move there once the drain
// is committed (the store refuses a write decided on older statuses:
// [SharedStore]'s Append), so an evacuation may go on; ErrNotFenced says
// only that some Router may still report the data center active.
func (r *Router) Drain(ctx context.Context, dataCenter string) error {
	pos, err := r.setStatus(ctx, dataCenter, provider.Draining)
	if err != nil {
		return err
	}
	return r.fence(ctx, pos, "the drain of "+dataCenter)
}

// Activate lets the data center take new accounts again, whatever the
// catalog says.
func (r *Router) Activate(ctx context.Context, dataCenter string) error {
	_, err := r.setStatus(ctx, dataCenter, provider.Active)
	return err
}

// Status returns the data center's effective status; [ErrClosed] after
// [Router.Close].
func (r *Router) Status(dataCenter string) (provider.Status, error) {
	if r.isClosed() {
		return "", ErrClosed
	}
	s, ok := r.topo.Load().status[dataCenter]
	if !ok {
		return "", fmt.Errorf("%w %.80q", ErrUnknownDataCenter, dataCenter)
	}
	return s, nil
}

func (r *Router) setStatus(ctx context.Context, id string, s provider.Status) (uint64, error) {
	if r.isClosed() {
		return 0, ErrClosed
	}
	if _, ok := r.dataCenters[id]; !ok { // the catalog's, fixed at Open
		return 0, r.refuse(fmt.Errorf("%w %.80q", ErrUnknownDataCenter, id))
	}
	return r.writeAt(ctx, subject{"data center", id}, func(w *writer) error {
		if w.topo.status[id] == s {
			return nil
		}
		st := DataCenterState{ID: id, Status: s, Changed: w.now, Version: w.topo.states[id].Version + 1}
		w.topo = r.newTopology(w.topo.withState(st))
		if w.durable {
			w.changes = append(w.changes, Change{DataCenter: &st})
		}
		return nil
	})
}

// EvacuationPlan is how to empty a data center: a move for every account
// that can stay in its home region, and the accounts that cannot.
type EvacuationPlan struct {
	DataCenter string        `json:"datacenter"`
	Moves      []PlannedMove `json:"moves,omitempty"`
	// Stranded are the accounts that cannot move now: no other active data
	// center in their region ([ErrNoDataCenter]), or a move in progress
	// ([ErrMoveInProgress]): out of the data center, to complete or abort,
	// or into it, to abort, since [Router.CompleteMove] refuses a target
	// that is no longer active.
	Stranded []Stranded `json:"stranded,omitempty"`
}

// PlannedMove is one move of an [EvacuationPlan].
type PlannedMove struct {
	AccountID string `json:"account_id"`
	From      string `json:"from"`
	To        string `json:"to"`
}

// Stranded is an account an [EvacuationPlan] cannot move, and why.
type Stranded struct {
	AccountID string
	// MoveID is the account's move in progress, if that is what strands
	// it.
	MoveID string
	// Err says why, and matches [ErrNoDataCenter] or [ErrMoveInProgress].
	Err error
}

// MarshalJSON encodes the stranded account as
// {"account_id": ..., "move_id": ..., "error": Err.Error()}; move_id is
// left out when empty. JSON keeps the error's text only, not what
// [errors.Is] matches.
func (s Stranded) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AccountID string `json:"account_id"`
		MoveID    string `json:"move_id,omitempty"`
		Error     string `json:"error"`
	}{s.AccountID, s.MoveID, errorText(s.Err)})
}

// errorText is err's message, "" for nil.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// PlanEvacuation plans moving every account off the data center: each to
// another active data center of its home region, spread by weight as
// placements are. It never plans a move out of the region: an account with
// nowhere to go in its region is stranded. So is an account with a move in
// progress, out of the data center or into it: a move into a data center
// being emptied must be aborted (and [Router.CompleteMove] refuses it once
// the data center is drained). The plan changes nothing; carry it out with
// BeginMove and CompleteMove, after [Router.Drain] so that no new account
// or move arrives meanwhile. The plan is made from one snapshot of the
// state, and stranded accounts are listed in account ID order, those on
// the data center first.
func (r *Router) PlanEvacuation(ctx context.Context, dataCenter string) (EvacuationPlan, error) {
	if r.isClosed() {
		return EvacuationPlan{}, ErrClosed
	}
	src, ok := r.dataCenters[dataCenter]
	if !ok {
		return EvacuationPlan{}, fmt.Errorf("%w %.80q", ErrUnknownDataCenter, dataCenter)
	}
	txn, topo := r.snapshot(), r.topo.Load()
	plan := EvacuationPlan{DataCenter: dataCenter}
	n := 0
	for a := range txn.accounts() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return EvacuationPlan{}, err
			}
		}
		if a.DataCenter != dataCenter {
			continue
		}
		if a.Moving() {
			plan.Stranded = append(plan.Stranded, Stranded{AccountID: a.AccountID, MoveID: a.Move.ID,
				Err: fmt.Errorf("%w: account %q is moving to %s (move %s): complete or abort the move first", ErrMoveInProgress, a.AccountID, a.Move.To, a.Move.ID)})
			continue
		}
		best := topo.best(a.Region, a.AccountID, src)
		if best == nil {
			plan.Stranded = append(plan.Stranded, Stranded{AccountID: a.AccountID,
				Err: fmt.Errorf("%w: account %q: region %s has no other active data center than %s", ErrNoDataCenter, a.AccountID, a.Region, dataCenter)})
			continue
		}
		plan.Moves = append(plan.Moves, PlannedMove{AccountID: a.AccountID, From: dataCenter, To: best.ID})
	}
	var incoming []Stranded
	for m := range all[*Move](txn.txn, tableMoves) {
		if m.To == dataCenter {
			incoming = append(incoming, Stranded{AccountID: m.AccountID, MoveID: m.ID,
				Err: fmt.Errorf("%w: account %q is moving from %s into %s (move %s): abort the move", ErrMoveInProgress, m.AccountID, m.From, dataCenter, m.ID)})
		}
	}
	slices.SortFunc(incoming, func(a, b Stranded) int { return strings.Compare(a.AccountID, b.AccountID) })
	plan.Stranded = append(plan.Stranded, incoming...)
	return plan, nil
}
