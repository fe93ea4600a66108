// The benchmark reads the CPU time with getrusage.

//go:build unix

package residency

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFileStoreLoad decodes a store file of 100,000 imported accounts
// (a placement and an event each), as Open does, without building the
// Router's indexes: ns/account is the cost of the format and its checks,
// cpu-ns/account the same in CPU time of the process (garbage collection
// included), which other processes on a loaded machine disturb less.
func BenchmarkFileStoreLoad(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "load.db")
	r, err := Open(ctx, WithPath(path))
	if err != nil {
		b.Fatal(err)
	}
	countries := []string{"DE", "US", "GB", "SG", "FR", "JP", "BR", "IN"}
	if _, err := r.Import(ctx, func(yield func(ImportRow) bool) {
		for i := range n {
			if !yield(ImportRow{AccountID: fmt.Sprintf("account-%07d", i), Country: countries[i%len(countries)]}) {
				return
			}
		}
	}); err != nil {
		b.Fatal(err)
	}
	r.Close()
	s, err := openFileStore(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		loaded := 0
		if err := s.Load(ctx, func(StoredAccount) error { loaded++; return nil }); err != nil || loaded != n {
			b.Fatalf("Load: %d accounts, %v", loaded, err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N)/n, "cpu-ns/account")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/account")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
