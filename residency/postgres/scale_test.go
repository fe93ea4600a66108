package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
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
// account it had applied, then resumed with SIGCONT; three rounds.
func stoppedInstance(t *testing.T, gomaxprocs int) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const lease = 2 * time.Second
	main := openScaleRouter(t, dsn, postgres.WithLease(lease))
	c := startChild(t, dsn, lease, gomaxprocs)
	for round := range 3 {
		id := fmt.Sprint("acme-", round)
		from, to := placeAndMoveTarget(t, main, id)
		if got := c.ask(t, "sync"); got != "ok" {
			t.Fatalf("child sync: %s", got)
		}
		if got := c.ask(t, "lookup %s", id); got != "dc "+from {
			t.Fatalf("child lookup: %s, want dc %s", got, from)
		}
		if got := c.ask(t, "watch %s %s", id, from); got != "ok" {
			t.Fatal(got)
		}
		time.Sleep(100 * time.Millisecond)
		c.signal(t, syscall.SIGSTOP)
		m, err := main.BeginMove(ctx, id, to)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := main.CompleteMove(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		t.Logf("round %d: CompleteMove with a stopped member took %v (lease %v)", round, took, lease)
		if took > lease+2*time.Second {
			t.Errorf("CompleteMove took %v with a stopped member; want at most about the lease, %v", took, lease)
		}
		resumed := time.Now().UnixNano()
		c.signal(t, syscall.SIGCONT)
		time.Sleep(500 * time.Millisecond)
		got := c.ask(t, "report %d", resumed)
		f := strings.Fields(got)
		if len(f) != 3 || f[0] != "old" {
			t.Fatalf("report: %q", got)
		}
		if n, _ := strconv.Atoi(f[1]); n > 0 {
			last, _ := strconv.ParseInt(f[2], 10, 64)
			t.Errorf("round %d: after SIGCONT, the resumed instance answered Lookup(%s) = %s (the source) %d times, the last %v after it was resumed, although CompleteMove to %s had returned before it was resumed: a fenced move's source answered after the fence", round, id, from, n, time.Duration(last-resumed), to)
		}
		eventually(t, "the resumed instance answers the target", func() error {
			if got := c.ask(t, "lookup %s", id); got != "dc "+to {
				return fmt.Errorf("%s", got)
			}
			return nil
		})
	}
}

// TestScaleStoppedInstanceAnswersNoSourceAfterFence: an instance stopped
// with SIGSTOP past its lease, while a CompleteMove elsewhere waits for it
// (at most its lease) and returns, must, once resumed (SIGCONT), answer
// Lookup with ErrStale or the target, never the source: the migration
// script may have deleted the source copy already (README: "One cut off
// from the database answers Lookup from memory until its lease ends, then
// with residency.ErrStale (never old state after a fenced move)").
//
// It fails now: for some microseconds to milliseconds after SIGCONT, the
// resumed Router answers the source, thousands of times in a tight loop of
// Lookups, with GOMAXPROCS 1 or 2. Lookup only loads the gate, which a
// time.AfterFunc timer sets at the local end of the lease (Router.renewed);
// after the process was stopped past that end, the overdue timer runs only
// when the scheduler gets to it, and until then Lookup answers from memory
// although the lease has ended by the Router's own clock. A GC pause, a
// starved CPU or a paused VM does the same. Expected: Lookup compares the
// lease's end with the monotonic clock itself (or an equivalent that does
// not wait for a timer goroutine).
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

