package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BenchmarkRouterPlace is durable Place through a Router on PostgreSQL,
// from 1 and 16 callers, next to a bare autocommit INSERT per call in the
// same run; places/s is the rate.
func BenchmarkRouterPlace(b *testing.B) {
	ctx := context.Background()
	for _, callers := range []int{1, 16} {
		b.Run(fmt.Sprintf("impl=bare-insert/callers=%d", callers), func(b *testing.B) {
			pool, err := pgxpool.New(ctx, pgtest.Database(b))
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			if _, err := pool.Exec(ctx, "CREATE TABLE t (id text PRIMARY KEY, v text NOT NULL)"); err != nil {
				b.Fatal(err)
			}
			parallel(b, callers, "places/s", func(i int) error {
				_, err := pool.Exec(ctx, "INSERT INTO t (id, v) VALUES ($1, $2)", fmt.Sprint("acct-", i), "linode-eu")
				return err
			})
		})
		b.Run(fmt.Sprintf("impl=router/callers=%d", callers), func(b *testing.B) {
			r := routertest.OnPostgres(b, pgtest.Database(b), nil)
			parallel(b, callers, "places/s", placer(r))
		})
	}
}

// BenchmarkRouterPlacePaired measures the ratios of BenchmarkRouterPlace
// in pairs, as BenchmarkLogCost does, so that the machine's other work
// weighs on both sides of a ratio alike: each iteration is a round of
// three chunks, taken in an order that rotates every round: bare INSERTs
// from 1 caller, Places from 1 caller, Places from 16 callers (the Router
// and the table made once, before the rounds). It reports, over the rounds,
// the medians and quartiles of the rates' ratios: place/insert, a Place
// against a bare INSERT from 1 caller (the target is at least 0.5), and
// 16/1, the rate of 16 callers against 1 (at least 5); and each side's
// median rate. Run it with -benchtime 20x or more.
func BenchmarkRouterPlacePaired(b *testing.B) {
	ctx := context.Background()
	dsn := pgtest.Database(b)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE TABLE t (id text PRIMARY KEY, v text NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	r := routertest.OnPostgres(b, dsn, nil)
	var next atomic.Int64 // account and row numbers, never reused
	type side struct {
		callers, chunk int
		fn             func(i int) error
	}
	sides := []*side{
		{callers: 1, chunk: 300, fn: func(i int) error {
			_, err := pool.Exec(ctx, "INSERT INTO t (id, v) VALUES ($1, $2)", fmt.Sprint("acct-", i), "linode-eu")
			return err
		}},
		{callers: 1, chunk: 300},
		{callers: 16, chunk: 2000},
	}
	sides[1].fn, sides[2].fn = placer(r), placer(r)
	var runs []func() float64
	for _, s := range sides {
		runs = append(runs, func() float64 { return runChunk(b, s.callers, s.chunk, &next, s.fn) })
	}
	rates := rounds(b, runs...)
	reportSpread(b, "place/insert", ratios(rates[1], rates[0]))
	reportSpread(b, "16/1", ratios(rates[2], rates[1]))
	b.ReportMetric(median(rates[0]), "inserts/s")
	b.ReportMetric(median(rates[1]), "places/s")
	b.ReportMetric(median(rates[2]), "places16/s")
}

// rounds runs the chunks of runs (each returns its rate) once to warm up
// (connections, caches, group commit), then in rounds until b.Loop ends:
// each round runs every chunk once, in an order that rotates. It returns
// each chunk's rate in each round. Before each chunk it pauses 50 ms, so
// that what a chunk of Places leaves to do (the hashes of its last
// entries, stored about 10 ms after their commit) is done before the next
// starts, whichever it is: what a chunk of 300 ms leaves out of its time.
func rounds(b *testing.B, runs ...func() float64) [][]float64 {
	for _, run := range runs {
		run()
	}
	rates := make([][]float64, len(runs))
	b.ReportAllocs()
	b.ResetTimer()
	for round := 0; b.Loop(); round++ {
		for k := range runs {
			j := (round + k) % len(runs)
			time.Sleep(50 * time.Millisecond)
			rates[j] = append(rates[j], runs[j]())
		}
	}
	b.StopTimer()
	return rates
}

// ratios returns a[i]/b[i] for each round i.
func ratios(a, b []float64) []float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	return r
}

// reportSpread reports the median of xs as name, and its quartiles as
// name-p25 and name-p75.
func reportSpread(b *testing.B, name string, xs []float64) {
	b.ReportMetric(median(xs), name)
	b.ReportMetric(quartile(xs, 1), name+"-p25")
	b.ReportMetric(quartile(xs, 3), name+"-p75")
}

