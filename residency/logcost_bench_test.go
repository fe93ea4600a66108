package residency

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLogCost measures what the audit log costs a durable Place on
// the file store (issue 10: at most 10%). It places new accounts through
// two Routers in one process, on two copies of one store file, one with
// the log and one with it switched off (fileStore.noLog), from 1 and 16
// callers: each iteration is a pair of chunks of Places, one on each
// store, in turns (ABBA, so that neither always goes first), with a
// garbage collection before each chunk. The copies start alike: the same
// accounts imported (logged) and the same file, so the same pages and the
// same size.
//
// Each pair gives a ratio of the time per Place with the log to that
// without; the benchmark reports their median (on/off) and quartiles
// (on/off-p25, on/off-p75), and the median time per Place of each side
// (on-ns/place, off-ns/place), Places per group commit
// (on-places/commit, off-places/commit) and pages written per commit
// (on-pages/commit, off-pages/commit: bbolt's page allocations, its
// meta page not counted). The CPU profile of a run labels each side's
// samples (pprof -tagfocus side=on). A machine shared with other work slows
// both chunks of a pair about alike, and the median of many short pairs
// ignores the pairs it slowed unevenly. ns/op is the time of a pair. Run
// it with a fixed count of pairs:
//
//	go test ./residency -run '^$' -bench BenchmarkLogCost -benchtime 40x -count 3
//
// The chunks are long enough for 16 callers' group commits to reach
// their steady size: a chunk's first and last commits, smaller, are a few
// of its hundred or so.
func BenchmarkLogCost(b *testing.B) {
	for _, bc := range []struct{ callers, chunk int }{{1, 200}, {16, 1600}} {
		b.Run(fmt.Sprintf("callers=%d", bc.callers), func(b *testing.B) {
			benchLogCost(b, bc.callers, bc.chunk)
		})
	}
}

// logCostAccounts is how many accounts both stores hold before the first
// pair: the log bucket is three pages deep, as it is from about a
// thousand entries on.
const logCostAccounts = 20_000

func benchLogCost(b *testing.B, callers, chunk int) {
	ctx := context.Background()
	dir := b.TempDir()
	on, off := filepath.Join(dir, "on.db"), filepath.Join(dir, "off.db")
	r, err := Open(ctx, WithPath(on))
	if err != nil {
		b.Fatal(err)
	}
	countries := []string{"DE", "US", "GB", "SG", "FR", "JP", "BR", "IN"}
	if _, err := r.Import(ctx, func(yield func(ImportRow) bool) {
		for i := range logCostAccounts {
			if !yield(ImportRow{AccountID: fmt.Sprintf("imported-%07d", i), Country: countries[i%len(countries)]}) {
				return
			}
		}
	}); err != nil {
		b.Fatal(err)
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	if err := copyStoreFile(off, on); err != nil {
		b.Fatal(err)
	}
	routers := [2]*Router{} // with the log, without
	stores := [2]*fileStore{}
	for i, path := range []string{on, off} {
		s, err := openFileStore(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		s.noLog = i == 1
		stores[i] = s
		if routers[i], err = Open(ctx, WithStore(s)); err != nil {
			b.Fatal(err)
		}
		defer routers[i].Close()
	}
	var placed [2]int
	var places, pages [2][]float64 // places and pages written a commit, each chunk
	// run places chunk new accounts through router i from callers
	// goroutines and returns the time per Place.
	run := func(i int) float64 {
		r := routers[i]
		base := placed[i]
		placed[i] += chunk
		runtime.GC()
		before := storeStats(b, stores[i])
		defer func() {
			d := storeStats(b, stores[i]).minus(before)
			places[i] = append(places[i], float64(chunk)/float64(d.commits))
			pages[i] = append(pages[i], float64(d.pages)/float64(d.commits))
		}()
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("side", []string{"on", "off"}[i])))
		defer pprof.SetGoroutineLabels(ctx)
		for range callers {
			wg.Go(func() {
				for n := int(next.Add(1)); n <= chunk; n = int(next.Add(1)) {
					k := base + n
					if _, err := r.Place(ctx, PlaceRequest{AccountID: fmt.Sprintf("placed-%07d", k), Country: countries[k%len(countries)]}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return float64(time.Since(start).Nanoseconds()) / float64(chunk)
	}
	run(0) // warm both up: caches, the Routers' indexes, group commit
	run(1)
	var ratios, onNs, offNs []float64
	b.ReportAllocs()
	b.ResetTimer()
	for pair := 0; b.Loop(); pair++ {
		var t [2]float64
		if pair%2 == 0 {
			t[0], t[1] = run(0), run(1)
		} else {
			t[1], t[0] = run(1), run(0)
		}
		ratios, onNs, offNs = append(ratios, t[0]/t[1]), append(onNs, t[0]), append(offNs, t[1])
	}
	b.StopTimer()
	if b.Failed() {
		return
	}
	b.ReportMetric(quantile(ratios, 0.5), "on/off")
	b.ReportMetric(quantile(ratios, 0.25), "on/off-p25")
	b.ReportMetric(quantile(ratios, 0.75), "on/off-p75")
	b.ReportMetric(quantile(onNs, 0.5), "on-ns/place")
	b.ReportMetric(quantile(offNs, 0.5), "off-ns/place")
	b.ReportMetric(quantile(places[0], 0.5), "on-places/commit")
	b.ReportMetric(quantile(places[1], 0.5), "off-places/commit")
	b.ReportMetric(quantile(pages[0], 0.5), "on-pages/commit")
	b.ReportMetric(quantile(pages[1], 0.5), "off-pages/commit")
}

// fileStats counts what a store file's transactions did.
type fileStats struct {
	commits int   // write transactions committed
	pages   int64 // pages written, bbolt's meta page not counted
}

// storeStats returns the counts of s so far.
func storeStats(b *testing.B, s *fileStore) fileStats {
	tx, err := s.db.Begin(false) // its ID is that of the last commit
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	st := s.db.Stats()
	return fileStats{commits: tx.ID(), pages: st.TxStats.GetPageAlloc() / int64(s.db.Info().PageSize)}
}

func (a fileStats) minus(b fileStats) fileStats {
	return fileStats{a.commits - b.commits, a.pages - b.pages}
}

// quantile returns the q-quantile of xs (nearest rank, xs not empty).
func quantile(xs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// copyStoreFile copies the file src to dst, fsynced.
func copyStoreFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
