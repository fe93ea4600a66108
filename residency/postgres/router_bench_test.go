package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
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
			parallel(b, callers, func(i int) error {
				_, err := pool.Exec(ctx, "INSERT INTO t (id, v) VALUES ($1, $2)", fmt.Sprint("acct-", i), "linode-eu")
				return err
			})
		})
		b.Run(fmt.Sprintf("impl=router/callers=%d", callers), func(b *testing.B) {
			r := openRouter(b, pgtest.Database(b), nil)
			parallel(b, callers, func(i int) error {
				_, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("acct-", i), Country: "DE"})
				return err
			})
		})
	}
}

// parallel calls fn b.N times from callers goroutines and reports calls
// per second.
func parallel(b *testing.B, callers int, fn func(i int) error) {
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
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "places/s")
}

// BenchmarkRouterVisibility is the time from Place returning on one
// Router to Lookup answering on another, which applies it by itself: p50
// and p99 over b.N placements.
func BenchmarkRouterVisibility(b *testing.B) {
	ctx := context.Background()
	dsn := pgtest.Database(b)
	writer, reader := openRouter(b, dsn, nil), openRouter(b, dsn, nil)
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
