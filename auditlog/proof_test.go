package auditlog_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	"golang.org/x/mod/sumdb/tlog"
)

// proofSizes are the tree sizes proofs are checked for: every size up to
// 300, and some larger ones around powers of two.
func proofSizes() []int64 {
	var s []int64
	for n := int64(1); n <= 300; n++ {
		s = append(s, n)
	}
	return append(s, 511, 512, 513, 1000, 1024, 1025, 4097)
}

// sample returns the indexes below n that proofs are checked for: all of
// them up to 300, then the ends, powers of two about and some in between.
func sample(n int64) []int64 {
	if n <= 300 {
		s := make([]int64, n)
		for i := range s {
			s[i] = int64(i)
		}
		return s
	}
	var s []int64
	for i := int64(0); i < n; i += 37 {
		s = append(s, i)
	}
	for p := int64(1); p < n; p *= 2 {
		s = append(s, p-1, p)
	}
	return append(s, n-2, n-1)
}

func TestProveEntry(t *testing.T) {
	sizes := proofSizes()
	max := sizes[len(sizes)-1]
	es := entries(max)
	m := memLog(t, es)
	for _, n := range sizes {
		c := checkpoint(t, m, n)
		if want := naiveRoot(es[:n]); c.Hash != want {
			t.Fatalf("checkpoint at size %d: hash %v, want %v", n, c.Hash, want)
		}
		for _, i := range sample(n) {
			p, err := auditlog.ProveEntry(i, n, m)
			if err != nil {
				t.Fatalf("ProveEntry(%d, %d): %v", i, n, err)
			}
			// tlog's own verifier must accept the proof.
			if err := tlog.CheckRecord(p, n, c.Hash, i, tlog.RecordHash(es[i])); err != nil {
				t.Fatalf("tlog.CheckRecord(ProveEntry(%d, %d)): %v", i, n, err)
			}
			if err := auditlog.CheckEntry(p, c, i, es[i]); err != nil {
				t.Fatalf("CheckEntry(%d) in size %d: %v", i, n, err)
			}
			// Another entry, or the entry at another index, is refused.
			wantProofError(t, auditlog.CheckEntry(p, c, i, []byte("rewritten")), i)
			if j := (i + 1) % n; j != i {
				wantProofError(t, auditlog.CheckEntry(p, c, j, es[i]), j)
			}
		}
	}
}

// wantProofError checks that err is an EntryError naming i and wrapping
// ErrInvalidProof.
func wantProofError(t *testing.T, err error, i int64) {
	t.Helper()
	var ee *auditlog.EntryError
	if !errors.Is(err, auditlog.ErrInvalidProof) || !errors.As(err, &ee) || ee.Index != i {
		t.Fatalf("error = %v, want an EntryError for entry %d wrapping ErrInvalidProof", err, i)
	}
}

func TestProveEntryErrors(t *testing.T) {
	m := memLog(t, entries(10))
	c := checkpoint(t, m, 10)
	for _, tc := range []struct {
		name        string
		index, size int64
	}{
		{"negative index", -1, 10},
		{"index at size", 10, 10},
		{"empty log", 0, 0},
	} {
		_, err := auditlog.ProveEntry(tc.index, tc.size, m)
		var ee *auditlog.EntryError
		if !errors.Is(err, auditlog.ErrOutOfRange) || !errors.As(err, &ee) || ee.Index != tc.index {
			t.Errorf("%s: ProveEntry(%d, %d) error = %v, want EntryError wrapping ErrOutOfRange", tc.name, tc.index, tc.size, err)
		}
	}
	// A size the storage does not hold yet.
	if _, err := auditlog.ProveEntry(3, 20, m); err == nil {
		t.Error("ProveEntry(3, 20) over a log of 10: no error")
	}
	if err := auditlog.CheckEntry(nil, c, 10, entry(10)); !errors.Is(err, auditlog.ErrOutOfRange) {
		t.Errorf("CheckEntry(index 10, size 10) error = %v, want ErrOutOfRange", err)
	}
	// A proof for entry 3 in the tree of 8 does not prove it in the tree of 10.
	p, err := auditlog.ProveEntry(3, 8, m)
	if err != nil {
		t.Fatal(err)
	}
	wantProofError(t, auditlog.CheckEntry(p, c, 3, entry(3)), 3)
}

