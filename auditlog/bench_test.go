package auditlog_test

import (
	"testing"

	"github.com/domicile-go/domicile/auditlog"
)

// bigLog returns the hash storage of a log of n entries, filled in
// batches.
func bigLog(b *testing.B, n int64) *auditlog.MemoryHashes {
	b.Helper()
	m := new(auditlog.MemoryHashes)
	const batch = 1 << 14
	for i := int64(0); i < n; i += batch {
		es := make([][]byte, min(batch, n-i))
		for j := range es {
			es[j] = entry(i + int64(j))
		}
		if _, err := m.Append(es...); err != nil {
			b.Fatal(err)
		}
	}
	return m
}

// BenchmarkAppend appends one entry to a log of a million, its hashes in
// memory: the cost of hashing an entry in a store's transaction, less
// the store's own reads and writes.
func BenchmarkAppend(b *testing.B) {
	m := bigLog(b, 1<<20)
	e := []byte(`{"kind":"placed","account":"acct-123456","datacenter":"fra1","region":"eu"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendHashes is AppendHashes alone over the same log, as a
// store calls it: the hashes are computed, not stored. The log size
// cycles over 1024 values, so that the number of node hashes per entry
// averages that of a growing log (two hashes per entry).
func BenchmarkAppendHashes(b *testing.B) {
	m := bigLog(b, 1<<20)
	e := []byte(`{"kind":"placed","account":"acct-123456","datacenter":"fra1","region":"eu"}`)
	b.ReportAllocs()
	var i int64
	for b.Loop() {
		if _, _, err := auditlog.AppendHashes(1<<20-1024+i%1024, m, e); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCheckpoint computes the head of a log of a million entries.
func BenchmarkCheckpoint(b *testing.B) {
	m := bigLog(b, 1<<20+12345)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Checkpoint(origin); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProveCheckEntry proves and checks one entry in a log of a
// million.
func BenchmarkProveCheckEntry(b *testing.B) {
	const n = 1<<20 + 12345
	m := bigLog(b, n)
	c := checkpoint(b, m, n)
	e := entry(777777)
	b.ReportAllocs()
	for b.Loop() {
		p, err := auditlog.ProveEntry(777777, n, m)
		if err != nil {
			b.Fatal(err)
		}
		if err := auditlog.CheckEntry(p, c, 777777, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckLog recomputes a log of 100,000 entries and compares it
// with the stored hashes; per entry, divide by 100,000.
func BenchmarkCheckLog(b *testing.B) {
	const n = 100_000
	es := entries(n)
	m := bigLog(b, n)
	c := checkpoint(b, m, n/2)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := auditlog.CheckLog(c, auditlog.Entries(es), m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFrontierAppend appends one entry to a log of a million held as
// a frontier: no stored hash is read.
func BenchmarkFrontierAppend(b *testing.B) {
	m := bigLog(b, 1<<20)
	f, err := auditlog.LoadFrontier(m.Size(), m)
	if err != nil {
		b.Fatal(err)
	}
	e := []byte(`{"kind":"placed","account":"acct-123456","datacenter":"fra1","region":"eu"}`)
	b.ReportAllocs()
	for b.Loop() {
		next := f
		next.Append(e)
		f = next
	}
}
