package benchmarks

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkDurablePlace places new accounts through the embedded store from
// 1, 4 and 16 goroutines at once, next to the baseline of one bbolt
// transaction (one fsync) per call, with and without a deadline on each
// Place's context. places/s is the throughput.
func BenchmarkDurablePlace(b *testing.B) {
	ctx := context.Background()
	for _, callers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("impl=fsync-per-call/callers=%d", callers), func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "baseline.db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("accounts")); return err })
			value := make([]byte, 120) // about the size of an encoded placement
			concurrently(b, callers, func(i int) error {
				return db.Update(func(tx *bolt.Tx) error {
					return tx.Bucket([]byte("accounts")).Put([]byte(accountID(i)), value)
				})
			})
		})
		// router-deadline: each Place with a deadline of its own, as a
		// server's requests have: a batch whose leader's deadline is not
		// the latest is committed in a goroutine of its own.
		for _, impl := range []string{"router", "router-deadline"} {
			b.Run(fmt.Sprintf("impl=%s/callers=%d", impl, callers), func(b *testing.B) {
				r, err := residency.Open(ctx, residency.WithPath(filepath.Join(b.TempDir(), "router.db")))
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				concurrently(b, callers, func(i int) error {
					ctx := ctx
					if impl == "router-deadline" {
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
						defer cancel()
					}
					_, err := r.Place(ctx, residency.PlaceRequest{AccountID: accountID(i), Country: countries[i%len(countries)]})
					return err
				})
			})
		}
	}
}

// concurrently calls fn b.N times from callers goroutines, and reports the
// calls per second.
func concurrently(b *testing.B, callers int, fn func(i int) error) {
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= b.N; i = int(next.Add(1)) {
				if err := fn(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "places/s")
}

func importRows(n int) func(func(residency.ImportRow) bool) {
	return func(yield func(residency.ImportRow) bool) {
		for i := range n {
			if !yield(residency.ImportRow{AccountID: accountID(i), Country: countries[i%len(countries)]}) {
				return
			}
		}
	}
}

// BenchmarkImport imports 1M accounts into a new store file; accounts/s is
// the throughput. Run it with -benchtime 1x: one op is the whole import.
func BenchmarkImport(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	for b.Loop() {
		r, err := residency.Open(ctx, residency.WithPath(filepath.Join(b.TempDir(), "import.db")))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		res, err := r.Import(ctx, importRows(n))
		if err != nil || res.Imported != n {
			b.Fatalf("Import: %+v, %v", res.Imported, err)
		}
		b.ReportMetric(n/time.Since(start).Seconds(), "accounts/s")
		r.Close()
	}
}

// BenchmarkOpen opens a store file holding 1M accounts and reports the heap
// each account costs once loaded. Run it with -benchtime 1x.
func BenchmarkOpen(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "open.db")
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.Import(ctx, importRows(n)); err != nil {
		b.Fatal(err)
	}
	r.Close()
	r = nil
	for b.Loop() {
		before := heap()
		start := time.Now()
		r, err := residency.Open(ctx, residency.WithPath(path))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/open")
		b.ReportMetric(float64(heap()-before)/n, "B/account")
		runtime.KeepAlive(r)
		r.Close()
	}
}
