package residency

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkFileStoreLoad decodes a store file of 100,000 imported accounts
// (a placement and an event each), as Open does, without building the
// Router's indexes: ns/account is the cost of the format and its checks.
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
	for b.Loop() {
		loaded := 0
		if err := s.Load(ctx, func(StoredAccount) error { loaded++; return nil }); err != nil || loaded != n {
			b.Fatalf("Load: %d accounts, %v", loaded, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/account")
}
