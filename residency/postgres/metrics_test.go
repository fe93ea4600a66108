package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The tests of what an operator on call reads from the metrics of
// Routers on one database (from an SRE's trial before taking the pager):
// which instance is stale, how far behind, which writes fail and which
// fences wait.

// metric returns the value of the gauge or counter name, with labels
// (name, value pairs) among its labels, that g gathers, and whether g has
// it.
func metric(t testing.TB, g prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// mustMetric is metric for one that must be there.
func mustMetric(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, ok := metric(t, g, name, labels...)
	if !ok {
		t.Fatalf("no metric %s%v gathered", name, labels)
	}
	return v
}

// lint fails the test when the metrics g gathers have problems.
func lint(t testing.TB, g prometheus.Gatherer) {
	t.Helper()
	problems, err := testutil.GatherAndLint(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

// instance is a Router on the test's database, with its own registry.
type instance struct {
	r   *residency.Router
	reg *prometheus.Registry
}

func newInstance(t *testing.T, dsn string, opts ...postgres.Option) instance {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	r := routertest.OnPostgres(t, dsn, []residency.Option{residency.WithRegisterer(reg)}, opts...)
	return instance{r, reg}
}

// health is what the metrics say of a Router's hold on the shared store.
type health struct {
	Stale        float64
	LeaseRunning bool // domicile_lease_remaining_seconds > 0
	Applied      float64
}

func healthOf(t testing.TB, in instance) health {
	t.Helper()
	return health{
		Stale:        mustMetric(t, in.reg, "domicile_stale"),
		LeaseRunning: mustMetric(t, in.reg, "domicile_lease_remaining_seconds") > 0,
		Applied:      mustMetric(t, in.reg, "domicile_log_applied_position"),
	}
}

// TestMetricsTellWhichRouterIsStale: one instance of two is cut off from
// the database (its role may no longer log in, its connections are
// ended). Its Lookup says ErrStale; its metrics say so too
// (domicile_stale 1, its lease over), how far behind it is (its
// domicile_log_applied_position against the other's), and why
// (domicile_store_errors_total), while the other's say healthy. Before,
// nothing in either Router's metrics changed: an operator saw an
// instance answering 503s with every gauge as before.
func TestMetricsTellWhichRouterIsStale(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const lease = 2 * time.Second
	opts := []postgres.Option{postgres.WithLease(lease), postgres.WithPollInterval(100 * time.Millisecond)}
	a := newInstance(t, dsn, opts...)
	name := role(t, dsn)
	b := newInstance(t, withUser(dsn, name), opts...)
	lint(t, b.reg)
	for _, id := range []string{"acme", "globex"} {
		if _, err := a.r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(healthOf(t, a), healthOf(t, b)); diff != "" {
		t.Errorf("two healthy Routers' metrics differ (-A +B):\n%s", diff)
	}
	want := health{Stale: 0, LeaseRunning: true, Applied: 2}
	if diff := cmp.Diff(want, healthOf(t, b)); diff != "" {
		t.Errorf("a healthy Router's metrics (-want +got):\n%s", diff)
	}
	if got := mustMetric(t, b.reg, "domicile_store_errors_total", "operation", "follow"); got != 0 {
		t.Errorf("domicile_store_errors_total{operation=follow} of a healthy Router = %v, want 0", got)
	}

	cut(t, name)
	if _, err := a.r.Place(ctx, residency.PlaceRequest{AccountID: "initech", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cut-off Router says ErrStale", func() error {
		if _, err := b.r.Lookup("acme"); !errors.Is(err, residency.ErrStale) {
			return fmt.Errorf("Lookup = %v", err)
		}
		return nil
	})
	if diff := cmp.Diff(health{Stale: 0, LeaseRunning: true, Applied: 3}, healthOf(t, a)); diff != "" {
		t.Errorf("the Router still in touch, metrics (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(health{Stale: 1, LeaseRunning: false, Applied: 2}, healthOf(t, b)); diff != "" {
		t.Errorf("the cut-off Router, metrics (-want +got):\n%s", diff)
	}
	var failures float64
	for _, op := range []string{"follow", "renew", "join", "head"} {
		failures += mustMetric(t, b.reg, "domicile_store_errors_total", "operation", op)
	}
	if failures == 0 {
		t.Error("domicile_store_errors_total of the cut-off Router = 0 for every operation, want its failed calls counted")
	}
	lint(t, b.reg)

	exec(t, pgtest.AdminDSN(t), "ALTER ROLE "+name+" LOGIN")
	eventually(t, "the Router's metrics say it caught up", func() error {
		if diff := cmp.Diff(health{Stale: 0, LeaseRunning: true, Applied: 3}, healthOf(t, b)); diff != "" {
			return fmt.Errorf("metrics (-want +got):\n%s", diff)
		}
		return nil
	})
	if _, err := b.r.Lookup("initech"); err != nil {
		t.Errorf("Lookup once the metrics say caught up: %v", err)
	}
}
