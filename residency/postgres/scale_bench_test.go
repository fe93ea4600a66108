package postgres_test

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// pct returns the q-th percentile (0-100) of xs, in milliseconds.
func pct(xs []time.Duration, q int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := (len(s)*q + 99) / 100
	i = min(max(i-1, 0), len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// dbStat reads one number from dsn's server.
func dbStat(b *testing.B, dsn, sql string, args ...any) float64 {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var v float64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
	return v
}

// dbName returns the name of the database of dsn.
func dbName(b *testing.B, dsn string) string {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		b.Fatal(err)
	}
	return db
}

// xactCounter returns a function that reads how many transactions
// database db has ended so far (committed or rolled back), through the
// connection string admin.
func xactCounter(b *testing.B, admin, db string) func() float64 {
	return func() float64 {
		return dbStat(b, admin, "SELECT (xact_commit + xact_rollback)::float8 FROM pg_stat_database WHERE datname = $1", db)
	}
}

// BenchmarkScaleFence: latency of the fenced calls (CompleteMove, Drain,
// RevokeAccess, Delete) made on one Router, with 1 or 20 Routers live on
// the database, and with 20 while each of the others places accounts all
// along. Each iteration makes each call once; the metrics are the p50 and
// p99 of each, in ms. Run with -benchtime=40x, say.
func BenchmarkScaleFence(b *testing.B) {
	for _, c := range []struct {
		name    string
		routers int
		busy    bool
	}{{"routers=1", 1, false}, {"routers=20", 20, false}, {"routers=20/busy", 20, true}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			dsn := pgtest.Database(b)
			rs, _ := openMany(b, dsn, c.routers)
			r := rs[0]
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var placed atomic.Int64
			if c.busy {
				for j, o := range rs[1:] {
					wg.Go(func() {
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							if _, err := o.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprintf("busy-%d-%d", j, i), Country: "US"}); err == nil {
								placed.Add(1)
							}
							time.Sleep(20 * time.Millisecond)
						}
					})
				}
			}
			lat := map[string][]time.Duration{}
			timed := func(name string, f func() error) {
				start := time.Now()
				if err := f(); err != nil {
					b.Fatalf("%s: %v", name, err)
				}
				lat[name] = append(lat[name], time.Since(start))
			}
			b.ReportAllocs()
			b.ResetTimer()
			begun := time.Now()
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprint("acct-", i)
				_, to := placeAndMoveTarget(b, r, id)
				m, err := r.BeginMove(ctx, id, to)
				if err != nil {
					b.Fatal(err)
				}
				timed("CompleteMove", func() error { _, err := r.CompleteMove(ctx, m.ID); return err })
				timed("Drain", func() error { return r.Drain(ctx, "websupport-eu") })
				if err := r.Activate(ctx, "websupport-eu"); err != nil {
					b.Fatal(err)
				}
				ref := fmt.Sprint("TICKET-", i)
				if err := r.GrantAccess(ctx, residency.Consent{AccountID: id, SubProcessor: "support-247", Reference: ref}); err != nil {
					b.Fatal(err)
				}
				timed("RevokeAccess", func() error { return r.RevokeAccess(ctx, id, ref) })
				timed("Delete", func() error { return r.Delete(ctx, id, "left") })
			}
			b.StopTimer()
			elapsed := time.Since(begun)
			close(stop)
			wg.Wait()
			for _, name := range []string{"CompleteMove", "Drain", "RevokeAccess", "Delete"} {
				b.ReportMetric(pct(lat[name], 50), name+"-p50-ms")
				b.ReportMetric(pct(lat[name], 99), name+"-p99-ms")
			}
			if c.busy {
				b.ReportMetric(float64(placed.Load())/elapsed.Seconds(), "busy-places/s")
			}
		})
	}
}

