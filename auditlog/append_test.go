package auditlog_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/tlog"
)

// sliceHashes is the plainest hash storage: stored hash i at index i.
type sliceHashes []tlog.Hash

func (s sliceHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(s)) {
			return nil, errors.New("hash not stored")
		}
		out[i] = s[x]
	}
	return out, nil
}

// reference returns the stored hashes of a log of the entries, computed
// one entry at a time with tlog alone.
func reference(t *testing.T, es [][]byte) sliceHashes {
	t.Helper()
	var s sliceHashes
	for i, e := range es {
		hs, err := tlog.StoredHashes(int64(i), e, s)
		if err != nil {
			t.Fatal(err)
		}
		s = append(s, hs...)
	}
	return s
}

func TestAppendHashes(t *testing.T) {
	es := entries(700)
	want := reference(t, es)
	// Append the same entries in batches of several sizes: the stored
	// hashes must be those of appending one at a time.
	for _, batch := range []int{1, 2, 3, 7, 64, 100, 700} {
		var got sliceHashes
		for n := 0; n < len(es); n += batch {
			end := min(n+batch, len(es))
			first, hs, err := auditlog.AppendHashes(int64(n), got, es[n:end]...)
			if err != nil {
				t.Fatalf("batch %d: AppendHashes(%d): %v", batch, n, err)
			}
			if first != int64(len(got)) {
				t.Fatalf("batch %d: AppendHashes(%d) first = %d, want %d", batch, n, first, len(got))
			}
			if wantLen := tlog.StoredHashCount(int64(end)) - first; int64(len(hs)) != wantLen {
				t.Fatalf("batch %d: AppendHashes(%d) returned %d hashes, want %d", batch, n, len(hs), wantLen)
			}
			got = append(got, hs...)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("batch %d: stored hashes mismatch (-want +got):\n%s", batch, diff)
		}
	}
}

func TestAppendHashesErrors(t *testing.T) {
	if _, _, err := auditlog.AppendHashes(-1, sliceHashes{}, entry(0)); !errors.Is(err, auditlog.ErrOutOfRange) {
		t.Errorf("AppendHashes(-1) error = %v, want ErrOutOfRange", err)
	}
	// A reader missing the hashes of the log before n: an error, nothing
	// to store.
	for _, es := range [][][]byte{{entry(1)}, {entry(1), entry(2)}} {
		first, hs, err := auditlog.AppendHashes(1, sliceHashes{}, es...)
		if err == nil || hs != nil || first != 0 {
			t.Errorf("AppendHashes(1, empty reader, %d entries) = %d, %v, %v; want an error and no hashes", len(es), first, hs, err)
		}
	}
	// No entries: nothing to store.
	s := reference(t, entries(5))
	first, hs, err := auditlog.AppendHashes(5, s, []([]byte){}...)
	if err != nil || len(hs) != 0 || first != int64(len(s)) {
		t.Errorf("AppendHashes(5, no entries) = %d, %v, %v; want %d, none, nil", first, hs, err, len(s))
	}
}

func TestMemoryHashes(t *testing.T) {
	es := entries(300)
	var m auditlog.MemoryHashes
	c0, err := m.Checkpoint(origin)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auditlog.Checkpoint{Origin: origin, Hash: naiveRoot(nil)}, c0); diff != "" {
		t.Errorf("empty Checkpoint mismatch (-want +got):\n%s", diff)
	}
	for i, e := range es {
		n, err := m.Append(e)
		if err != nil || n != int64(i) {
			t.Fatalf("Append(entry %d) = %d, %v", i, n, err)
		}
		if m.Size() != int64(i+1) {
			t.Fatalf("Size() = %d after %d appends", m.Size(), i+1)
		}
		c, err := m.Checkpoint(origin)
		if err != nil {
			t.Fatal(err)
		}
		want := auditlog.Checkpoint{Origin: origin, Size: int64(i + 1), Hash: naiveRoot(es[:i+1])}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Fatalf("Checkpoint after %d entries mismatch (-want +got):\n%s", i+1, diff)
		}
	}
	want := reference(t, es)
	got, err := m.ReadHashes(func() []int64 {
		x := make([]int64, len(want))
		for i := range x {
			x[i] = int64(i)
		}
		return x
	}())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tlog.Hash(want), got); diff != "" {
		t.Errorf("ReadHashes mismatch (-want +got):\n%s", diff)
	}
	if _, err := m.ReadHashes([]int64{int64(len(want))}); !errors.Is(err, auditlog.ErrOutOfRange) {
		t.Errorf("ReadHashes(past the end) error = %v, want ErrOutOfRange", err)
	}
}

// TestMemoryHashesConcurrent appends from several goroutines while
// others read; run with -race. Whatever the order, the log must hold
// every entry once and its stored hashes be those of that order.
func TestMemoryHashesConcurrent(t *testing.T) {
	var m auditlog.MemoryHashes
	const writers, each = 4, 50
	var wg sync.WaitGroup
	got := make([][]byte, writers*each)
	var mu sync.Mutex
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := entry(int64(w*each + i))
				n, err := m.Append(e)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[n] = e
				mu.Unlock()
			}
		})
		wg.Go(func() {
			for range each {
				if _, err := m.Checkpoint(origin); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	c, err := m.Checkpoint(origin)
	if err != nil {
		t.Fatal(err)
	}
	if want := naiveRoot(got); c.Size != writers*each || c.Hash != want {
		t.Errorf("Checkpoint() = %d %v, want %d %v", c.Size, c.Hash, writers*each, want)
	}
}
