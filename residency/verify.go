package residency

import (
	"context"
	"fmt"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
)

// Report is what [Router.Verify] found.
type Report struct {
	// At is when the check ran; Accounts and Moves how many it checked.
	At       time.Time `json:"at"`
	Accounts int       `json:"accounts"`
	Moves    int       `json:"moves"`
	// Violations break the residency promise: data in a data center the
	// catalog lacks or outside the account's home region, or a move out of
	// the region that no live agreement covers. Empty (and left out of
	// JSON) when all holds.
	Violations []Finding `json:"violations,omitempty"`
	// Warnings weaken it without breaking it: accounts without a backup
	// because their region has one data center, accounts and backups on
	// data centers that are no longer active, open moves into such data
	// centers, which cannot complete, and standing objections to an ID
	// the catalog now gives to a hosting provider (objections do not
	// apply to hosts).
	Warnings []Finding `json:"warnings,omitempty"`
}

// OK reports whether the report has no violations.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// Finding is one problem. AccountID is empty for a finding about a data
// center or a region as a whole.
type Finding struct {
	AccountID  string        `json:"account_id,omitempty"`
	DataCenter string        `json:"datacenter,omitempty"`
	Region     region.Region `json:"region,omitzero"`
	Problem    string        `json:"problem"`
}

// Verify checks every account and open move against the catalog and the
// transfer agreements, on one consistent snapshot: the account's data center
// and backup exist, are in its home region and are effective (a catalog
// that moved a data center's effective date into the future makes its
// accounts violations), and its move in progress targets that region or one
// a live agreement covers. It also warns of standing objections to an ID
// the catalog now gives to a hosting provider. Deleted accounts are not
// checked.
func (r *Router) Verify(ctx context.Context) (Report, error) {
	if r.isClosed() {
		return Report{}, ErrClosed
	}
	v, topo := r.snapshot(), r.topo.Load()
	txn := v.txn
	rep := Report{At: r.now()}
	violation := func(a *account, dc, format string, args ...any) {
		rep.Violations = append(rep.Violations, Finding{AccountID: a.AccountID, DataCenter: dc, Region: a.Region, Problem: fmt.Sprintf(format, args...)})
	}
	perRegion := map[region.Region]int{}
	inactive := map[string][2]int{} // accounts and backups on inactive data centers
	for a := range v.accounts() {
		if a.deleted() {
			continue
		}
		if rep.Accounts%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return Report{}, err
			}
		}
		rep.Accounts++
		perRegion[a.Region]++
		// Where the data is (role 0) and where its backups are (role 1)
		// must both be catalog data centers of the home region.
		for role, id := range [2]string{a.DataCenter, a.Backup} {
			what := [2]string{"data center", "backup data center"}[role]
			dc, ok := r.dataCenters[id]
			switch {
			case id == "":
			case !ok:
				violation(a, id, "%s %s is not in the catalog", what, id)
			case dc.Region != a.Region:
				violation(a, id, "%s %s is in %s, outside the home region %s", what, id, dc.Region, a.Region)
			case !dc.EffectiveAt(rep.At):
				violation(a, id, "%s %s is announced from %s and may not hold data yet", what, id, dc.Effective.Format(time.RFC3339))
			case !topo.isActive(id):
				n := inactive[id]
				n[role]++
				inactive[id] = n
			}
		}
		if a.access != nil {
			for _, o := range a.access.objections {
				// An objection names a sub-processor by ID; a later
				// catalog may give that ID to a hosting provider, which
				// objections do not apply to.
				if sc, err := r.catalog.Scope(o.SubProcessor); o.Live() && err == nil && sc.Kind == provider.Host {
					rep.Warnings = append(rep.Warnings, Finding{AccountID: a.AccountID, Region: a.Region, Problem: fmt.Sprintf(
						"objection %q to %s stands, but %s is now a hosting provider in the catalog: objections do not apply to hosts, so it keeps nothing away", o.Reference, o.SubProcessor, o.SubProcessor)})
				}
			}
		}
		if m := a.Move; a.Moving() {
			if getMove(txn, m.ID) == nil {
				violation(a, m.To, "move %s is on the account but not among the open moves", m.ID)
			}
			t, ok := r.dataCenters[m.To]
			switch {
			case !ok:
				violation(a, m.To, "move %s targets data center %s, which is not in the catalog", m.ID, m.To)
			case t.Region != a.Region && moveAgreement(txn, &m, t.Region, rep.At) == nil:
				violation(a, m.To, "move %s targets %s in %s without a live transfer agreement (its agreement %q)", m.ID, m.To, t.Region, m.Transfer)
			case !topo.isActive(m.To):
				rep.Warnings = append(rep.Warnings, Finding{AccountID: a.AccountID, DataCenter: m.To, Region: a.Region,
					Problem: fmt.Sprintf("move %s targets data center %s, which is %s: it cannot complete and must be aborted", m.ID, m.To, topo.status[m.To])})
			case !t.EffectiveAt(rep.At):
				rep.Warnings = append(rep.Warnings, Finding{AccountID: a.AccountID, DataCenter: m.To, Region: a.Region,
					Problem: fmt.Sprintf("move %s targets data center %s, which is announced from %s: it cannot complete before then", m.ID, m.To, t.Effective.Format(time.RFC3339))})
			}
		}
	}
	for m := range all[*Move](txn, tableMoves) {
		rep.Moves++
		if a := v.account(m.AccountID); a == nil || a.Move.ID != m.ID {
			rep.Violations = append(rep.Violations, Finding{AccountID: m.AccountID, DataCenter: m.To, Problem: fmt.Sprintf("open move %s is not on its account", m.ID)})
		}
	}
	for _, reg := range region.All() {
		n := perRegion[reg]
		if n == 0 {
			continue
		}
		var usable []*dataCenter // active and effective
		for _, d := range topo.active[reg] {
			if d.EffectiveAt(rep.At) {
				usable = append(usable, d)
			}
		}
		switch len(usable) {
		case 0:
			rep.Warnings = append(rep.Warnings, Finding{Region: reg, Problem: fmt.Sprintf("region %s has no active data center: %d accounts can neither be placed anew nor moved", reg, n)})
		case 1:
			rep.Warnings = append(rep.Warnings, Finding{Region: reg, DataCenter: usable[0].ID, Problem: fmt.Sprintf("region %s has one active data center: %d accounts have no backup", reg, n)})
		}
	}
	for _, d := range r.ordered {
		if n := inactive[d.ID]; n != [2]int{} {
			rep.Warnings = append(rep.Warnings, Finding{DataCenter: d.ID, Region: d.Region,
				Problem: fmt.Sprintf("data center %s is %s and holds %d accounts and the backups of %d", d.ID, topo.status[d.ID], n[0], n[1])})
		}
	}
	return rep, nil
}
