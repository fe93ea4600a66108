package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
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
// (domicile_store_errors_total), while the other's say healthy.
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

// TestMetricsCountFailedWrites: writes that fail for the store, not for
// their input, are counted by why (domicile_write_errors_total{error}):
// the database refusing them (its role lost INSERT on the changes log:
// ErrStoreFailed), the database not answering (a proxy between stops
// forwarding: ErrUnavailable, the outcome unknown at the write's
// deadline), the Router's lease run out meanwhile (ErrStale).
func TestMetricsCountFailedWrites(t *testing.T) {
	ctx := context.Background()
	db := createdDatabase(t)
	app := loginRole(t, db, "GRANT USAGE ON SCHEMA domicile TO %[1]s",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA domicile TO %[1]s")
	pool, proxy := proxiedPool(t, app, nil)
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool), postgres.WithLease(time.Second), postgres.WithPollInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	// A short write timeout: the calls the stalled database holds end
	// with it, and with them the test.
	r, err := residency.Open(ctx, residency.WithStore(s), residency.WithRegisterer(reg), residency.WithWriteTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() }) // before the proxy lets the stalled connections go
	in := instance{r, reg}
	lint(t, in.reg)
	failures := func() map[string]float64 {
		got := map[string]float64{}
		for _, e := range []string{"store_failed", "unavailable", "stale"} {
			got[e] = mustMetric(t, in.reg, "domicile_write_errors_total", "error", e)
		}
		return got
	}
	want := map[string]float64{"store_failed": 0, "unavailable": 0, "stale": 0}
	if _, err := in.r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	// A write refused for its input is a refusal, not a failure.
	if _, err := in.r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "US"}); !errors.Is(err, residency.ErrConflict) {
		t.Fatalf("Place in another region = %v, want ErrConflict", err)
	}
	if diff := cmp.Diff(want, failures()); diff != "" {
		t.Errorf("after writes that succeeded or were refused (-want +got):\n%s", diff)
	}

	role := roleOf(t, app)
	exec(t, db, "REVOKE INSERT ON ALL TABLES IN SCHEMA domicile FROM "+role)
	if _, err := in.r.Place(ctx, residency.PlaceRequest{AccountID: "globex", Country: "DE"}); !errors.Is(err, residency.ErrStoreFailed) {
		t.Fatalf("Place with INSERT revoked = %v, want ErrStoreFailed", err)
	}
	want["store_failed"]++
	if diff := cmp.Diff(want, failures()); diff != "" {
		t.Errorf("after a write the database refused (-want +got):\n%s", diff)
	}
	exec(t, db, "GRANT INSERT ON ALL TABLES IN SCHEMA domicile TO "+role)

	proxy.Stall()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = in.r.BeginMove(wctx, "acme", "websupport-eu")
	cancel()
	if !errors.Is(err, residency.ErrUnavailable) {
		t.Fatalf("BeginMove on a database that does not answer = %v, want ErrUnavailable", err)
	}
	want["unavailable"]++
	if diff := cmp.Diff(want, failures()); diff != "" {
		t.Errorf("after a write the database did not answer (-want +got):\n%s", diff)
	}
	eventually(t, "the cut-off Router says ErrStale", func() error {
		if _, err := in.r.Lookup("acme"); !errors.Is(err, residency.ErrStale) {
			return fmt.Errorf("Lookup = %v", err)
		}
		return nil
	})
	if _, err := in.r.Place(ctx, residency.PlaceRequest{AccountID: "initech", Country: "DE"}); !errors.Is(err, residency.ErrStale) {
		t.Fatalf("Place on a stale Router = %v, want ErrStale", err)
	}
	want["stale"]++
	if diff := cmp.Diff(want, failures()); diff != "" {
		t.Errorf("after a write on a stale Router (-want +got):\n%s", diff)
	}
	lint(t, in.reg)
}

// roleOf returns the user name of the connection string dsn.
func roleOf(t testing.TB, dsn string) string {
	t.Helper()
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return c.User
}

