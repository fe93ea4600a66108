package residency

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/provider"
	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// statusChanges returns n changes of data center statuses, from the i-th.
func statusChanges(i, n int) []Change {
	out := make([]Change, n)
	for k := range out {
		at := time.Date(2026, 11, 29, 5, 0, 0, i+k, time.UTC)
		out[k] = Change{DataCenter: &DataCenterState{ID: fmt.Sprintf("dc-%d", i+k), Status: provider.Draining, Changed: at, Version: 1}}
	}
	return out
}

// logPlaces returns where the file's log records are: the indexes in the
// log bucket and those in the tail, and the bytes the tail takes.
func logPlaces(t *testing.T, s *fileStore) (inLog, inTail []int64, tail int) {
	t.Helper()
	s.db.View(func(tx *bolt.Tx) error {
		tx.Bucket(bucketLog).ForEach(func(k, _ []byte) error {
			inLog = append(inLog, int64(binary.BigEndian.Uint64(k)))
			return nil
		})
		meta := tx.Bucket(bucketMeta)
		tail = tailSize(meta)
		c := meta.Cursor()
		for k, _ := c.Seek(tailPrefix); k != nil && bytes.HasPrefix(k, tailPrefix); k, _ = c.Next() {
			inTail = append(inTail, int64(binary.BigEndian.Uint64(k[len(tailPrefix):])))
		}
		return nil
	})
	return inLog, inTail, tail
}

// sameLog checks that the file store's log reads as ref's: size, entries
// from several indexes, every stored hash.
func sameLog(t *testing.T, s *fileStore, ref LogStore) int64 {
	t.Helper()
	ctx := context.Background()
	n, err := s.LogSize(ctx)
	want, _ := ref.LogSize(ctx)
	if err != nil || n != want {
		t.Fatalf("LogSize = %d, %v; want %d", n, err, want)
	}
	for _, from := range []int64{0, n / 2, max(n-3, 0), n - 1, n} {
		var got, wantEntries []string
		if err := s.LogEntries(ctx, from, func(i int64, e []byte) error { got = append(got, fmt.Sprint(i, string(e))); return nil }); err != nil {
			t.Fatalf("LogEntries(%d): %v", from, err)
		}
		ref.LogEntries(ctx, from, func(i int64, e []byte) error { wantEntries = append(wantEntries, fmt.Sprint(i, string(e))); return nil })
		if diff := cmp.Diff(wantEntries, got); diff != "" {
			t.Fatalf("LogEntries(%d) of %d mismatch (-want +got):\n%s", from, n, diff)
		}
	}
	indexes := make([]int64, tlog.StoredHashCount(n))
	for i := range indexes {
		indexes[i] = int64(i)
	}
	got, err := s.ReadHashes(ctx, indexes)
	if err != nil {
		t.Fatal(err)
	}
	wantHashes, _ := ref.ReadHashes(ctx, indexes)
	if diff := cmp.Diff(wantHashes, got); diff != "" {
		t.Fatalf("ReadHashes of a log of %d mismatch (-want +got):\n%s", n, diff)
	}
	return n
}

