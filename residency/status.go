package residency

import (
	"context"
	"fmt"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
)

// DataCenterState is a data center's runtime status, set by [Router.Drain]
// or [Router.Activate]; it overrides the catalog's status and is kept in
// the store.
type DataCenterState struct {
	ID      string
	Status  provider.Status
	Changed time.Time
}

// topology is every data center's effective status and, per region, the
// active ones, ordered by ID. It is immutable: a status change publishes a
// new one, so that readers (Verify, metrics) need no lock and writers see
// the status of their batch.
type topology struct {
	status map[string]provider.Status
	active [region.APAC + 1][]*dataCenter
}

func (r *Router) newTopology(overrides map[string]provider.Status) *topology {
	t := &topology{status: make(map[string]provider.Status, len(r.ordered))}
	for _, d := range r.ordered {
		s := d.Status
		if o, ok := overrides[d.ID]; ok {
			s = o
		}
		t.status[d.ID] = s
		if s == provider.Active {
			t.active[d.Region] = append(t.active[d.Region], d)
		}
	}
	return t
}

func (t *topology) isActive(id string) bool { return t.status[id] == provider.Active }

// Drain stops new accounts and incoming moves from going to the data center;
// its accounts stay until moved ([Router.PlanEvacuation]). The status is
// kept in the store and overrides the catalog's until [Router.Activate].
// Draining a draining data center changes nothing.
func (r *Router) Drain(ctx context.Context, dataCenter string) error {
	return r.setStatus(ctx, dataCenter, provider.Draining)
}

// Activate lets the data center take new accounts again, whatever the
// catalog says.
func (r *Router) Activate(ctx context.Context, dataCenter string) error {
	return r.setStatus(ctx, dataCenter, provider.Active)
}

// Status returns the data center's effective status.
func (r *Router) Status(dataCenter string) (provider.Status, error) {
	s, ok := r.topo.Load().status[dataCenter]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownDataCenter, dataCenter)
	}
	return s, nil
}

func (r *Router) setStatus(ctx context.Context, id string, s provider.Status) error {
	return r.write(ctx, func(w *writer) error {
		if _, ok := r.dataCenters[id]; !ok {
			return fmt.Errorf("%w %q", ErrUnknownDataCenter, id)
		}
		if w.topo.status[id] == s {
			return nil
		}
		overrides := make(map[string]provider.Status, len(w.topo.status))
		for dc, st := range w.topo.status {
			overrides[dc] = st
		}
		overrides[id] = s
		w.topo = r.newTopology(overrides)
		if w.durable {
			w.changes = append(w.changes, Change{DataCenter: &DataCenterState{ID: id, Status: s, Changed: w.now}})
		}
		return nil
	})
}

// EvacuationPlan is how to empty a data center: a move for every account
// that can stay in its home region, and the accounts that cannot.
type EvacuationPlan struct {
	DataCenter string
	Moves      []PlannedMove
	// Stranded are the accounts that cannot move now: no other active data
	// center in their region ([ErrNoDataCenter]), or a move already in
	// progress ([ErrMoveInProgress]).
	Stranded []Stranded
}

// PlannedMove is one move of an [EvacuationPlan].
type PlannedMove struct {
	AccountID, From, To string
}

// Stranded is an account an [EvacuationPlan] cannot move, and why.
type Stranded struct {
	AccountID string
	Err       error
}

// PlanEvacuation plans moving every account off the data center: each to
// another active data center of its home region, spread by weight as
// placements are. It never plans a move out of the region: an account with
// nowhere to go in its region is stranded. The plan changes nothing; carry
// it out with BeginMove and CompleteMove, after [Router.Drain] so that no
// new account arrives meanwhile.
func (r *Router) PlanEvacuation(ctx context.Context, dataCenter string) (EvacuationPlan, error) {
	src, ok := r.dataCenters[dataCenter]
	if !ok {
		return EvacuationPlan{}, fmt.Errorf("%w %q", ErrUnknownDataCenter, dataCenter)
	}
	topo := r.topo.Load()
	plan := EvacuationPlan{DataCenter: dataCenter}
	for p := range r.Accounts(dataCenter) {
		if err := ctx.Err(); err != nil {
			return EvacuationPlan{}, err
		}
		if p.Moving() {
			plan.Stranded = append(plan.Stranded, Stranded{p.AccountID, fmt.Errorf("%w: account %q is moving to %s (move %s)", ErrMoveInProgress, p.AccountID, p.Move.To, p.Move.ID)})
			continue
		}
		best := topo.best(p.Region, p.AccountID, src)
		if best == nil {
			plan.Stranded = append(plan.Stranded, Stranded{p.AccountID, fmt.Errorf("%w: account %q: region %s has no other active data center than %s", ErrNoDataCenter, p.AccountID, p.Region, dataCenter)})
			continue
		}
		plan.Moves = append(plan.Moves, PlannedMove{AccountID: p.AccountID, From: dataCenter, To: best.ID})
	}
	return plan, nil
}