func TestProveExtension(t *testing.T) {
	sizes := proofSizes()
	max := sizes[len(sizes)-1]
	m := memLog(t, entries(max))
	cps := map[int64]auditlog.Checkpoint{}
	cp := func(n int64) auditlog.Checkpoint {
		if c, ok := cps[n]; ok {
			return c
		}
		cps[n] = checkpoint(t, m, n)
		return cps[n]
	}
	for _, n := range sizes {
		newer := cp(n)
		for _, o := range append(sample(n), n) {
			older := cp(o)
			p, err := auditlog.ProveExtension(o, n, m)
			if err != nil {
				t.Fatalf("ProveExtension(%d, %d): %v", o, n, err)
			}
			if o > 0 {
				// tlog's own verifier must accept the proof.
				if err := tlog.CheckTree(p, n, newer.Hash, o, older.Hash); err != nil {
					t.Fatalf("tlog.CheckTree(ProveExtension(%d, %d)): %v", o, n, err)
				}
			} else if len(p) != 0 {
				t.Fatalf("ProveExtension(0, %d) = %d hashes, want none", n, len(p))
			}
			if err := auditlog.CheckExtension(p, older, newer); err != nil {
				t.Fatalf("CheckExtension(%d to %d): %v", o, n, err)
			}
			// The proof does not hold for another older head.
			if o > 0 && o < n {
				other := older
				other.Hash = cp(o + 1).Hash
				if err := auditlog.CheckExtension(p, other, newer); !errors.Is(err, auditlog.ErrInvalidProof) {
					t.Fatalf("CheckExtension(%d to %d) with a wrong older hash: error = %v, want ErrInvalidProof", o, n, err)
				}
			}
		}
	}
}

// TestCheckExtensionFork: two logs that agree up to some entry and then
// differ, both hashed honestly, are not extensions of each other.
func TestCheckExtensionFork(t *testing.T) {
	honest := entries(100)
	for _, k := range []int64{0, 1, 31, 32, 63, 99} {
		forked := entries(120)
		forked[k] = []byte("rewritten")
		mh, mf := memLog(t, honest), memLog(t, forked)
		for _, o := range []int64{k + 1, 64, 100} {
			if o <= k || o > 100 {
				continue
			}
			older := checkpoint(t, mh, o)
			newer := checkpoint(t, mf, 120)
			p, err := auditlog.ProveExtension(o, 120, mf)
			if err != nil {
				t.Fatal(err)
			}
			if err := auditlog.CheckExtension(p, older, newer); !errors.Is(err, auditlog.ErrInvalidProof) {
				t.Errorf("entry %d rewritten: CheckExtension(%d to 120) error = %v, want ErrInvalidProof", k, o, err)
			}
		}
	}
}

