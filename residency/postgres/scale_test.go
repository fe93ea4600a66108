package postgres_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/prometheus/client_golang/prometheus"
)

// openScaleRouter opens one Router on dsn as an instance of the backend
// does: its own Store (pool), its own registry.
func openScaleRouter(tb testing.TB, dsn string, opts ...postgres.Option) *residency.Router {
	tb.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, opts...)
	if err != nil {
		tb.Fatalf("postgres.Open: %v", err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s), residency.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		s.Close()
		tb.Fatalf("residency.Open: %v", err)
	}
	tb.Cleanup(func() { r.Close(); s.Close() })
	return r
}

// stoppedInstance: one instance of the backend stopped with SIGSTOP (a
// paused VM, a stuck container) while another completes a move of an
// account it had applied, then resumed with SIGCONT.
func stoppedInstance(t *testing.T, gomaxprocs int) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const lease = 2 * time.Second
	main := openScaleRouter(t, dsn, postgres.WithLease(lease))
	c := startChild(t, dsn, lease, gomaxprocs)
	from, to := placeAndMoveTarget(t, main, "acme")
	if got := c.ask(t, "sync"); got != "ok" {
		t.Fatalf("child sync: %s", got)
	}
	if got := c.ask(t, "lookup acme"); got != "dc "+from {
		t.Fatalf("child lookup: %s, want dc %s", got, from)
	}
	if got := c.ask(t, "watch acme %s", from); got != "ok" {
		t.Fatal(got)
	}
	time.Sleep(100 * time.Millisecond)
	c.signal(t, syscall.SIGSTOP)
	m, err := main.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := main.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("CompleteMove with a stopped member took %v (lease %v)", took, lease)
	if took > lease+2*time.Second {
		t.Errorf("CompleteMove took %v with a stopped member; want at most about the lease, %v", took, lease)
	}
	resumed := time.Now().UnixNano()
	c.signal(t, syscall.SIGCONT)
	time.Sleep(time.Second)
	got := c.ask(t, "report %d", resumed)
	f := strings.Fields(got)
	if len(f) != 3 || f[0] != "old" {
		t.Fatalf("report: %q", got)
	}
	if n, _ := strconv.Atoi(f[1]); n > 0 {
		last, _ := strconv.ParseInt(f[2], 10, 64)
		t.Errorf("after SIGCONT, the resumed instance answered Lookup(acme) = %s (the source) %d times, the last %v after it was resumed, although CompleteMove to %s had returned %v before: a fenced move's source answered after the fence", from, n, time.Duration(last-resumed), to, time.Duration(resumed-start.UnixNano())-took)
	}
	eventually(t, "the resumed instance answers the target", func() error {
		if got := c.ask(t, "lookup acme"); got != "dc "+to {
			return fmt.Errorf("%s", got)
		}
		return nil
	})
}

// TestScaleStoppedInstanceAnswersNoSourceAfterFence: an instance stopped
// with SIGSTOP past its lease, while a CompleteMove elsewhere waits for it
// (at most its lease) and returns, must, once resumed (SIGCONT), answer
// Lookup with ErrStale or the target, never the source: the migration
// script may have deleted the source copy already (README: "never old state
// after a fenced move").
func TestScaleStoppedInstanceAnswersNoSourceAfterFence(t *testing.T) {
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprint("GOMAXPROCS=", procs), func(t *testing.T) { stoppedInstance(t, procs) })
	}
}

// TestScaleKilledInstance: an instance killed with SIGKILL holds a fence up
// until its lease ends, and no fence after that.
func TestScaleKilledInstance(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const lease = 2 * time.Second
	main := openScaleRouter(t, dsn, postgres.WithLease(lease))
	c := startChild(t, dsn, lease, 0)
	for i := range 2 {
		placeAndMoveTarget(t, main, fmt.Sprint("acct-", i))
	}
	if got := c.ask(t, "sync"); got != "ok" {
		t.Fatalf("child sync: %s", got)
	}
	c.signal(t, syscall.SIGKILL)
	killed := time.Now()
	var took [2]time.Duration
	for i := range 2 {
		id := fmt.Sprint("acct-", i)
		p, err := main.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		to := "linode-eu"
		if p.DataCenter == to {
			to = "aws-eu-west-1"
		}
		m, err := main.BeginMove(ctx, id, to)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := main.CompleteMove(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		took[i] = time.Since(start)
	}
	t.Logf("after SIGKILL: first CompleteMove %v (ended %v after the kill), second %v; lease %v", took[0], time.Since(killed)-took[1], took[1], lease)
	if took[0] > lease+2*time.Second {
		t.Errorf("first CompleteMove after the kill took %v; want at most about the lease %v", took[0], lease)
	}
	if took[1] > lease/2 {
		t.Errorf("second CompleteMove, after the killed instance's lease ended, took %v; want no wait for it", took[1])
	}
}