// openTwenty opens n Routers on dsn at once, each as its own instance
// would, and returns them with how long each Open took.
func openMany(tb testing.TB, dsn string, n int, opts ...postgres.Option) ([]*residency.Router, []time.Duration) {
	tb.Helper()
	ctx := context.Background()
	rs := make([]*residency.Router, n)
	took := make([]time.Duration, n)
	errs := make([]error, n)
	ss := make([]*postgres.Store, n)
	var wg sync.WaitGroup
	for i := range rs {
		wg.Go(func() {
			start := time.Now()
			s, err := postgres.Open(ctx, dsn, opts...)
			if err != nil {
				errs[i] = fmt.Errorf("postgres.Open: %w", err)
				return
			}
			ss[i] = s
			rs[i], errs[i] = residency.Open(ctx, residency.WithStore(s), residency.WithRegisterer(prometheus.NewRegistry()))
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	tb.Cleanup(func() {
		for i := range rs {
			if rs[i] != nil {
				rs[i].Close()
			}
			if ss[i] != nil {
				ss[i].Close()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("Router %d of %d: %v", i, n, err)
		}
	}
	return rs, took
}

// TestScaleTwentyRoutersConverge: twenty instances open at once on an
// empty database; writes spread over all twenty; every Router sees every
// change without Sync, in commit order (a Router that sees an account
// placed after another was acknowledged sees that other too); afterwards
// every Router equals a freshly opened one and Verify is clean.
func TestScaleTwentyRoutersConverge(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	rs, _ := openMany(t, dsn, 20, postgres.WithPollInterval(200*time.Millisecond))

	// Commit order: seq-0, seq-1, ... are placed one after another, each
	// once the one before was acknowledged, each through another Router;
	// watchers on every Router check that seeing seq-k means seeing all
	// before it.
	const seqN = 60
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var disorder []string
	ownDisorder := 0
	for j, r := range rs {
		wg.Go(func() {
			seen := 0 // seq-0..seq-(seen-1) all seen
			for {
				select {
				case <-stop:
					return
				default:
				}
				for k := seqN - 1; k >= seen; k-- {
					if _, err := r.Lookup(fmt.Sprint("seq-", k)); err == nil {
						for i := seen; i < k; i++ {
							if _, err := r.Lookup(fmt.Sprint("seq-", i)); err != nil {
								mu.Lock()
								if k%len(rs) == j {
									// The writer of seq-k: see
									// TestScaleWriterSeesOwnWriteAtOnce.
									ownDisorder++
								} else {
									disorder = append(disorder, fmt.Sprintf("Router %d sees seq-%d but not seq-%d (%v)", j, k, i, err))
								}
								mu.Unlock()
							}
						}
						seen = k + 1
						break
					}
				}
				time.Sleep(200 * time.Microsecond)
			}
		})
	}
	// Meanwhile writers on every Router: places, moves begun and
	// completed or aborted, consents.
	var werrs []error
	var writers sync.WaitGroup
	for j, r := range rs {
		writers.Go(func() {
			for i := range 10 {
				id := fmt.Sprintf("w%d-%d", j, i)
				p, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: fillCountries[(i+j)%len(fillCountries)]})
				if err == nil && i%3 == 0 && p.Region == region.EU {
					to := "linode-eu"
					if p.DataCenter == to {
						to = "aws-eu-west-1"
					}
					var m residency.Move
					if m, err = r.BeginMove(ctx, id, to); err == nil {
						if i%2 == 0 {
							_, err = r.CompleteMove(ctx, m.ID)
						} else {
							_, err = r.AbortMove(ctx, m.ID)
						}
					}
				}
				if err != nil {
					mu.Lock()
					werrs = append(werrs, fmt.Errorf("%s: %w", id, err))
					mu.Unlock()
				}
			}
		})
	}
	for k := range seqN {
		if _, err := rs[k%len(rs)].Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("seq-", k), Country: "FR"}); err != nil {
			t.Fatal(err)
		}
	}
	writers.Wait()
	// Every Router sees every change by itself.
	fresh := openScaleRouter(t, dsn)
	want := stateOf(t, fresh)
	close(stop)
	wg.Wait()
	for _, err := range werrs {
		t.Errorf("write: %v", err)
	}
	for _, d := range disorder {
		t.Error(d)
	}
	t.Logf("writers that saw their own seq-k before an earlier seq: %d times", ownDisorder)
	// fresh was opened after every write returned.
	for j, r := range rs {
		eventually(t, fmt.Sprint("Router ", j, " equals a fresh one, without Sync"), func() error {
			if diff := cmp.Diff(want, stateOf(t, r)); diff != "" {
				return fmt.Errorf("differs (-fresh +router):\n%s", diff)
			}
			return nil
		})
		rep, err := r.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Violations) > 0 {
			t.Errorf("Router %d: Verify: %v", j, rep.Violations)
		}
	}
}

