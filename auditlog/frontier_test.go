package auditlog_test

import (
	"errors"
	"testing"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/tlog"
)

func TestFrontier(t *testing.T) {
	const max = 300
	es := entries(max + 10)
	stored := reference(t, es)
	var f auditlog.Frontier
	for n := int64(0); n <= max; n++ {
		// The frontier grown entry by entry, and the one loaded from the
		// stored hashes, give the checkpoint and the next hashes to store.
		loaded, err := auditlog.LoadFrontier(n, stored)
		if err != nil {
			t.Fatalf("LoadFrontier(%d): %v", n, err)
		}
		if loaded.Size() != n || f.Size() != n {
			t.Fatalf("sizes %d (loaded), %d (grown), want %d", loaded.Size(), f.Size(), n)
		}
		want := auditlog.Checkpoint{Origin: origin, Size: n, Hash: naiveRoot(es[:n])}
		for name, fr := range map[string]*auditlog.Frontier{"loaded": &loaded, "grown": &f} {
			c, err := fr.Checkpoint(origin)
			if err != nil {
				t.Fatalf("%s frontier of %d: Checkpoint: %v", name, n, err)
			}
			if diff := cmp.Diff(want, c); diff != "" {
				t.Fatalf("%s frontier of %d: Checkpoint mismatch (-want +got):\n%s", name, n, diff)
			}
		}
		for _, k := range []int64{1, 2, 5} {
			next := loaded // a copy: appending to it leaves loaded as it was
			first, hashes := next.Append(es[n : n+k]...)
			wantFirst, wantHashes, err := auditlog.AppendHashes(n, stored, es[n:n+k]...)
			if err != nil {
				t.Fatal(err)
			}
			if first != wantFirst {
				t.Fatalf("Append(%d entries) to the frontier of %d: first = %d, want %d", k, n, first, wantFirst)
			}
			if diff := cmp.Diff(wantHashes, hashes); diff != "" {
				t.Fatalf("Append(%d entries) to the frontier of %d: hashes mismatch (-want +got):\n%s", k, n, diff)
			}
			if next.Size() != n+k || loaded.Size() != n {
				t.Fatalf("after appending %d to a copy of the frontier of %d: sizes %d and %d", k, n, next.Size(), loaded.Size())
			}
		}
		// AppendTo gives the hashes Append gives, after what the slice
		// held, and allocates nothing given room.
		grown, byOne := f, f
		_, want1 := grown.Append(es[n])
		var buf [64]tlog.Hash
		got := byOne.AppendTo(append(buf[:0], tlog.Hash{1}), es[n])
		if diff := cmp.Diff(append([]tlog.Hash{{1}}, want1...), got); diff != "" {
			t.Fatalf("AppendTo on the frontier of %d: hashes mismatch (-want +got):\n%s", n, diff)
		}
		if byOne != grown {
			t.Fatalf("AppendTo and Append leave different frontiers of %d", n)
		}
		if allocs := testing.AllocsPerRun(10, func() { c := f; c.AppendTo(buf[:0], es[n]) }); allocs != 0 {
			t.Fatalf("AppendTo on the frontier of %d: %v allocations", n, allocs)
		}
		f.Append(es[n])
	}
}

func TestFrontierErrors(t *testing.T) {
	stored := reference(t, entries(10))
	if _, err := auditlog.LoadFrontier(11, stored); err == nil {
		t.Error("LoadFrontier(11) over 10 stored entries: no error")
	}
	if _, err := auditlog.LoadFrontier(-1, stored); !errors.Is(err, auditlog.ErrOutOfRange) {
		t.Errorf("LoadFrontier(-1) error = %v, want ErrOutOfRange", err)
	}
	f, err := auditlog.LoadFrontier(10, stored)
	if err != nil {
		t.Fatal(err)
	}
	// Entry 0's leaf is not on the right edge of a tree of 10.
	if _, err := f.ReadHashes([]int64{tlog.StoredHashIndex(0, 0)}); !errors.Is(err, auditlog.ErrOutOfRange) {
		t.Errorf("ReadHashes(leaf 0) error = %v, want ErrOutOfRange", err)
	}
	// Proofs need the stored hashes: over a frontier they fail.
	if _, err := auditlog.ProveEntry(3, 10, &f); err == nil {
		t.Error("ProveEntry over a frontier: no error")
	}
}
