package benchmarks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/hashicorp/go-memdb"
)

var sizes = []int{10_000, 100_000, 1_000_000}

var countries = []string{"DE", "FR", "US", "GB", "JP", "SG", "BR", "AU"}

func accountID(i int) string { return fmt.Sprintf("acct-%08d", i) }

// populate returns a Router holding n accounts, closed when b ends. With
// b.Loop a benchmark function runs once, so each sub-benchmark builds its
// own and leaves nothing alive for the next.
func populate(b *testing.B, n int) *residency.Router {
	r, err := residency.Open(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	fill(b, r, 0, n)
	return r
}

func fill(b *testing.B, r *residency.Router, from, to int) {
	ctx := context.Background()
	for i := from; i < to; i++ {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: accountID(i), Country: countries[i%len(countries)]}); err != nil {
			b.Fatal(err)
		}
	}
}

// floor is the fastest sensible structure: a map under a RWMutex.
type floor struct {
	mu sync.RWMutex
	m  map[string]*residency.Placement
}

func newFloor(n int) *floor {
	f := &floor{m: make(map[string]*residency.Placement)}
	for i := range n {
		f.put(&residency.Placement{AccountID: accountID(i), Region: region.EU, DataCenter: "linode-eu", Version: 1})
	}
	return f
}

func (f *floor) put(p *residency.Placement) {
	f.mu.Lock()
	f.m[p.AccountID] = p
	f.mu.Unlock()
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

// naive is go-memdb used the obvious way: a reflection StringFieldIndex and
// a read transaction per lookup.
func naive(b *testing.B, n int) *memdb.MemDB {
	db, err := memdb.NewMemDB(&memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		"accounts": {Name: "accounts", Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "AccountID"}},
		}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	txn := db.Txn(true)
	for i := range n {
		if err := txn.Insert("accounts", &residency.Placement{AccountID: accountID(i), Region: region.EU, DataCenter: "linode-eu"}); err != nil {
			b.Fatal(err)
		}
	}
	txn.Commit()
	return db
}

// shuffled returns the account IDs in a random order, so that lookups miss
// the cache as a service's would.
func shuffled(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = accountID(i)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids
}

var sink residency.Placement

func BenchmarkLookup(b *testing.B) {
	for _, n := range sizes {
		ids := shuffled(n)
		b.Run(fmt.Sprintf("impl=floor/n=%d", n), func(b *testing.B) {
			f := newFloor(n)
			start(b)
			for i := 0; b.Loop(); i++ {
				sink, _ = f.get(ids[i%n])
			}
		})
		b.Run(fmt.Sprintf("impl=router/n=%d", n), func(b *testing.B) {
			r := populate(b, n)
			start(b)
			for i := 0; b.Loop(); i++ {
				p, err := r.Lookup(ids[i%n])
				if err != nil {
					b.Fatal(err)
				}
				sink = p
			}
		})
		b.Run(fmt.Sprintf("impl=memdb-naive/n=%d", n), func(b *testing.B) {
			db := naive(b, n)
			start(b)
			for i := 0; b.Loop(); i++ {
				obj, err := db.Txn(false).First("accounts", "id", ids[i%n])
				if err != nil || obj == nil {
					b.Fatal(err)
				}
				sink = *obj.(*residency.Placement)
			}
		})
	}
}

// BenchmarkLookupParallel is Lookup from every core at once, at 1M accounts.
func BenchmarkLookupParallel(b *testing.B) {
	const n = 1_000_000
	ids := shuffled(n)
	b.Run("impl=floor", func(b *testing.B) {
		f := newFloor(n)
		start(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := rand.IntN(n); pb.Next(); i++ {
				f.get(ids[i%n])
			}
		})
	})
	b.Run("impl=router", func(b *testing.B) {
		r := populate(b, n)
		start(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := rand.IntN(n); pb.Next(); i++ {
				if _, err := r.Lookup(ids[i%n]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkPlace places new accounts into a Router that already holds n.
func BenchmarkPlace(b *testing.B) {
	ctx := context.Background()
	for _, n := range sizes {
		b.Run(fmt.Sprintf("impl=floor/n=%d", n), func(b *testing.B) {
			f := newFloor(n)
			start(b)
			for i := 0; b.Loop(); i++ {
				f.put(&residency.Placement{AccountID: accountID(n + i), Region: region.EU, DataCenter: "linode-eu", Version: 1})
			}
		})
		b.Run(fmt.Sprintf("impl=router/n=%d", n), func(b *testing.B) {
			r := populate(b, n)
			start(b)
			for i := 0; b.Loop(); i++ {
				id := accountID(n + i)
				if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: countries[i%len(countries)]}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeap reports the heap bytes each account costs at 1M accounts,
// account IDs included.
func BenchmarkHeap(b *testing.B) {
	const n = 1_000_000
	measure := func(b *testing.B, build func() any) {
		for b.Loop() {
			before := heap()
			keep := build()
			after := heap()
			runtime.KeepAlive(keep)
			b.ReportMetric(float64(after-before)/n, "B/account")
		}
	}
	b.Run("impl=floor", func(b *testing.B) { measure(b, func() any { return newFloor(n) }) })
	b.Run("impl=router", func(b *testing.B) {
		measure(b, func() any {
			r, err := residency.Open(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			fill(b, r, 0, n)
			return r
		})
	})
	b.Run("impl=memdb-naive", func(b *testing.B) { measure(b, func() any { return naive(b, n) }) })
}

// start begins timing once the setup's garbage is collected, so that a
// benchmark measures its operation, not the collection of its setup.
func start(b *testing.B) {
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
