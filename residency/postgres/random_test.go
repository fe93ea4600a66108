package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// chaosErrors are the errors a write may end with while the database's
// connections are being terminated: refusals of the request, and the
// store's failures. Any other error (one that matches no sentinel) fails
// the test.
var chaosErrors = []error{
	residency.ErrNotFound, residency.ErrInvalidAccount, residency.ErrCrossRegion,
	residency.ErrUnknownDataCenter, residency.ErrNoDataCenter, residency.ErrMoveInProgress,
	residency.ErrConflict, residency.ErrInvalidTransfer, residency.ErrInvalidReason,
	residency.ErrNotFenced, residency.ErrStoreFailed, residency.ErrUnavailable,
	residency.ErrStale, region.ErrInvalidCountry,
}

// TestRandomChaos runs random writes (placements, moves, drains, transfer
// agreements, deletions) from three goroutines on each of two Routers
// sharing a database, on a small pool of accounts, and reads that go to
// the database (History, Checkpoint, LogEntries), while all the
// database's connections are terminated every few tens of milliseconds, as
// a restart or a failover does. Every error must be one of chaosErrors;
// a CompleteMove that returns without error must be seen by the other
// Router. Once the chaos stops, after one write on each Router has
// succeeded (which reads back every outcome left unknown) and Sync, both
// Routers and one opened afresh must hold the same state, Verify must be
// clean, and the audit log must hold, account by account, exactly the
// trails History gives. DOMICILE_RANDOM_SEED picks the seed (default 1),
// DOMICILE_RANDOM_CHAOS the duration (default 2s).
func TestRandomChaos(t *testing.T) {
	ctx := context.Background()
	seed := uint64(1)
	if s := os.Getenv("DOMICILE_RANDOM_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	duration := 2 * time.Second
	if s := os.Getenv("DOMICILE_RANDOM_CHAOS"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		duration = d
	}
	dsn := pgtest.Database(t)
	admin := pgtest.AdminDSN(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ropts := []residency.Option{residency.WithWriteTimeout(3 * time.Second)}
	regs := map[*residency.Router]*prometheus.Registry{}
	metered := func() *residency.Router {
		reg := prometheus.NewPedanticRegistry()
		r := routertest.OnPostgres(t, dsn, append(slices.Clone(ropts), residency.WithRegisterer(reg)))
		regs[r] = reg
		return r
	}
	routers := []*residency.Router{metered(), metered()}
	ids := []string{"a", "b", "c", "d", "e", "f"}
	dcs := []string{"linode-eu", "websupport-eu", "aws-eu-west-1", "linode-us", "aws-us-west-1", "linode-uk", "nowhere"}
	countries := []string{"DE", "FR", "US", "GB", "ZZ"}

	var stop atomic.Bool
	var mu sync.Mutex
	var done []string
	counts := map[string]int{}
	var readErrors []string
	defer func() {
		if t.Failed() {
			t.Logf("seed %d; the last operations as they returned:\n%s", seed, strings.Join(done[max(0, len(done)-200):], "\n"))
		}
	}()
	var wg sync.WaitGroup
	wg.Go(func() { // the chaos
		rng := rand.New(rand.NewPCG(seed, 0xc4a05))
		for !stop.Load() {
			time.Sleep(time.Duration(20+rng.IntN(60)) * time.Millisecond)
			conn, err := pgx.Connect(ctx, admin)
			if err != nil {
				t.Errorf("connecting as admin: %v", err)
				return
			}
			_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", cfg.Database)
			conn.Close(ctx)
			if err != nil {
				t.Errorf("terminating: %v", err)
				return
			}
			mu.Lock()
			counts["terminations"]++
			mu.Unlock()
		}
	})
	for w := range 6 {
		r, other := routers[w%2], routers[(w+1)%2]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for !stop.Load() {
				id := ids[rng.IntN(len(ids))]
				var what string
				var err error
				var moved residency.Placement
				switch k := rng.IntN(12); {
				case k < 3:
					what = "place " + id
					_, err = r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: countries[rng.IntN(len(countries))]})
				case k < 5:
					to := dcs[rng.IntN(len(dcs))]
					what = "begin " + id + " " + to
					_, err = r.BeginMove(ctx, id, to)
				case k < 7:
					var open []residency.Move
					for m := range r.Moves() {
						open = append(open, m)
					}
					if len(open) == 0 {
						continue
					}
					m := open[rng.IntN(len(open))]
					if rng.IntN(3) > 0 {
						what = "complete " + m.AccountID + " " + m.To
						moved, err = r.CompleteMove(ctx, m.ID)
					} else {
						what = "abort " + m.AccountID
						_, err = r.AbortMove(ctx, m.ID)
					}
				case k < 8:
					dc := dcs[rng.IntN(len(dcs))]
					if rng.IntN(2) == 0 {
						what = "drain " + dc
						err = r.Drain(ctx, dc)
					} else {
						what = "activate " + dc
						err = r.Activate(ctx, dc)
					}
				case k < 9:
					ref := fmt.Sprint("T", rng.IntN(3))
					if rng.IntN(2) == 0 {
						what = "grant " + id + " " + ref
						err = r.GrantTransfer(ctx, residency.Transfer{AccountID: id, To: region.All()[rng.IntN(4)], Reference: ref})
					} else {
						what = "revoke " + id + " " + ref
						err = r.RevokeTransfer(ctx, id, ref)
					}
				case k < 10:
					what = "delete " + id
					err = r.Delete(ctx, id, "left")
				default:
					// Reads that go to the database.
					switch rng.IntN(3) {
					case 0:
						what = "history " + id
						_, err = r.History(ctx, id)
						if errors.Is(err, residency.ErrNotFound) {
							err = nil
						}
					case 1:
						what = "checkpoint"
						_, err = r.Checkpoint(ctx)
					default:
						what = "entries"
						err = r.LogEntries(ctx, int64(rng.IntN(50)), func(int64, []byte) error { return nil })
					}
					if err != nil && !errors.Is(err, residency.ErrUnavailable) {
						// A read retried and cut again says so, as a write does.
						t.Errorf("r%d g%d %s: %v", w%2, w, what, err)
					}
					if err != nil {
						mu.Lock()
						counts["read errors"]++
						readErrors = append(readErrors, fmt.Sprintf("%s: %v", what, err))
						mu.Unlock()
						err = nil
					}
				}
				mu.Lock()
				done = append(done, fmt.Sprintf("r%d g%d %s -> %v", w%2, w, what, err))
				kind, _, _ := strings.Cut(what, " ")
				if err == nil {
					counts[kind+" ok"]++
				} else if errors.Is(err, residency.ErrUnavailable) || errors.Is(err, residency.ErrStoreFailed) {
					counts[kind+" failed"]++
				}
				mu.Unlock()
				if err != nil && !matchesAny(err, chaosErrors) {
					t.Errorf("r%d g%d %s: %v, which matches none of the sentinels", w%2, w, what, err)
				}
				if kind == "complete" && err == nil {
					q, err := other.Lookup(moved.AccountID)
					if err == nil && q.Version < moved.Version || err != nil && !errors.Is(err, residency.ErrNotFound) {
						t.Errorf("r%d g%d %s returned version %d, but the other Router answers %+v, %v", w%2, w, what, moved.Version, q, err)
					}
				}
			}
		})
	}
	time.Sleep(duration)
	stop.Store(true)
	wg.Wait()
	t.Logf("seed %d: %v", seed, counts)
	for _, e := range readErrors[:min(len(readErrors), 10)] {
		t.Logf("read error: %s", e)
	}

	// One write on each Router reads back what it did not know.
	for i, r := range routers {
		deadline := time.Now().Add(30 * time.Second)
		for {
			r.Activate(ctx, "linode-uk") // may fail while the Router reads back
			if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("heal-", i), Region: region.UK}); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("Router %d: writes still fail after the chaos: %v", i, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fresh := metered()
	var want routertest.State
	for i, r := range append(routers, fresh) {
		if err := r.Sync(ctx); err != nil {
			t.Fatalf("Router %d: Sync: %v", i, err)
		}
		got := routertest.Of(t, r)
		// The gauges, kept as changes apply (this Router's and the
		// others'), against the accounts.
		routertest.CheckGauges(t, r, regs[r], fmt.Sprintf("Router %d", i))
		if i == 0 {
			want = got
		} else if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Router %d differs from Router 0 after the chaos (-0 +%d):\n%s", i, i, diff)
		}
		rep, err := r.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rep.Violations {
			if !strings.Contains(f.Problem, "without a live transfer agreement (its agreement") { // revoked under an open move: documented
				t.Errorf("Router %d: Verify: %+v", i, f)
			}
		}
	}
	// The log holds exactly the trails.
	trails := map[string][]residency.Event{}
	err = fresh.LogEntries(ctx, 0, func(_ int64, e []byte) error {
		c, err := residency.DecodeEntry(e)
		if err != nil {
			return err
		}
		if c.DataCenter == nil {
			trails[c.Event.AccountID] = append(trails[c.Event.AccountID], c.Event)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range append(ids, "heal-0", "heal-1") {
		h, err := fresh.History(ctx, id)
		if errors.Is(err, residency.ErrNotFound) && trails[id] == nil {
			continue
		}
		if err != nil {
			t.Fatalf("History(%s): %v", id, err)
		}
		if diff := cmp.Diff(trails[id], h); diff != "" {
			t.Errorf("History(%s) differs from its log entries (-log +History):\n%s", id, diff)
		}
	}
}

func matchesAny(err error, targets []error) bool {
	for _, e := range targets {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
