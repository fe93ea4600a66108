// Package routertest reads all a [residency.Router] holds, through its
// public API, for tests that compare two Routers or one Router before
// and after a call: the tests of residency and of its stores. It also
// opens Routers on PostgreSQL ([OnPostgres]), checks a Router's gauges
// ([CheckGauges]) and makes a schema of an older format
// ([TrimmedFormat2]), for the tests of several packages.
package routertest

import (
	"context"
	"fmt"
	"testing"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// State is what a Router holds, read through its public API: the
// placements of its accounts, region by region in the order of
// [region.All] and by ID within each ([residency.Router.AccountsInRegion]),
// its open moves by ID, each account's history, agreements, consents and
// objections, and the status of each data center of its catalog. Deleted
// accounts are left out: no region lists them.
type State struct {
	Placements []residency.Placement
	Moves      []residency.Move
	History    map[string][]residency.Event
	Agreements map[string][]residency.Agreement
	Consents   map[string][]residency.ConsentRecord
	Objections map[string][]residency.ObjectionRecord
	Statuses   map[string]provider.Status
}

// Of reads r's State; an error of a read fails the test.
func Of(t testing.TB, r *residency.Router) State {
	t.Helper()
	s := State{
		History:    map[string][]residency.Event{},
		Agreements: map[string][]residency.Agreement{},
		Consents:   map[string][]residency.ConsentRecord{},
		Objections: map[string][]residency.ObjectionRecord{},
		Statuses:   map[string]provider.Status{},
	}
	for _, reg := range region.All() {
		for p := range r.AccountsInRegion(reg) {
			s.Placements = append(s.Placements, p)
			id := p.AccountID
			var err error
			if s.History[id], err = r.History(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			if s.Agreements[id], err = r.Agreements(id); err != nil {
				t.Fatal(err)
			}
			if s.Consents[id], err = r.Consents(id); err != nil {
				t.Fatal(err)
			}
			if s.Objections[id], err = r.Objections(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	for m := range r.Moves() {
		s.Moves = append(s.Moves, m)
	}
	for _, d := range r.Catalog().All() {
		st, err := r.Status(d.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.Statuses[d.ID] = st
	}
	return s
}

// OnPostgres opens a Router with ropts on a Store of its own on dsn,
// opened with opts, and closes it after the test (closing it earlier is
// fine).
func OnPostgres(t testing.TB, dsn string, ropts []residency.Option, opts ...postgres.Option) *residency.Router {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	r, err := residency.Open(ctx, append([]residency.Option{residency.WithStore(s)}, ropts...)...)
	if err != nil {
		t.Fatalf("residency.Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TrimmedFormat2 returns the statements that turn the schema "domicile"
// back into format 2 with its changes trimmed to position trimmed, as
// format 2's Trim left it, for the tests of the upgrade from it.
func TrimmedFormat2(trimmed int) []string {
	return []string{
		`DROP TABLE domicile.loghashes`,
		`ALTER TABLE domicile.head DROP COLUMN statuses`,
		`ALTER TABLE domicile.datacenters DROP COLUMN prev`,
		`DELETE FROM domicile.meta WHERE key = 'logstart'`,
		fmt.Sprintf(`DELETE FROM domicile.changes WHERE pos <= %d`, trimmed),
		fmt.Sprintf(`UPDATE domicile.head SET trimmed = %d`, trimmed),
		`UPDATE domicile.meta SET value = '2' WHERE key = 'format'`,
		`UPDATE domicile.meta SET value = (SELECT coalesce(string_agg(c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
			|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, E'\n' ORDER BY c.relname, a.attnum), '')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
			WHERE n.nspname = 'domicile' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped) WHERE key = 'layout'`,
	}
}

// CheckGauges checks the scrape-time gauges of r, registered on g, against
// what r holds: domicile_accounts of each data center against
// [residency.Router.Accounts], domicile_moves_open against
// [residency.Router.Moves]; at names the moment in its failures.
func CheckGauges(t testing.TB, r *residency.Router, g prometheus.Gatherer, at string) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("%s: Gather: %v", at, err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "domicile_accounts":
			for _, m := range mf.GetMetric() {
				var dc string
				for _, l := range m.GetLabel() {
					if l.GetName() == "datacenter" {
						dc = l.GetValue()
					}
				}
				n := 0
				for range r.Accounts(dc) {
					n++
				}
				if got := m.GetGauge().GetValue(); got != float64(n) {
					t.Fatalf("%s: domicile_accounts{datacenter=%q} = %v, Accounts(%s) yields %d", at, dc, got, dc, n)
				}
			}
		case "domicile_moves_open":
			n := 0
			for range r.Moves() {
				n++
			}
			if got := mf.GetMetric()[0].GetGauge().GetValue(); got != float64(n) {
				t.Fatalf("%s: domicile_moves_open = %v, Moves yields %d", at, got, n)
			}
		}
	}
}