// TestMetricsShowFenceWaits: a fence (CompleteMove here, Delete for the
// second case) that waits shows while it waits (domicile_fences_waiting),
// and once it ends, how long it took (domicile_fence_wait_seconds) and
// whether it held (domicile_fences_total{outcome}).
func TestMetricsShowFenceWaits(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const lease = 2 * time.Second
	a := newInstance(t, dsn, postgres.WithLease(lease), postgres.WithPollInterval(100*time.Millisecond))
	lint(t, a.reg)
	type fences struct {
		Waiting, Fenced, NotFenced float64
		Waits                      float64 // domicile_fence_wait_seconds' count
	}
	fencesOf := func() fences {
		return fences{
			Waiting:   mustMetric(t, a.reg, "domicile_fences_waiting"),
			Fenced:    mustMetric(t, a.reg, "domicile_fences_total", "outcome", "fenced"),
			NotFenced: mustMetric(t, a.reg, "domicile_fences_total", "outcome", "not_fenced"),
			Waits:     mustMetric(t, a.reg, "domicile_fence_wait_seconds"),
		}
	}
	for _, id := range []string{"acme", "globex"} {
		if _, err := a.r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(fences{}, fencesOf()); diff != "" {
		t.Errorf("before any fence (-want +got):\n%s", diff)
	}

	// An instance cut off from the database: the fence waits for its
	// lease to end.
	name := role(t, dsn)
	b := newInstance(t, withUser(dsn, name), postgres.WithLease(lease), postgres.WithPollInterval(100*time.Millisecond))
	p, err := a.r.Lookup("acme")
	if err != nil {
		t.Fatal(err)
	}
	to := "linode-eu"
	if p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	m, err := a.r.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cut(t, name)
	completed := make(chan error, 1)
	go func() {
		_, err := a.r.CompleteMove(ctx, m.ID)
		completed <- err
	}()
	eventually(t, "the metrics show the fence waiting", func() error {
		if got := fencesOf(); got.Waiting != 1 {
			return fmt.Errorf("%+v", got)
		}
		return nil
	})
	if err := <-completed; err != nil {
		t.Fatalf("CompleteMove: %v", err)
	}
	if diff := cmp.Diff(fences{Fenced: 1, Waits: 1}, fencesOf()); diff != "" {
		t.Errorf("after a CompleteMove that waited out a cut-off instance (-want +got):\n%s", diff)
	}

	// An instance cut off with a lease of an hour: the fence gives up at
	// the context's end.
	name = role(t, dsn)
	c := newInstance(t, withUser(dsn, name), postgres.WithLease(time.Hour))
	if err := c.r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cut(t, name)
	unfenced(t, func(ctx context.Context) error { return a.r.Delete(ctx, "globex", "customer left") })
	if diff := cmp.Diff(fences{Fenced: 1, NotFenced: 1, Waits: 2}, fencesOf()); diff != "" {
		t.Errorf("after a Delete whose fence gave up (-want +got):\n%s", diff)
	}
	lint(t, a.reg)
}

// TestNotFencedNamesTheRouterBehind: a fence that gives up says which
// Router held it up: its member's name (host and process ID), ID, how far
// it applied the log and when its lease ends, as postgres.Store.Members
// lists them.
func TestNotFencedNamesTheRouterBehind(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a := routertest.OnPostgres(t, dsn, nil)
	if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	name := role(t, dsn)
	c := routertest.OnPostgres(t, withUser(dsn, name), nil, postgres.WithLease(time.Hour))
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cut(t, name)
	members, err := openStore(t, dsn).Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var behind postgres.MemberState
	for _, m := range members {
		if time.Until(m.Expires) > 30*time.Minute {
			behind = m
		}
	}
	if behind.ID == "" {
		t.Fatalf("no member with a lease of an hour among %+v", members)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = a.Delete(wctx, "acme", "customer left")
	if !errors.Is(err, residency.ErrNotFenced) {
		t.Fatalf("Delete with a Router cut off = %v, want ErrNotFenced", err)
	}
	for _, want := range []string{behind.Name, behind.ID, fmt.Sprintf("applied %d", behind.Applied), "lease ends in 59m"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ErrNotFenced does not say %q of the Router behind:\n%v", want, err)
		}
	}
}