// TestFileStoreLogTail: the records of small commits gather in the tail
// and move to the log bucket when it is full, those of a large commit go
// to the log bucket, and through it all (and a reopen) the log reads as
// a MemoryStore's: same entries, same stored hashes, a log CheckLog
// accepts.
func TestFileStoreLogTail(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tail.db")
	s, err := openFileStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ref := NewMemoryStore()
	next := 0
	apply := func(n int) {
		t.Helper()
		changes := statusChanges(next, n)
		next += n
		if err := s.Apply(ctx, changes); err != nil {
			t.Fatal(err)
		}
		ref.Apply(ctx, statusChanges(next-n, n))
	}
	var tailUsed, moved bool
	check := func() (inLog, inTail []int64) {
		t.Helper()
		size := sameLog(t, s, ref)
		inLog, inTail, bytes := logPlaces(t, s)
		if bytes > tailRoom {
			t.Fatalf("the tail takes %d bytes, more than %d", bytes, tailRoom)
		}
		all := append(append([]int64(nil), inLog...), inTail...)
		for i, x := range all {
			if x != int64(i) {
				t.Fatalf("log bucket %v then tail %v: not 0 to %d in order", inLog, inTail, size-1)
			}
		}
		tailUsed = tailUsed || len(inTail) > 0
		moved = moved || len(inTail) > 0 && len(inLog) > 0
		return inLog, inTail
	}
	for range 30 {
		apply(1)
		check()
	}
	if !tailUsed || !moved {
		t.Fatalf("after 30 commits of one change: tail used %v, moved to the log bucket %v", tailUsed, moved)
	}
	apply(20) // more than half the tail's room
	if _, inTail := check(); len(inTail) != 0 {
		t.Errorf("after a large commit the tail holds %v, want nothing", inTail)
	}
	for range 3 {
		apply(1)
		check()
	}
	// Reopened, the store loads its frontier from the tail and goes on.
	s.Close()
	if s, err = openFileStore(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 10 {
		apply(1)
		check()
	}
	n, _ := s.LogSize(ctx)
	var entries [][]byte
	s.LogEntries(ctx, 0, func(_ int64, e []byte) error { entries = append(entries, e); return nil })
	empty, _ := auditlog.NewCheckpoint("t", 0, nil)
	got, err := auditlog.CheckLog(empty, auditlog.Entries(entries), HashReader(ctx, s))
	if err != nil || got.Size != n {
		t.Fatalf("CheckLog = %v, %v; want a checkpoint of %d", got, err, n)
	}
}

// TestFileStoreLogTailDamage: a record missing from the middle of the
// tail, or one whose checksum fails, is ErrCorrupt.
func TestFileStoreLogTailDamage(t *testing.T) {
	ctx := context.Background()
	for name, damage := range map[string]func(meta *bolt.Bucket, k []byte) error{
		"record removed": func(meta *bolt.Bucket, k []byte) error { return meta.Delete(k) },
		"record changed": func(meta *bolt.Bucket, k []byte) error {
			v := bytes.Clone(meta.Get(k))
			v[len(v)/2] ^= 1
			return meta.Put(k, v)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tail.db")
			s, err := openFileStore(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := s.Apply(ctx, statusChanges(i, 1)); err != nil {
					t.Fatal(err)
				}
			}
			if _, inTail, _ := logPlaces(t, s); len(inTail) != 3 {
				t.Fatalf("tail %v, want entries 0 to 2", inTail)
			}
			s.db.Update(func(tx *bolt.Tx) error { return damage(tx.Bucket(bucketMeta), tailKey(1)) })
			err = s.LogEntries(ctx, 0, func(int64, []byte) error { return nil })
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("LogEntries: %v, want ErrCorrupt", err)
			}
			s.Close()
		})
	}
}

// TestFileStoreFormat6: a file of format 6 (the log bucket, no tail) reads
// as it is when opened read-only, and becomes the current format when
// opened for writing, its log going on; a file that says 6 but holds a
// tail is damaged.
func TestFileStoreFormat6(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v6.db")
	s, err := openFileStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ref := NewMemoryStore()
	for i := range 9 {
		s.Apply(ctx, statusChanges(i, 1))
		ref.Apply(ctx, statusChanges(i, 1))
	}
	// What format 6 wrote: every record in the log bucket.
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := flushTail(tx.Bucket(bucketLog), tx.Bucket(bucketMeta)); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte("6"))
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	ro, err := openStoreFile(ctx, path, true)
	if err != nil {
		t.Fatalf("read-only open of format 6: %v", err)
	}
	sameLog(t, ro, ref)
	ro.Close()
	if v := fileFormatOf(t, path); v != "6" {
		t.Fatalf("format after a read-only open = %q, want 6", v)
	}
	s, err = openFileStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if v := storeFormatOf(s); v != fileFormat {
		t.Fatalf("format after opening for writing = %q, want %s", v, fileFormat)
	}
	for i := 9; i < 12; i++ {
		s.Apply(ctx, statusChanges(i, 1))
		ref.Apply(ctx, statusChanges(i, 1))
	}
	sameLog(t, s, ref)
	// Format 6 with a tail: damage (a flipped bit of "7"), not a file to
	// read in a format its records are not in.
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte("6")) })
	s.Close()
	if _, err := openFileStore(ctx, path); !errors.Is(err, ErrCorrupt) {
		t.Errorf("format 6 holding a tail: %v, want ErrCorrupt", err)
	}
}

func fileFormatOf(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	db.View(func(tx *bolt.Tx) error { v = string(tx.Bucket(bucketMeta).Get(keyFormat)); return nil })
	return v
}

func storeFormatOf(s *fileStore) string {
	var v string
	s.db.View(func(tx *bolt.Tx) error { v = string(tx.Bucket(bucketMeta).Get(keyFormat)); return nil })
	return v
}

