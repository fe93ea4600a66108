package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The benchmarks run on the test server (fsync off unless
// DOMICILE_TEST_POSTGRES names another): compare them with each other in
// one run, not across machines.

// BenchmarkBareInsert is the floor a store on pgx compares with: one
// autocommit INSERT of a row per operation, through a pgxpool.
func BenchmarkBareInsert(b *testing.B) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE TABLE t (id text PRIMARY KEY, v text NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := pool.Exec(ctx, "INSERT INTO t (id, v) VALUES ($1, $2)", fmt.Sprint("acct-", i), "linode-eu"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply is one placement per Apply, one caller: the cost of a
// unit of one change, to set against BenchmarkBareInsert.
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, pgtest.Database(b))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.Apply(ctx, []residency.Change{placed(fmt.Sprint("acct-", i), "linode-eu", at)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply100 is 100 placements per Apply, as group commit makes
// them under load; the time is per unit.
func BenchmarkApply100(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, pgtest.Database(b))
	unit := make([]residency.Change, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for j := range unit {
			unit[j] = placed(fmt.Sprintf("acct-%d-%d", i, j), "linode-eu", at)
		}
		if err := s.Apply(ctx, unit); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyParallel is one placement per Apply from many goroutines
// at once, without group commit: commits take turns on the head row.
func BenchmarkApplyParallel(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, pgtest.Database(b))
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Apply(ctx, []residency.Change{placed(fmt.Sprint("acct-", n.Add(1)), "linode-eu", at)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLoad reads 10,000 accounts with their trails per operation.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, pgtest.Database(b))
	const n = 10000
	unit := make([]residency.Change, 0, 2*n)
	for i := range n {
		c := placed(fmt.Sprintf("acct-%06d", i), "linode-eu", at)
		unit = append(unit, c, next(c, residency.MoveBegun, at, nil))
	}
	if err := s.Apply(ctx, unit); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		got := 0
		if err := s.Load(ctx, func(residency.StoredAccount) error { got++; return nil }); err != nil || got != n {
			b.Fatalf("Load: %d accounts, %v", got, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/account")
}

// BenchmarkChanges reads the log as a follower does, 1,000 changes per
// operation.
func BenchmarkChanges(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, pgtest.Database(b))
	const n = 1000
	unit := make([]residency.Change, n)
	for i := range unit {
		unit[i] = placed(fmt.Sprint("acct-", i), "linode-eu", at)
	}
	if err := s.Apply(ctx, unit); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		last, err := s.Changes(ctx, 0, func(uint64, residency.Change) error { return nil })
		if err != nil || last != n {
			b.Fatalf("Changes: %d, %v", last, err)
		}
	}
}

// BenchmarkFollowLatency is the time from the start of an Apply on one
// store to its change being read by a follower on another, woken by its
// Listener: the floor of how soon a change on one Router reaches another.
func BenchmarkFollowLatency(b *testing.B) {
	ctx := context.Background()
	dsn := pgtest.Database(b)
	writer, follower := openStore(b, dsn), openStore(b, dsn)
	l, err := follower.Listen(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	<-l.C // listening
	lat := make([]time.Duration, 0, b.N)
	last := uint64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		pos, err := writer.Append(ctx, []residency.Change{placed(fmt.Sprint("acct-", i), "linode-eu", at)}, 0)
		if err != nil {
			b.Fatal(err)
		}
		for last < pos {
			<-l.C
			if last, err = follower.Changes(ctx, last, func(uint64, residency.Change) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