func TestCheckExtensionErrors(t *testing.T) {
	m := memLog(t, entries(50))
	c10, c50 := checkpoint(t, m, 10), checkpoint(t, m, 50)
	p, err := auditlog.ProveExtension(10, 50, m)
	if err != nil {
		t.Fatal(err)
	}
	other := c10
	other.Origin = "example.com/another"
	emptyBad := auditlog.Checkpoint{Origin: origin, Hash: c10.Hash}
	empty := checkpoint(t, m, 0)
	for _, tc := range []struct {
		name         string
		proof        tlog.TreeProof
		older, newer auditlog.Checkpoint
		want         error
	}{
		{"another log", p, other, c50, auditlog.ErrOriginMismatch},
		{"newer is shorter", p, c50, c10, auditlog.ErrShortLog},
		{"truncated proof", p[:len(p)-1], c10, c50, auditlog.ErrInvalidProof},
		{"empty older with a wrong hash", nil, emptyBad, c50, auditlog.ErrInvalidProof},
		{"empty older with a proof", p, empty, c50, auditlog.ErrInvalidProof},
		{"same size, another hash (a split view)", nil, c50, checkpoint(t, memLog(t, rewrite(entries(50), 49)), 50), auditlog.ErrInvalidProof},
		{"negative size", nil, auditlog.Checkpoint{Origin: origin, Size: -1}, c50, auditlog.ErrOutOfRange},
	} {
		if err := auditlog.CheckExtension(tc.proof, tc.older, tc.newer); !errors.Is(err, tc.want) {
			t.Errorf("%s: CheckExtension error = %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := auditlog.CheckExtension(nil, empty, c50); err != nil {
		t.Errorf("CheckExtension(empty to 50): %v", err)
	}
	for _, s := range [][2]int64{{-1, 5}, {6, 5}} {
		if _, err := auditlog.ProveExtension(s[0], s[1], m); !errors.Is(err, auditlog.ErrOutOfRange) {
			t.Errorf("ProveExtension(%d, %d) error = %v, want ErrOutOfRange", s[0], s[1], err)
		}
	}
}

// TestHugeSizes asks for a proof or a checkpoint at a tree size
// far past the log (a size read from an untrusted checkpoint, say). The
// package promises ErrOutOfRange for "an entry index or a tree size outside
// the log", and the project no hangs. For sizes above 2^62 the calls never
// returned: tlog's maxpow2 loops forever (its doubling overflows) before
// any hash is read (from an adversarial trial). Sizes above MaxSize are
// now ErrOutOfRange, in a checkpoint's text too.
func TestHugeSizes(t *testing.T) {
	var m auditlog.MemoryHashes
	for i := range 5 {
		if _, err := m.Append(fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	const huge = math.MaxInt64
	for name, call := range map[string]func() error{
		"ProveEntry(0, MaxInt64)":     func() error { _, err := auditlog.ProveEntry(0, huge, &m); return err },
		"ProveExtension(1, MaxInt64)": func() error { _, err := auditlog.ProveExtension(1, huge, &m); return err },
		"NewCheckpoint(MaxInt64)":     func() error { _, err := auditlog.NewCheckpoint("o", huge, &m); return err },
		"CheckEntry at MaxInt64": func() error {
			return auditlog.CheckEntry(nil, auditlog.Checkpoint{Origin: "o", Size: huge}, 0, []byte("entry 0"))
		},
		"CheckExtension to MaxInt64": func() error {
			return auditlog.CheckExtension(nil, auditlog.Checkpoint{Origin: "o", Size: 1}, auditlog.Checkpoint{Origin: "o", Size: huge})
		},
		"CheckLog at MaxInt64": func() error {
			_, err := auditlog.CheckLog(auditlog.Checkpoint{Origin: "o", Size: huge}, func(func([]byte, error) bool) {}, &m)
			return err
		},
		"ParseCheckpoint of size MaxInt64": func() error {
			_, err := auditlog.ParseCheckpoint([]byte(fmt.Sprintf("o\n%d\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", int64(huge))))
			return err
		},
	} {
		done := make(chan error, 1)
		go func() { done <- call() }() // left running if it hangs
		select {
		case err := <-done:
			if !errors.Is(err, auditlog.ErrOutOfRange) {
				t.Errorf("%s on a log of 5 entries: %v, want ErrOutOfRange", name, err)
			}
		case <-time.After(5 * time.Second): // it needs microseconds
			t.Errorf("%s on a log of 5 entries: no answer after 5 s; want an error such as ErrOutOfRange", name)
		}
	}
}

// zeroHashes reads a zero hash for any stored hash index: a log as large
// as asked, for calls that only do tree arithmetic on its size.
type zeroHashes struct{}

func (zeroHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return make([]tlog.Hash, len(indexes)), nil
}

// TestMaxSize checks the edge of MaxSize: a checkpoint of MaxSize entries
// can be made and a proof at that size checked, and MaxSize+1 is
// ErrOutOfRange. With MaxSize 2^62, NewCheckpoint(MaxSize) never returned:
// tlog's maxpow2 of 2^62+1 doubles past 2^63.
func TestMaxSize(t *testing.T) {
	const m = auditlog.MaxSize
	for name, call := range map[string]func() error{
		"NewCheckpoint(MaxSize)": func() error { _, err := auditlog.NewCheckpoint("o", m, zeroHashes{}); return err },
		"ProveEntry(MaxSize-1, MaxSize)": func() error {
			_, err := auditlog.ProveEntry(m-1, m, zeroHashes{})
			return err
		},
		"ProveExtension(MaxSize-1, MaxSize)": func() error {
			_, err := auditlog.ProveExtension(m-1, m, zeroHashes{})
			return err
		},
	} {
		done := make(chan error, 1)
		go func() { done <- call() }() // left running if it hangs
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(5 * time.Second): // it needs microseconds
			t.Errorf("%s: no answer after 5 s", name)
		}
	}
	if _, err := auditlog.NewCheckpoint("o", m+1, zeroHashes{}); !errors.Is(err, auditlog.ErrOutOfRange) {
		t.Errorf("NewCheckpoint(MaxSize+1): %v, want ErrOutOfRange", err)
	}
}