// TestScaleWriterSeesOwnWriteAtOnce: what README ("Many instances on one
// PostgreSQL database") says of a Router that writes: its own write is in
// its memory once the call returns, and what other Routers committed
// before it may follow a moment later, by the next read of the log; Sync
// waits for it. A trial found the writer of y answering y but not x,
// which another Router had placed and committed before, where the README
// said "in commit order" without that exception (in 37 to 47 rounds of
// 50): the README says so now. Reading the gap before making its own
// write visible would cost the write a round trip to the database
// whenever another instance wrote meanwhile.
func TestScaleWriterSeesOwnWriteAtOnce(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a, b := openScaleRouter(t, dsn), openScaleRouter(t, dsn)
	for i := range 50 {
		x, y := fmt.Sprint("x-", i), fmt.Sprint("y-", i)
		if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: x, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Place(ctx, residency.PlaceRequest{AccountID: y, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Lookup(y); err != nil {
			t.Fatalf("Lookup on b of y, which b placed: %v", err)
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Lookup(x); err != nil {
			t.Fatalf("Lookup on b, after Sync, of x, which a placed before: %v", err)
		}
	}
}

// TestScaleTwentyRoutersServerRestart: the server stops (fast, every
// connection ended) and starts again with twenty Routers live. During the
// outage, shorter than the lease, Lookup keeps answering on every Router
// and a write fails by its deadline with an error matching
// ErrUnavailable, or ErrStoreFailed when its connection was refused;
// after it, every Router writes again by itself, sees the
// others' writes without Sync, equals a freshly opened Router, and nothing
// is half-applied.
func TestScaleTwentyRoutersServerRestart(t *testing.T) {
	ctx := context.Background()
	srv := startOwnServer(t)
	const lease = 6 * time.Second
	rs, _ := openMany(t, srv.dsn(), 20, postgres.WithLease(lease), postgres.WithPollInterval(200*time.Millisecond))
	if _, err := rs[0].Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv.stop(t, "fast")
	down := time.Now()
	var wg sync.WaitGroup
	werrs := make([]error, len(rs))
	wtook := make([]time.Duration, len(rs))
	for j, r := range rs {
		wg.Go(func() {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			start := time.Now()
			_, werrs[j] = r.Place(wctx, residency.PlaceRequest{AccountID: fmt.Sprint("during-", j), Country: "FR"})
			wtook[j] = time.Since(start)
		})
	}
	wg.Wait()
	for j, r := range rs {
		if _, err := r.Lookup("acme"); err != nil && time.Since(down) < lease-time.Second {
			t.Errorf("Router %d during the outage (%v in): Lookup: %v", j, time.Since(down), err)
		}
		if werrs[j] == nil {
			t.Errorf("Router %d: a Place during the outage succeeded", j)
		} else if !errors.Is(werrs[j], residency.ErrUnavailable) && !errors.Is(werrs[j], residency.ErrStoreFailed) {
			t.Errorf("Router %d: Place during the outage: %v; want ErrUnavailable or ErrStoreFailed", j, werrs[j])
		}
		if wtook[j] > 3*time.Second {
			t.Errorf("Router %d: Place with a 1 s deadline took %v", j, wtook[j])
		}
	}
	t.Logf("writes during the outage: median %.0f ms; first error: %v", pct(wtook, 50), werrs[0])
	srv.start(t)
	up := time.Now()
	for j, r := range rs {
		eventually(t, fmt.Sprint("Router ", j, " writes after the restart"), func() error {
			_, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("after-", j), Country: "US"})
			return err
		})
	}
	t.Logf("every Router wrote again %v after the server was up", time.Since(up))
	fresh := openScaleRouter(t, srv.dsn())
	want := stateOf(t, fresh)
	for j, r := range rs {
		eventually(t, fmt.Sprint("Router ", j, " equals a fresh one"), func() error {
			if diff := cmp.Diff(want, stateOf(t, r)); diff != "" {
				return fmt.Errorf("differs (-fresh +router):\n%s", diff)
			}
			return nil
		})
		if _, err := r.Lookup("acme"); err != nil {
			t.Errorf("Router %d after the restart: %v", j, err)
		}
	}
	rep, err := fresh.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Violations) > 0 {
		t.Errorf("Verify: %v", rep.Violations)
	}
}