// BenchmarkScaleIdleLoad: what Routers doing nothing cost the database:
// transactions per second (pg_stat_database's xact_commit and
// xact_rollback of the database, every statement of the store being a
// transaction of its own) and connections (pg_stat_activity) over 10 s, with
// 1 and with 20 Routers at the default lease and poll interval.
func BenchmarkScaleIdleLoad(b *testing.B) {
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprint("routers=", n), func(b *testing.B) {
			dsn := pgtest.Database(b)
			admin := pgtest.AdminDSN(b)
			openMany(b, dsn, n)
			db := dbName(b, dsn)
			xacts := xactCounter(b, admin, db)
			b.ReportAllocs()
			const window = 10 * time.Second
			var rate, conns float64
			for b.Loop() {
				time.Sleep(2 * time.Second)
				before := xacts()
				time.Sleep(window)
				// Two of the counted transactions are this
				// benchmark's own reads.
				rate = (xacts() - before - 2) / window.Seconds()
				conns = dbStat(b, admin, "SELECT count(*)::float8 FROM pg_stat_activity WHERE datname = $1", db)
			}
			b.ReportMetric(rate, "xacts/s")
			b.ReportMetric(rate/float64(n), "xacts/s/router")
			b.ReportMetric(conns, "connections")
		})
	}
}

// BenchmarkScaleStorm: forty writers spread over 2 or 20 Routers, placing accounts
// as fast as they can for 5 s; for each write, the next Router is watched
// until it sees it without Sync (the lag, p50 and p99 in ms), and the
// server's pg_notification_queue_usage is sampled every 50 ms (its
// maximum, as a fraction).
func BenchmarkScaleStorm(b *testing.B) {
	// The same forty writers on 2 Routers, and on 20: what the number
	// of Routers costs.
	// And the forty writers on 2 Routers while 18 more only follow:
	// what followers cost, with writes batched as on 2.
	for _, c := range []struct{ routers, writing int }{{2, 2}, {20, 20}, {20, 2}} {
		b.Run(fmt.Sprintf("routers=%d/writing=%d", c.routers, c.writing), func(b *testing.B) { storm(b, c.routers, c.writing, 40/c.writing) })
	}
}

// storm runs perRouter writers on each of the first writing of n Routers.
func storm(b *testing.B, n, writing, perRouter int) {
	ctx := context.Background()
	dsn := pgtest.Database(b)
	admin := pgtest.AdminDSN(b)
	rs, _ := openMany(b, dsn, n)
	b.ReportAllocs()
	var (
		mu     sync.Mutex
		lags   []time.Duration
		writes atomic.Int64
		errs   atomic.Int64
		queue  float64
		conns  float64 // the most connections to the database seen at once
	)
	db := dbName(b, dsn)
	xacts := xactCounter(b, admin, db)
	renewals := func() float64 {
		return dbStat(b, dsn, "SELECT n_tup_upd::float8 FROM pg_stat_user_tables WHERE schemaname = 'domicile' AND relname = 'members'")
	}
	for b.Loop() {
		time.Sleep(1500 * time.Millisecond) // the stats of opening flushed
		x0, m0, w0 := xacts(), renewals(), writes.Load()
		stop := make(chan struct{})
		var wg, watchers sync.WaitGroup
		wg.Go(func() {
			conn, err := pgx.Connect(ctx, admin)
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close(ctx)
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				var u, c float64
				if err := conn.QueryRow(ctx, "SELECT pg_notification_queue_usage(), (SELECT count(*)::float8 FROM pg_stat_activity WHERE datname = $1)", db).Scan(&u, &c); err == nil {
					mu.Lock()
					queue = max(queue, u)
					conns = max(conns, c)
					mu.Unlock()
				}
			}
		})
		begun := time.Now()
		for j, r := range rs[:writing] {
			for w := range perRouter {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						id := fmt.Sprintf("s-%d-%d-%d", j, w, i)
						if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: fillCountries[i%len(fillCountries)]}); err != nil {
							errs.Add(1)
							continue
						}
						acked := time.Now()
						writes.Add(1)
						other := rs[(j+1)%len(rs)]
						watchers.Go(func() {
							for {
								if _, err := other.Lookup(id); err == nil {
									mu.Lock()
									lags = append(lags, time.Since(acked))
									mu.Unlock()
									return
								}
								if time.Since(acked) > time.Minute {
									return
								}
								time.Sleep(time.Millisecond)
							}
						})
					}
				})
			}
		}
		time.Sleep(5 * time.Second)
		close(stop)
		wg.Wait()
		watchers.Wait()
		elapsed := time.Since(begun)
		time.Sleep(1500 * time.Millisecond) // the stats flushed
		w := float64(writes.Load() - w0)
		b.ReportMetric(w/elapsed.Seconds(), "writes/s")
		b.ReportMetric((xacts()-x0)/w, "xacts/write")
		b.ReportMetric((renewals()-m0)/w, "lease-updates/write")
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(pct(lags, 50), "lag-p50-ms")
	b.ReportMetric(pct(lags, 99), "lag-p99-ms")
	b.ReportMetric(float64(errs.Load()), "failed-writes")
	b.ReportMetric(queue, "max-queue-usage")
	b.ReportMetric(conns, "max-connections")
	_ = postgres.DefaultLease
}

