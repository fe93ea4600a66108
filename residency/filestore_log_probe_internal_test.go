package residency

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// bigStatus returns a status change whose entry is about size bytes.
func bigStatus(i, size int) Change {
	at := time.Date(2026, 11, 29, 5, 0, 0, i, time.UTC)
	return Change{DataCenter: &DataCenterState{ID: fmt.Sprintf("big-%d-%s", i, strings.Repeat("x", size)), Status: provider.Draining, Changed: at, Version: 1}}
}

// TestFormat9EveryFromEveryHash: commits of many sizes (1 change, tail
// room edges, a single entry larger than chunkRoom, one larger than
// tailMax), and after each: LogEntries from every index and every stored
// hash read one at a time in reverse order, against a MemoryStore; then
// the same read-only.
func TestFormat9EveryFromEveryHash(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	s, err := openFileStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ref := NewMemoryStore()
	next := 0
	apply := func(changes []Change) {
		t.Helper()
		if err := s.Apply(ctx, changes); err != nil {
			t.Fatal(err)
		}
		if err := ref.Apply(ctx, changes); err != nil {
			t.Fatal(err)
		}
		next += len(changes)
	}
	check := func(s LogStore) {
		t.Helper()
		n, _ := ref.LogSize(ctx)
		for from := int64(0); from <= n+1; from++ {
			var got, want []string
			if err := s.LogEntries(ctx, from, func(i int64, e []byte) error { got = append(got, fmt.Sprint(i, string(e))); return nil }); err != nil {
				t.Fatalf("LogEntries(%d): %v", from, err)
			}
			ref.LogEntries(ctx, from, func(i int64, e []byte) error { want = append(want, fmt.Sprint(i, string(e))); return nil })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("LogEntries(%d) of %d (-want +got):\n%s", from, n, diff)
			}
		}
		for x := tlog.StoredHashCount(n) - 1; x >= 0; x-- {
			got, err := s.ReadHashes(ctx, []int64{x})
			if err != nil {
				t.Fatalf("ReadHashes(%d): %v", x, err)
			}
			want, _ := ref.ReadHashes(ctx, []int64{x})
			if got[0] != want[0] {
				t.Fatalf("hash %d differs", x)
			}
		}
	}
	sizes := [][2]int{{1, 0}, {1, 900}, {1, 0}, {1, 5000}, {3, 0}, {1, 13000}, {1, 0}, {40, 0}, {1, 0}, {1, 3000}, {1, 3000}, {1, 3000}, {1, 3000}, {2, 0}, {1, 12000}, {1, 0}}
	for _, sz := range sizes {
		var changes []Change
		for k := range sz[0] {
			if sz[1] > 0 {
				changes = append(changes, bigStatus(next+k, sz[1]))
			} else {
				changes = append(changes, statusChanges(next+k, 1)[0])
			}
		}
		apply(changes)
		check(s)
	}
	_, _, _, chunks := logPlaces(t, s)
	t.Logf("chunks (bytes, entries): %v", chunks)
	s.Close()
	ro, err := openStoreFile(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	check(ro)
}

// TestFormat9NegativeFrom: LogEntries from a negative index on the file
// store (a LogStore callers hold directly: storeflag.OpenLog) calls fn
// never and fails with nothing worse than before (format 8: nil); with a
// tail of format 9 it says ErrCorrupt.
func TestFormat9NegativeFrom(t *testing.T) {
	ctx := context.Background()
	s, err := openFileStore(ctx, filepath.Join(t.TempDir(), "n.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Apply(ctx, statusChanges(0, 2)); err != nil {
		t.Fatal(err)
	}
	err = s.LogEntries(ctx, -1, func(int64, []byte) error { return nil })
	if errors.Is(err, ErrCorrupt) {
		t.Errorf("LogEntries(-1) on a sound file: %v", err)
	}
}

// TestFormat9Format8WithoutLogBucket: a damaged file of format 8 whose log
// bucket is gone but whose tail records remain is ErrCorrupt, and the
// store does not keep the file open (a second open is not ErrLocked).
func TestFormat9Format8WithoutLogBucket(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nolog.db")
	s, err := openFileStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Apply(ctx, statusChanges(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := rewriteLogPerEntry(tx, 3, false); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketLog); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte("8"))
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := openFileStore(ctx, path)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("open: %v, want ErrCorrupt", err)
		}
		t.Logf("open: %v", err)
	}
}