// TestScaleFenceWithOneOfTwentyCutOff: of twenty Routers, one is cut off
// from the database (its role may no longer log in, its connections are
// terminated): a fence waits for it at most about its lease, then
// proceeds; the next fence does not wait for it; and a Router of the
// twenty closed cleanly holds no fence up.
func TestScaleFenceWithOneOfTwentyCutOff(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const lease = 2 * time.Second
	opts := []postgres.Option{postgres.WithLease(lease), postgres.WithPollInterval(200 * time.Millisecond)}
	rs, _ := openMany(t, dsn, 18, opts...)
	name := role(t, dsn)
	victim := openScaleRouter(t, withUser(dsn, name), opts...)
	closing := openScaleRouter(t, dsn, opts...)
	mover := rs[0]
	move := func(id string) time.Duration {
		t.Helper()
		_, to := placeAndMoveTarget(t, mover, id)
		m, err := mover.BeginMove(ctx, id, to)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := mover.CompleteMove(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if d := move("warm"); d > lease/2 {
		t.Errorf("CompleteMove with twenty healthy Routers took %v", d)
	}
	if err := victim.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := closing.Close(); err != nil {
		t.Fatal(err)
	}
	if d := move("after-close"); d > lease/2 {
		t.Errorf("CompleteMove after one of the twenty closed cleanly took %v: it held the fence up", d)
	}
	cut(t, name)
	first := move("cut-1")
	second := move("cut-2")
	t.Logf("with one Router of twenty cut off (lease %v): CompleteMove %v, then %v", lease, first, second)
	if first > lease+2*time.Second {
		t.Errorf("CompleteMove with a cut-off Router took %v; want at most about its lease, %v", first, lease)
	}
	if second > lease/2 {
		t.Errorf("the next CompleteMove took %v: the cut-off Router, whose lease has ended, still holds fences up", second)
	}
	eventually(t, "the cut-off Router says ErrStale", func() error {
		if _, err := victim.Lookup("cut-2"); !errors.Is(err, residency.ErrStale) {
			return fmt.Errorf("Lookup = %v", err)
		}
		return nil
	})
	exec(t, pgtest.AdminDSN(t), "ALTER ROLE "+name+" LOGIN")
	eventually(t, "the cut-off Router catches up once let back in", func() error {
		_, err := victim.Lookup("cut-2")
		return err
	})
}

// TestScaleOpenWhileAnotherInstanceStoppedInSetup: an instance stopped
// (SIGSTOP: a paused VM or container, a debugger) in the middle of its
// postgres.Open holds up no other instance's Open of a current schema:
// setup reads a current schema without the schema's advisory lock, and
// locks only to create or upgrade the tables. Before, setup took the lock
// first, and the stopped instance kept it as long as its connection lived
// (until TCP keepalive gave up, hours by default): every other
// instance's Open waited for it, and a rolling start of twenty instances
// was held up by one paused pod (Open with a 10 s deadline ended with the
// deadline's error).
func TestScaleOpenWhileAnotherInstanceStoppedInSetup(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	openScaleRouter(t, dsn) // the schema exists, current
	c := launchChild(t, dsn, 0, 0, scaleChildStopInSetupEnv+"=1")
	eventually(t, "the child stops in its setup", func() error {
		if !c.stopped() {
			return errNotYet
		}
		return nil
	})
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	s, err := postgres.Open(octx, dsn)
	if err != nil {
		t.Fatalf("postgres.Open while another instance is stopped in its setup: %v after %v", err, time.Since(start))
	}
	s.Close()
}