// BenchmarkScaleOpenTwenty: twenty Routers opening at once, on an empty
// database and on one of 20,000 accounts (fill): the median and slowest
// Open (ms) and the live heap each Router adds (bytes, after GC).
func BenchmarkScaleOpenTwenty(b *testing.B) {
	for _, accounts := range []int{0, 20000} {
		b.Run(fmt.Sprint("accounts=", accounts), func(b *testing.B) {
			dsn := pgtest.Database(b)
			if accounts > 0 {
				fill(b, dsn, accounts)
			}
			b.ReportAllocs()
			var took []time.Duration
			var perRouter float64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				rs, t := openMany(b, dsn, 20)
				runtime.GC()
				runtime.ReadMemStats(&after)
				took = append(took, t...)
				perRouter = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(len(rs))
				for _, r := range rs {
					if _, err := r.Lookup(fillID(accounts / 2)); accounts > 0 && err != nil {
						b.Fatal(err)
					}
					r.Close()
				}
			}
			b.ReportMetric(pct(took, 50), "open-p50-ms")
			b.ReportMetric(pct(took, 100), "open-max-ms")
			b.ReportMetric(perRouter, "heap-B/router")
		})
	}
}

// countingTracer counts the statements its connections run, by their
// first line, squeezed.
type countingTracer struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	sql := strings.Join(strings.Fields(d.SQL), " ")
	if len(sql) > 60 {
		sql = sql[:60]
	}
	c.mu.Lock()
	c.n[sql]++
	c.mu.Unlock()
	return ctx
}

func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// BenchmarkScaleIdleStatements: the statements twenty idle Routers send,
// counted from the Go side (a pgx tracer on pools given with WithPool,
// which the Listeners' connections copy), per second for all twenty, by
// statement, over 10 s at the default lease and poll interval. Listener
// pings are not queries and are not counted.
func BenchmarkScaleIdleStatements(b *testing.B) {
	ctx := context.Background()
	dsn := pgtest.Database(b)
	tr := &countingTracer{n: map[string]int{}}
	for range 20 {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			b.Fatal(err)
		}
		cfg.ConnConfig.Tracer = tr
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		s, err := postgres.Open(ctx, "", postgres.WithPool(pool))
		if err != nil {
			b.Fatal(err)
		}
		r, err := residency.Open(ctx, residency.WithStore(s), residency.WithRegisterer(prometheus.NewRegistry()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close(); s.Close() })
	}
	b.ReportAllocs()
	const window = 10 * time.Second
	var counts map[string]int
	for b.Loop() {
		time.Sleep(2 * time.Second)
		tr.mu.Lock()
		before := maps.Clone(tr.n)
		tr.mu.Unlock()
		time.Sleep(window)
		tr.mu.Lock()
		counts = map[string]int{}
		for k, v := range tr.n {
			if d := v - before[k]; d > 0 {
				counts[k] = d
			}
		}
		tr.mu.Unlock()
	}
	total := 0
	for k, v := range counts {
		total += v
		b.Logf("%6.1f/s  %s", float64(v)/window.Seconds(), k)
	}
	b.ReportMetric(float64(total)/window.Seconds(), "statements/s")
}