// TestFileStoreFormat7: a file of format 7 (every log entry stored as its
// JSON) reads as it is when opened read-only, and becomes format 8 when
// opened for writing, its old entries read as they are and its new ones
// stored in binary, the log reading throughout as a MemoryStore's.
func TestFileStoreFormat7(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v7.db")
	s, err := openFileStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ref := NewMemoryStore()
	apply := func(changes []Change) {
		t.Helper()
		if err := s.Apply(ctx, changes); err != nil {
			t.Fatal(err)
		}
		ref.Apply(ctx, changes)
	}
	for i := range 9 {
		apply(statusChanges(i, 1)) // in the tail
	}
	apply(statusChanges(9, 20)) // in the log bucket
	apply(statusChanges(29, 1))
	if got := storedForms(t, s); got != [2]int{30, 0} {
		t.Fatalf("entries in binary, as JSON = %v, want all 30 in binary", got)
	}
	// What format 7 wrote: every entry as its JSON.
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range []*bolt.Bucket{tx.Bucket(bucketLog), tx.Bucket(bucketMeta)} {
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				index := k
				if bytes.HasPrefix(k, tailPrefix) {
					index = k[len(tailPrefix):]
				} else if b != tx.Bucket(bucketLog) {
					continue
				}
				i := int64(binary.BigEndian.Uint64(index))
				hashes, e, err := splitEntry(index, v, i)
				if err != nil {
					return err
				}
				js, err := jsonOfStored(nil, e, nil)
				if err != nil {
					return err
				}
				if err := b.Put(bytes.Clone(k), seal(kindLogEntry, index, append(bytes.Clone(hashes), js...))); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte("7"))
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	ro, err := openStoreFile(ctx, path, true)
	if err != nil {
		t.Fatalf("read-only open of format 7: %v", err)
	}
	if got := storedForms(t, ro); got != [2]int{0, 30} {
		t.Fatalf("entries in binary, as JSON = %v, want all 30 as JSON", got)
	}
	sameLog(t, ro, ref)
	ro.Close()
	if v := fileFormatOf(t, path); v != "7" {
		t.Fatalf("format after a read-only open = %q, want 7", v)
	}
	if s, err = openFileStore(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := storeFormatOf(s); v != fileFormat {
		t.Fatalf("format after opening for writing = %q, want %s", v, fileFormat)
	}
	apply(statusChanges(30, 1))
	apply(statusChanges(31, 20))
	sameLog(t, s, ref)
	if got := storedForms(t, s); got != [2]int{21, 30} {
		t.Fatalf("entries in binary, as JSON = %v, want the 21 new ones in binary", got)
	}
}

// storedForms returns how many of the log's entries are stored in binary
// and how many as JSON.
func storedForms(t *testing.T, s *fileStore) (n [2]int) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		count := func(k, v []byte) error {
			_, e, err := splitEntry(k, v, int64(binary.BigEndian.Uint64(k)))
			if err != nil {
				return err
			}
			if e[0] == binaryEntry {
				n[0]++
			} else {
				n[1]++
			}
			return nil
		}
		if err := tx.Bucket(bucketLog).ForEach(count); err != nil {
			return err
		}
		c := tx.Bucket(bucketMeta).Cursor()
		for k, v := c.Seek(tailPrefix); k != nil && bytes.HasPrefix(k, tailPrefix); k, v = c.Next() {
			if err := count(k[len(tailPrefix):], v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFileStoreBinaryEntryDamage: a binary entry that does not decode,
// its checksum made right, is ErrCorrupt, not an entry.
func TestFileStoreBinaryEntryDamage(t *testing.T) {
	ctx := context.Background()
	s, err := openFileStore(ctx, filepath.Join(t.TempDir(), "damage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Apply(ctx, statusChanges(0, 1)); err != nil {
		t.Fatal(err)
	}
	for name, entry := range map[string][]byte{
		"unknown kind of change":  {binaryEntry, 9},
		"cut short":               {binaryEntry, entryDataCenter, 4, 'd', 'c'},
		"trailing bytes":          append(appendStoredEntry(nil, &statusChanges(0, 1)[0], nil), 0),
		"neither binary nor JSON": {0x02, 1, 2},
	} {
		k := indexKey(0)
		s.db.Update(func(tx *bolt.Tx) error {
			hashes, _, err := readEntry(tx, 0)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(tailKey(0), seal(kindLogEntry, k, append(bytes.Clone(hashes), entry...)))
		})
		err := s.LogEntries(ctx, 0, func(int64, []byte) error { return nil })
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: LogEntries: %v, want ErrCorrupt", name, err)
		}
	}
}