// runChunk calls fn chunk times from callers goroutines, each time with
// the next number of *next, and returns the calls per second.
func runChunk(b *testing.B, callers, chunk int, next *atomic.Int64, fn func(i int) error) float64 {
	var done atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for done.Add(1) <= int64(chunk) {
				if err := fn(int(next.Add(1))); err != nil {
					failed.Store(&err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	return float64(chunk) / time.Since(start).Seconds()
}

// BenchmarkLogCost is what the audit log costs a durable Place on
// PostgreSQL (issue 10: at most 10%), measured as residency's
// BenchmarkLogCost measures it on the file store. Here the log's entries
// are the rows of the changes table, which the Routers follow whether or
// not anyone audits; what the audit log adds is hashing them into its
// tree, in the Store's hashing goroutine and statements (hasher.go). So
// the two sides are two Routers on two databases of one server, the
// second's Store with its hashing stopped (StopHashing), and each round
// places a chunk through each from 1 caller and from 16, in an order that
// rotates. It reports the medians and quartiles of the rounds' ratios of
// time per Place with the hashing to without (on/off-1, on/off-16), and
// each side's median rate. Run it with -benchtime 20x or more, on the
// durable server (DOMICILE_PGTEST_DURABLE=1).
func BenchmarkLogCost(b *testing.B) {
	ctx := context.Background()
	on := routertest.OnPostgres(b, pgtest.Database(b), nil)
	s, err := postgres.Open(ctx, pgtest.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	postgres.StopHashing(s)
	off, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		b.Fatal(err)
	}
	defer off.Close()
	var next atomic.Int64 // account numbers, never reused
	type side struct {
		r              *residency.Router
		callers, chunk int
	}
	sides := []*side{{r: on, callers: 1, chunk: 300}, {r: off, callers: 1, chunk: 300},
		{r: on, callers: 16, chunk: 2000}, {r: off, callers: 16, chunk: 2000}}
	var runs []func() float64
	for _, s := range sides {
		runs = append(runs, func() float64 {
			return runChunk(b, s.callers, s.chunk, &next, placer(s.r))
		})
	}
	rates := rounds(b, runs...)
	// Time per Place on / off is rate off / on.
	reportSpread(b, "on/off-1", ratios(rates[1], rates[0]))
	reportSpread(b, "on/off-16", ratios(rates[3], rates[2]))
	b.ReportMetric(median(rates[0]), "on-places/s")
	b.ReportMetric(median(rates[1]), "off-places/s")
	b.ReportMetric(median(rates[2]), "on-places16/s")
	b.ReportMetric(median(rates[3]), "off-places16/s")
}

// placer returns a function that places account "acct-i" in Germany
// through r, the work the benchmarks measure.
func placer(r *residency.Router) func(i int) error {
	return func(i int) error {
		_, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: fmt.Sprint("acct-", i), Country: "DE"})
		return err
	}
}

// quartile returns the q-th quartile of xs (q 1 to 3, 2 the median).
func quartile(xs []float64, q int) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[min(len(s)-1, q*len(s)/4)]
}

// median returns the median of xs.
func median(xs []float64) float64 { return quartile(xs, 2) }

// parallel calls fn b.N times (with 0 to b.N-1) from callers goroutines
// and reports the calls per second as unit.
func parallel(b *testing.B, callers int, unit string, fn func(i int) error) {
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	start := time.Now()
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := fn(i); err != nil {
					failed.Store(&err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), unit)
}

// BenchmarkRouterVisibility is the time from Place returning on one
// Router to Lookup answering on another, which applies it by itself: p50
// and p99 over b.N placements.
func BenchmarkRouterVisibility(b *testing.B) {
	ctx := context.Background()
	dsn := pgtest.Database(b)
	writer, reader := routertest.OnPostgres(b, dsn, nil), routertest.OnPostgres(b, dsn, nil)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint("acct-", i)
		if _, err := writer.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			b.Fatal(err)
		}
		placed := time.Now()
		for {
			if _, err := reader.Lookup(id); err == nil {
				break
			}
			if time.Since(placed) > 30*time.Second {
				b.Fatalf("%s not visible after 30 s", id)
			}
			time.Sleep(20 * time.Microsecond)
		}
		lat = append(lat, time.Since(placed))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkRouterOpen1M opens a Router on a database holding 1M accounts