// TestFormat9OldFormatsEveryFrom: formats 6, 7 and 8, read-only and
// upgraded then appended to (records, then chunks, then the tail):
// LogEntries from every index and every stored hash one at a time.
func TestFormat9OldFormatsEveryFrom(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		format string
		inTail int
		asJSON bool
	}{{"6", 0, false}, {"7", 5, true}, {"8", 5, false}, {"8", 30, false}} {
		t.Run(tt.format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old.db")
			s, err := openFileStore(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			ref := NewMemoryStore()
			next := 0
			apply := func(n int) {
				t.Helper()
				if err := s.Apply(ctx, statusChanges(next, n)); err != nil {
					t.Fatal(err)
				}
				ref.Apply(ctx, statusChanges(next, n))
				next += n
			}
			check := func(s LogStore) {
				t.Helper()
				n, _ := ref.LogSize(ctx)
				for from := int64(0); from <= n+1; from++ {
					var got, want []string
					if err := s.LogEntries(ctx, from, func(i int64, e []byte) error { got = append(got, fmt.Sprint(i, string(e))); return nil }); err != nil {
						t.Fatalf("LogEntries(%d): %v", from, err)
					}
					ref.LogEntries(ctx, from, func(i int64, e []byte) error { want = append(want, fmt.Sprint(i, string(e))); return nil })
					if diff := cmp.Diff(want, got); diff != "" {
						t.Fatalf("LogEntries(%d) of %d (-want +got):\n%s", from, n, diff)
					}
				}
				for x := tlog.StoredHashCount(n) - 1; x >= 0; x-- {
					got, err := s.ReadHashes(ctx, []int64{x})
					want, _ := ref.ReadHashes(ctx, []int64{x})
					if err != nil || got[0] != want[0] {
						t.Fatalf("ReadHashes(%d): %v", x, err)
					}
				}
			}
			for range 30 {
				apply(1)
			}
			err = s.db.Update(func(tx *bolt.Tx) error {
				if err := rewriteLogPerEntry(tx, tt.inTail, tt.asJSON); err != nil {
					return err
				}
				return tx.Bucket(bucketMeta).Put(keyFormat, []byte(tt.format))
			})
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			ro, err := openStoreFile(ctx, path, true)
			if err != nil {
				t.Fatal(err)
			}
			check(ro)
			ro.Close()
			if s, err = openFileStore(ctx, path); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			check(s)
			for _, n := range []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 20, 1, 60, 1} {
				apply(n)
				check(s)
			}
		})
	}
}

// TestFormat9TailCountChecked: a tail whose header disagrees with its
// packed entries (here: first and count shifted by one, the bytes of two
// entries under a count of one) is ErrCorrupt to the next commit, which
// writes nothing, rather than cut into chunks with a gap.
func TestFormat9TailCountChecked(t *testing.T) {
	ctx := context.Background()
	s, err := openFileStore(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Apply(ctx, statusChanges(0, 2)); err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		first, n, packed, err := openTail(meta.Get(keyTail))
		if err != nil {
			return err
		}
		if first != 0 || n != 2 {
			return fmt.Errorf("the tail holds entries %d to %d, want 0 and 1", first, first+n-1)
		}
		v := binary.AppendUvarint(binary.AppendUvarint(nil, 1), 1)
		return meta.Put(keyTail, seal(kindLogEntry, keyTail, append(v, packed...)))
	})
	if err != nil {
		t.Fatal(err)
	}
	size, _ := s.LogSize(ctx)
	if err := s.Apply(ctx, statusChanges(2, 40)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Apply after the tail's count was changed = %v, want ErrCorrupt", err)
	}
	if after, _ := s.LogSize(ctx); after != size {
		t.Errorf("log size %d after the refused Apply, want %d", after, size)
	}
}
