package auditlog_test

import (
	"errors"
	"iter"
	"testing"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/tlog"
)

// rewrite returns a copy of es with entry i replaced.
func rewrite(es [][]byte, i int) [][]byte {
	out := append([][]byte(nil), es...)
	out[i] = []byte("rewritten")
	return out
}

// failAt yields es, then fails at index i instead of yielding it.
func failAt(es [][]byte, i int, err error) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for j, e := range es {
			if j == i {
				yield(nil, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func TestCheckLog(t *testing.T) {
	const size = 2500 // more than two comparison batches of stored hashes
	honest := entries(size)
	stored := memLog(t, honest)
	head := checkpoint(t, stored, size)
	readErr := errors.New("disk on fire")
	for _, tc := range []struct {
		name    string
		c       int64 // size of the checkpoint the auditor kept
		entries iter.Seq2[[]byte, error]
		stored  tlog.HashReader
		want    error
		entry   bool  // whether the error is an EntryError
		index   int64 // the entry it names
	}{
		{name: "honest log at the checkpoint", c: size, entries: auditlog.Entries(honest), stored: stored},
		{name: "honest log that grew", c: 1000, entries: auditlog.Entries(honest), stored: stored},
		{name: "honest log from empty", c: 0, entries: auditlog.Entries(honest), stored: stored},
		{name: "honest log without stored hashes", c: 1000, entries: auditlog.Entries(honest)},
		{name: "cut short", c: size, entries: auditlog.Entries(honest[:size-1]), stored: stored,
			want: auditlog.ErrShortLog},
		{name: "cut to nothing", c: 1, entries: auditlog.Entries(nil), stored: stored,
			want: auditlog.ErrShortLog},
		{name: "entry rewritten", c: size, entries: auditlog.Entries(rewrite(honest, 1500)), stored: stored,
			want: auditlog.ErrEntryMismatch, entry: true, index: 1500},
		{name: "first entry rewritten", c: size, entries: auditlog.Entries(rewrite(honest, 0)), stored: stored,
			want: auditlog.ErrEntryMismatch, entry: true, index: 0},
		{name: "entry after the checkpoint rewritten", c: 10, entries: auditlog.Entries(rewrite(honest, 2400)), stored: stored,
			want: auditlog.ErrEntryMismatch, entry: true, index: 2400},
		{name: "entry rewritten, no stored hashes", c: size, entries: auditlog.Entries(rewrite(honest, 7)),
			want: auditlog.ErrTreeMismatch},
		{name: "entry and its hashes rewritten", c: size, entries: auditlog.Entries(rewrite(honest, 7)), stored: memLog(t, rewrite(honest, 7)),
			want: auditlog.ErrTreeMismatch},
		{name: "entry inserted and rehashed", c: size, entries: auditlog.Entries(append([][]byte{[]byte("new")}, honest...)), stored: memLog(t, append([][]byte{[]byte("new")}, honest...)),
			want: auditlog.ErrTreeMismatch},
		{name: "two entries swapped and rehashed", c: size, entries: auditlog.Entries(swap(honest, 3, 4)), stored: memLog(t, swap(honest, 3, 4)),
			want: auditlog.ErrTreeMismatch},
		{name: "stored hashes missing", c: size, entries: auditlog.Entries(honest), stored: memLog(t, honest[:2000]),
			want: auditlog.ErrOutOfRange, entry: true, index: 2000},
		{name: "reading fails", c: size, entries: failAt(honest, 42, readErr), stored: stored,
			want: readErr, entry: true, index: 42},
	} {
		c := checkpoint(t, stored, tc.c)
		got, err := auditlog.CheckLog(c, tc.entries, tc.stored)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: CheckLog: %v", tc.name, err)
			} else if diff := cmp.Diff(head, got); diff != "" {
				t.Errorf("%s: CheckLog mismatch (-want +got):\n%s", tc.name, diff)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: CheckLog error = %v, want %v", tc.name, err, tc.want)
			continue
		}
		var ee *auditlog.EntryError
		if isEntry := errors.As(err, &ee); isEntry != tc.entry {
			t.Errorf("%s: CheckLog error %v: is an EntryError: %v, want %v", tc.name, err, isEntry, tc.entry)
		} else if isEntry && ee.Index != tc.index {
			t.Errorf("%s: CheckLog error %v names entry %d, want %d", tc.name, err, ee.Index, tc.index)
		}
	}
}

func swap(es [][]byte, i, j int) [][]byte {
	out := append([][]byte(nil), es...)
	out[i], out[j] = out[j], out[i]
	return out
}

func TestCheckLogEmpty(t *testing.T) {
	empty := checkpoint(t, memLog(t, nil), 0)
	got, err := auditlog.CheckLog(empty, auditlog.Entries(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(empty, got); diff != "" {
		t.Errorf("CheckLog(empty) mismatch (-want +got):\n%s", diff)
	}
	bad := empty
	bad.Hash = tlog.Hash{1}
	if _, err := auditlog.CheckLog(bad, auditlog.Entries(entries(3)), nil); !errors.Is(err, auditlog.ErrTreeMismatch) {
		t.Errorf("CheckLog(empty checkpoint with a wrong hash) error = %v, want ErrTreeMismatch", err)
	}
	if _, err := auditlog.CheckLog(auditlog.Checkpoint{Origin: origin, Size: -1}, auditlog.Entries(nil), nil); !errors.Is(err, auditlog.ErrOutOfRange) {
		t.Errorf("CheckLog(size -1) error = %v, want ErrOutOfRange", err)
	}
}

// TestCheckLogEverySize checks CheckLog's recomputed head against the
// stored one for every log size up to 300, from every older size.
func TestCheckLogEverySize(t *testing.T) {
	es := entries(300)
	m := memLog(t, es)
	for n := int64(0); n <= 300; n++ {
		head := checkpoint(t, m, n)
		for _, o := range []int64{0, n / 3, n / 2, n} {
			got, err := auditlog.CheckLog(checkpoint(t, m, o), auditlog.Entries(es[:n]), m)
			if err != nil {
				t.Fatalf("CheckLog(%d of %d): %v", o, n, err)
			}
			if diff := cmp.Diff(head, got); diff != "" {
				t.Fatalf("CheckLog(%d of %d) mismatch (-want +got):\n%s", o, n, diff)
			}
		}
	}
}

func TestEntryErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  *auditlog.EntryError
		want string
	}{
		{&auditlog.EntryError{Index: 7, Err: auditlog.ErrEntryMismatch}, "auditlog: entry 7: entry does not match its stored hashes"},
		{&auditlog.EntryError{Index: 3, Err: errors.New("disk on fire")}, "auditlog: entry 3: disk on fire"},
		{&auditlog.EntryError{Index: 1}, "auditlog: entry 1"},
	} {
		if diff := cmp.Diff(tc.want, tc.err.Error()); diff != "" {
			t.Errorf("Error() mismatch (-want +got):\n%s", diff)
		}
	}
}