// (filled by fill, with SQL; run it with -benchtime 1x): s/open is the
// time of postgres.Open and residency.Open, B/account the heap the Router
// holds per account, and cpu-s/open the process's CPU time meanwhile
// (user and system, the garbage collector's included), which moves less
// than the time with the machine's other work. Then, on that Router,
// Lookup of every account in a random order: lookup-ns per call (the
// median of three passes) and lookup-allocs, with floor-ns the same
// passes, taking turns, on a map under a RWMutex holding the same
// placements.
func BenchmarkRouterOpen1M(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	dsn := pgtest.Database(b)
	fill(b, dsn, n)
	total := n + len(fillCountries)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fillID(i)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	b.ReportAllocs()
	for b.Loop() {
		before := heap()
		cpu, _ := cpuTime()
		start := time.Now()
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		r, err := residency.Open(ctx, residency.WithStore(s))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/open")
		if after, ok := cpuTime(); ok {
			b.ReportMetric((after - cpu).Seconds(), "cpu-s/open")
		}
		b.ReportMetric(float64(heap()-before)/float64(total), "B/account")

		b.StopTimer()
		// The floor's placements are allocated in ID order, as a
		// Router's are when loaded, not in the order of the lookups.
		f := &floor{m: make(map[string]*residency.Placement, n)}
		for i := range n {
			p, err := r.Lookup(fillID(i))
			if err != nil {
				b.Fatal(err)
			}
			f.m[p.AccountID] = &p
		}
		// Passes over all the accounts, taking turns; the medians.
		var floorNs, lookupNs []float64
		for range 3 {
			runtime.GC()
			start = time.Now()
			for _, id := range ids {
				sinkPlacement, _ = f.get(id)
			}
			floorNs = append(floorNs, float64(time.Since(start).Nanoseconds())/n)
			runtime.GC()
			start = time.Now()
			for _, id := range ids {
				if sinkPlacement, err = r.Lookup(id); err != nil {
					b.Fatal(err)
				}
			}
			lookupNs = append(lookupNs, float64(time.Since(start).Nanoseconds())/n)
		}
		slices.Sort(floorNs)
		slices.Sort(lookupNs)
		b.ReportMetric(floorNs[1], "floor-ns")
		b.ReportMetric(lookupNs[1], "lookup-ns")
		f = nil
		i := 0
		b.ReportMetric(testing.AllocsPerRun(10000, func() {
			sinkPlacement, _ = r.Lookup(ids[i%n])
			i++
		}), "lookup-allocs")
		r.Close()
		b.StartTimer()
	}
}

// floor is the fastest sensible structure for Lookup: a map under a
// RWMutex.
type floor struct {
	mu sync.RWMutex
	m  map[string]*residency.Placement
}

func (f *floor) get(id string) (residency.Placement, bool) {
	f.mu.RLock()
	p, ok := f.m[id]
	f.mu.RUnlock()
	if !ok {
		return residency.Placement{}, false
	}
	return *p, true
}

var sinkPlacement residency.Placement

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() (time.Duration, bool) {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0, false
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()), true
}

// heap returns the bytes of live heap, after collecting the garbage.
func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkRouterDelete is Delete through a Router on PostgreSQL beside a
// second Router on the same database, from 1 and 16 callers: since
// 6603193 a Delete (as RevokeAccess, RevokeTransfer and Object) is
// fenced, and returns once the other Router has read the log, which it
// does at once on a LISTEN wake-up (listen=true) or at its next poll,
// every second by default, with WithPollOnly (listen=false, as through
// PgBouncer). The accounts are placed before the timer; deletes/s is the
// rate.
func BenchmarkRouterDelete(b *testing.B) {
	ctx := context.Background()
	for _, listen := range []bool{true, false} {
		for _, callers := range []int{1, 16} {
			b.Run(fmt.Sprintf("listen=%v/callers=%d", listen, callers), func(b *testing.B) {
				var opts []postgres.Option
				if !listen {
					opts = append(opts, postgres.WithPollOnly())
				}
				dsn := pgtest.Database(b)
				r := routertest.OnPostgres(b, dsn, nil, opts...)
				routertest.OnPostgres(b, dsn, nil, opts...) // the other instance
				rows := func(yield func(residency.ImportRow) bool) {
					for i := range b.N {
						if !yield(residency.ImportRow{AccountID: fmt.Sprint("acct-", i), Country: "DE"}) {
							return
						}
					}
				}
				if res, err := r.Import(ctx, rows); err != nil || len(res.Refused) > 0 {
					b.Fatal(err, res.Refused)
				}
				parallel(b, callers, "deletes/s", func(i int) error {
					return r.Delete(ctx, fmt.Sprint("acct-", i), "benchmark")
				})
			})
		}
	}
}
