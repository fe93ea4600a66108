package residency

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
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

// storeWithCommits opens a file store at path and commits status changes
// to it (statusChanges, numbered on), commits[k] in the k-th commit.
func storeWithCommits(t *testing.T, path string, commits ...int) *fileStore {
	t.Helper()
	ctx := context.Background()
	s, err := openFileStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, n := range commits {
		if err := s.Apply(ctx, statusChanges(next, n)); err != nil {
			t.Fatal(err)
		}
		next += n
	}
	return s
}

// logPlaces returns where the file's log entries are: the indexes in the
// log bucket and those in the tail, the bytes of the tail's packed
// entries, and the log bucket's chunks (their values' sizes and entries).
func logPlaces(t *testing.T, s *fileStore) (inLog, inTail []int64, tail int, chunks [][2]int) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketLog).ForEach(func(k, v []byte) error {
			first, n, err := keyRange(k)
			if err != nil {
				return err
			}
			for i := range n {
				inLog = append(inLog, first+i)
			}
			chunks = append(chunks, [2]int{len(v), int(n)})
			return nil
		})
		if err != nil {
			return err
		}
		if v := tx.Bucket(bucketMeta).Get(keyTail); v != nil {
			first, n, packed, err := openTail(v)
			if err != nil {
				return err
			}
			for i := range n {
				inTail = append(inTail, first+i)
			}
			tail = len(packed)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return inLog, inTail, tail, chunks
}

// sameLog checks that the file store's log reads as ref's: its size,
// every stored hash, and entries from several indexes; with every, from
// each index (and one past the end), and each stored hash alone too.
func sameLog(t *testing.T, s *fileStore, ref LogStore, every bool) int64 {
	t.Helper()
	ctx := context.Background()
	n, err := s.LogSize(ctx)
	want, _ := ref.LogSize(ctx)
	if err != nil || n != want {
		t.Fatalf("LogSize = %d, %v; want %d", n, err, want)
	}
	froms := []int64{0, n / 2, max(n-3, 0), n - 1, n}
	if every {
		froms = froms[:0]
		for from := range n + 2 {
			froms = append(froms, from)
		}
	}
	for _, from := range froms {
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
	for x := len(indexes) - 1; every && x >= 0; x-- {
		if h, err := s.ReadHashes(ctx, indexes[x:x+1]); err != nil || h[0] != wantHashes[x] {
			t.Fatalf("ReadHashes(%d) alone = %v, %v; want %v", x, h, err, wantHashes[x])
		}
	}
	return n
}

// TestFileStoreLogTail: the entries of small commits gather in the tail
// and move to the log bucket, in chunks, when it is full; a group commit
// of a dozen changes waits in the tail too, the log bucket written one
// commit in three; those of a commit larger than the tail's most go to
// the log bucket with the tail's. Through it all (and a reopen) the log
// reads as a MemoryStore's: same entries, same stored hashes, a log
// CheckLog accepts.
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
		size := sameLog(t, s, ref, false)
		inLog, inTail, bytes, chunks := logPlaces(t, s)
		if bytes > tailMax {
			t.Fatalf("the tail takes %d bytes, more than %d", bytes, tailMax)
		}
		for _, c := range chunks {
			if c[0] > chunkRoom && c[1] > 1 {
				t.Fatalf("a chunk of %d entries takes %d bytes, more than %d", c[1], c[0], chunkRoom)
			}
		}
		all := append(append([]int64(nil), inLog...), inTail...)
		if int64(len(all)) != size {
			t.Fatalf("log bucket %v then tail %v: not 0 to %d", inLog, inTail, size-1)
		}
		for i, x := range all {
			if x != int64(i) {
				t.Fatalf("log bucket %v then tail %v: not 0 to %d in order", inLog, inTail, size-1)
			}
		}
		tailUsed = tailUsed || len(inTail) > 0
		moved = moved || len(inTail) > 0 && len(inLog) > 0
		return inLog, inTail
	}
	for range 40 {
		apply(1)
		check()
	}
	if !tailUsed || !moved {
		t.Fatalf("after 40 commits of one change: tail used %v, moved to the log bucket %v", tailUsed, moved)
	}
	if _, _, _, chunks := logPlaces(t, s); len(chunks) == 0 || chunks[0][1] < 2 {
		t.Errorf("chunks (bytes, entries) %v: want several entries a chunk", chunks)
	}
	// Group commits of 16 changes: the log bucket is written one time in
	// three or less.
	writes := 0
	for range 12 {
		before, _ := check()
		apply(16)
		if after, _ := check(); len(after) != len(before) {
			writes++
		}
	}
	if writes > 4 {
		t.Errorf("12 commits of 16 changes wrote the log bucket %d times, want at most 4", writes)
	}
	apply(150) // more than the tail's most
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

// TestFileStoreLogDamage: a chunk or tail whose checksum fails, a chunk
// missing from the middle, a chunk or tail that says other entries than
// it holds (its checksum made right), all are ErrCorrupt, to LogEntries
// and to ReadHashes alike.
func TestFileStoreLogDamage(t *testing.T) {
	ctx := context.Background()
	// reseal returns the record of key k with payload p, its checksum right.
	reseal := func(k, p []byte) []byte { return seal(kindLogEntry, k, bytes.Clone(p)) }
	tests := []struct {
		name   string
		damage func(log, meta *bolt.Bucket) error
	}{
		{"chunk changed", func(log, meta *bolt.Bucket) error {
			k, v := log.Cursor().First()
			v = bytes.Clone(v)
			v[len(v)/2] ^= 1
			return log.Put(bytes.Clone(k), v)
		}},
		{"chunk removed", func(log, meta *bolt.Bucket) error {
			c := log.Cursor()
			c.First()
			k, _ := c.Next()
			return log.Delete(bytes.Clone(k))
		}},
		{"chunk counting one entry more", func(log, meta *bolt.Bucket) error {
			k, v := log.Cursor().First()
			first, n, p, err := openChunk(k, v)
			if err != nil {
				return err
			}
			if err := log.Delete(bytes.Clone(k)); err != nil {
				return err
			}
			k = chunkKey(first, int(n)+1)
			return log.Put(k, reseal(k, p))
		}},
		{"chunk with a byte more", func(log, meta *bolt.Bucket) error {
			k, v := log.Cursor().First()
			_, _, p, err := openChunk(k, v)
			if err != nil {
				return err
			}
			k = bytes.Clone(k)
			return log.Put(k, reseal(k, append(bytes.Clone(p), 0)))
		}},
		{"tail changed", func(log, meta *bolt.Bucket) error {
			v := bytes.Clone(meta.Get(keyTail))
			v[len(v)/2] ^= 1
			return meta.Put(keyTail, v)
		}},
		{"tail starting one entry later", func(log, meta *bolt.Bucket) error {
			first, n, p, err := openTail(meta.Get(keyTail))
			if err != nil {
				return err
			}
			h := binary.AppendUvarint(binary.AppendUvarint(nil, uint64(first+1)), uint64(n))
			return meta.Put(keyTail, reseal(keyTail, append(h, p...)))
		}},
		{"tail cut short", func(log, meta *bolt.Bucket) error {
			first, n, p, err := openTail(meta.Get(keyTail))
			if err != nil {
				return err
			}
			h := binary.AppendUvarint(binary.AppendUvarint(nil, uint64(first)), uint64(n))
			return meta.Put(keyTail, reseal(keyTail, append(h, p[:len(p)-1]...)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storeWithCommits(t, filepath.Join(t.TempDir(), "damage.db"), 150, 1, 1, 1)
			defer s.Close()
			if inLog, inTail, _, chunks := logPlaces(t, s); len(inLog) != 150 || len(inTail) != 3 || len(chunks) < 3 {
				t.Fatalf("log bucket %d entries in %d chunks, tail %v; want 150 in chunks and 3", len(inLog), len(chunks), inTail)
			}
			if err := s.db.Update(func(tx *bolt.Tx) error { return tt.damage(tx.Bucket(bucketLog), tx.Bucket(bucketMeta)) }); err != nil {
				t.Fatal(err)
			}
			err := s.LogEntries(ctx, 0, func(int64, []byte) error { return nil })
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("LogEntries: %v, want ErrCorrupt", err)
			}
			indexes := make([]int64, tlog.StoredHashCount(153))
			for i := range indexes {
				indexes[i] = int64(i)
			}
			if _, err := s.ReadHashes(ctx, indexes); !errors.Is(err, ErrCorrupt) {
				t.Errorf("ReadHashes: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestFileStoreOldFormats: a file of format 6 (a record per entry, all in
// the log bucket), 7 (the same as JSON, the newest in the tail's records
// in the meta bucket) or 8 (as 7, entries in binary) reads as it is when
// opened read-only, and becomes format 9 when opened for writing: its
// tail's records move to the log bucket as they are, its old records read
// as they are, its new entries are stored in chunks, the log reading
// throughout as a MemoryStore's.
func TestFileStoreOldFormats(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		format string
		inTail int
		asJSON bool
	}{
		{"6", 0, false},
		{"7", 5, true},
		{"8", 5, false},
		{"8", 30, false},
	} {
		t.Run("format "+tt.format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old.db")
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
				apply(statusChanges(i, 1))
			}
			apply(statusChanges(9, 20))
			apply(statusChanges(29, 1))
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
			wantForms := [2]int{30, 0}
			if tt.asJSON {
				wantForms = [2]int{0, 30}
			}
			ro, err := openStoreFile(ctx, path, true)
			if err != nil {
				t.Fatalf("read-only open: %v", err)
			}
			if got := storedForms(t, ro); got != wantForms {
				t.Fatalf("entries in binary, as JSON = %v, want %v", got, wantForms)
			}
			sameLog(t, ro, ref, true)
			ro.Close()
			if v := fileFormatOf(t, path); v != tt.format {
				t.Fatalf("format after a read-only open = %q, want %s", v, tt.format)
			}
			if s, err = openFileStore(ctx, path); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if v := storeFormatOf(s); v != fileFormat {
				t.Fatalf("format after opening for writing = %q, want %s", v, fileFormat)
			}
			var records bool
			s.db.View(func(tx *bolt.Tx) error { records, _ = oldTail(tx.Bucket(bucketMeta)); return nil })
			if records {
				t.Fatal("after the upgrade the meta bucket still holds records of the old tail")
			}
			sameLog(t, s, ref, true)
			// Records, then chunks, then the tail: small commits, then
			// larger ones, the log read after each.
			next := 30
			for _, n := range []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 20, 1, 150, 1} {
				apply(statusChanges(next, n))
				next += n
				sameLog(t, s, ref, true)
			}
			if got, want := storedForms(t, s), [2]int{wantForms[0] + next - 30, wantForms[1]}; got != want {
				t.Fatalf("entries in binary, as JSON = %v, want %v", got, want)
			}
		})
	}
}

// TestFileStoreTailOfAnotherFormat: a file of format 8 that holds a tail
// of format 9, or of format 9 holding records of the tail of format 8, is
// damaged (a flipped bit of the format), not a file to read in a format
// its records are not in.
func TestFileStoreTailOfAnotherFormat(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name, format string
		inTail       int
	}{
		{"format 8 holding a tail of format 9", "8", -1},
		{"format 6 holding a tail of format 9", "6", -1},
		{"format 9 holding a tail of format 8", "9", 3},
		{"format 6 holding a tail of format 8", "6", 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tail.db")
			s := storeWithCommits(t, path, 1, 1, 1, 1, 1)
			err := s.db.Update(func(tx *bolt.Tx) error {
				if tt.inTail >= 0 {
					if err := rewriteLogPerEntry(tx, tt.inTail, false); err != nil {
						return err
					}
				}
				return tx.Bucket(bucketMeta).Put(keyFormat, []byte(tt.format))
			})
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, readOnly := range []bool{true, false} {
				if s, err := openStoreFile(ctx, path, readOnly); !errors.Is(err, ErrCorrupt) {
					if err == nil {
						s.Close()
					}
					t.Errorf("open (read-only %v): %v, want ErrCorrupt", readOnly, err)
				}
			}
		})
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

// storedForms returns how many of the log's entries are stored in binary
// and how many as JSON.
func storedForms(t *testing.T, s *fileStore) (n [2]int) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		size, err := logSize(tx)
		if err != nil {
			return err
		}
		r := entryReader{tx: tx}
		for i := range size {
			_, e, err := r.read(i)
			if err != nil {
				return err
			}
			if e[0] == binaryEntry {
				n[0]++
			} else {
				n[1]++
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
	s := storeWithCommits(t, filepath.Join(t.TempDir(), "damage.db"), 1)
	defer s.Close()
	for name, entry := range map[string][]byte{
		"unknown kind of change":  {binaryEntry, 9},
		"cut short":               {binaryEntry, entryDataCenter, 4, 'd', 'c'},
		"trailing bytes":          append(appendStoredEntry(nil, &statusChanges(0, 1)[0], nil), 0),
		"neither binary nor JSON": {0x02, 1, 2},
	} {
		s.db.Update(func(tx *bolt.Tx) error {
			hashes, _, err := readEntry(tx, 0)
			if err != nil {
				return err
			}
			p := binary.AppendUvarint([]byte{0, 1}, uint64(len(entry))) // entry 0, one entry
			p = append(append(append([]byte{0, 1}, hashes...), p[2:]...), entry...)
			return tx.Bucket(bucketMeta).Put(keyTail, seal(kindLogEntry, keyTail, p))
		})
		err := s.LogEntries(ctx, 0, func(int64, []byte) error { return nil })
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: LogEntries: %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzPackedEntries: whatever the bytes of a chunk or tail, reading them
// fails or gives entries that pack back to the same bytes; it never
// panics. Seeds: a chunk and a tail as the store writes them, cut short,
// with a byte more, and a length past the end.
func FuzzPackedEntries(f *testing.F) {
	var b logBatch
	if err := b.prepare(auditlog.Frontier{}, statusChanges(0, 3)); err != nil {
		f.Fatal(err)
	}
	f.Add(b.packed, uint32(0), uint8(3), false)
	f.Add(b.packed[:len(b.packed)-1], uint32(0), uint8(3), false)
	f.Add(append(bytes.Clone(b.packed), 0), uint32(0), uint8(3), false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, uint32(7), uint8(1), false)
	tail := binary.AppendUvarint(binary.AppendUvarint(nil, 0), 3)
	f.Add(append(tail, b.packed...), uint32(0), uint8(0), true)
	f.Fuzz(func(t *testing.T, data []byte, first uint32, n uint8, isTail bool) {
		start, count, p := int64(first), int64(n), data
		if isTail {
			var err error
			if start, count, p, err = openTail(seal(kindLogEntry, keyTail, bytes.Clone(data))); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("openTail: %v, want ErrCorrupt", err)
				}
				return
			}
			count = min(count, 300) // a damaged count: reading fails soon anyway
		}
		var packed []byte
		err := eachPacked(p, start, count, func(i int64, hashes, entry []byte) error {
			if len(hashes) != hashesOf(i)*len(tlog.Hash{}) {
				t.Fatalf("entry %d: %d bytes of hashes", i, len(hashes))
			}
			packed = append(binary.AppendUvarint(append(packed, hashes...), uint64(len(entry))), entry...)
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("eachPacked: %v, want ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(packed, p) {
			t.Fatalf("entries read pack back to %x, were %x", packed, p)
		}
	})
}

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
		sameLog(t, s, ref, true)
	}
	_, _, _, chunks := logPlaces(t, s)
	t.Logf("chunks (bytes, entries): %v", chunks)
	s.Close()
	ro, err := openStoreFile(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	sameLog(t, ro, ref, true)
}

// TestFormat9NegativeFrom: LogEntries from a negative index on the file
// store (a LogStore callers hold directly: storeflag.OpenLog) calls fn
// never and fails with nothing worse than before (format 8: nil); with a
// tail of format 9 it says ErrCorrupt.
func TestFormat9NegativeFrom(t *testing.T) {
	ctx := context.Background()
	s := storeWithCommits(t, filepath.Join(t.TempDir(), "n.db"), 2)
	defer s.Close()
	err := s.LogEntries(ctx, -1, func(int64, []byte) error { return nil })
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
	s := storeWithCommits(t, path, 1, 1, 1, 1, 1)
	err := s.db.Update(func(tx *bolt.Tx) error {
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

// TestFormat9TailCountChecked: a tail whose header disagrees with its
// packed entries (here: first and count shifted by one, the bytes of two
// entries under a count of one) is ErrCorrupt to the next commit, which
// writes nothing, rather than cut into chunks with a gap.
func TestFormat9TailCountChecked(t *testing.T) {
	ctx := context.Background()
	s := storeWithCommits(t, filepath.Join(t.TempDir(), "t.db"), 2)
	defer s.Close()
	err := s.db.Update(func(tx *bolt.Tx) error {
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

// TestFileStoreStaleFrontierReloaded: once a commit has failed, the next
// Apply reads the frontier from the file, not the one it remembers, for
// a commit of one change and for a group commit alike.
func TestFileStoreStaleFrontierReloaded(t *testing.T) {
	ctx := context.Background()
	s := storeWithCommits(t, filepath.Join(t.TempDir(), "stale.db"), 1, 1, 16, 1)
	defer s.Close()
	ref := NewMemoryStore()
	next := 0
	for _, n := range []int{1, 1, 16, 1} {
		mustApply(t, ref, statusChanges(next, n))
		next += n
	}
	for _, n := range []int{1, 16, 1, 150, 2} {
		s.mu.Lock()
		s.frontier, s.stale = auditlog.Frontier{}, true // as if the last commit failed
		s.mu.Unlock()
		if err := s.Apply(ctx, statusChanges(next, n)); err != nil {
			t.Fatalf("Apply of %d changes after a failed commit: %v", n, err)
		}
		mustApply(t, ref, statusChanges(next, n))
		next += n
		sameLog(t, s, ref, false)
		// and the commit after it, with the frontier it left
		if err := s.Apply(ctx, statusChanges(next, n)); err != nil {
			t.Fatalf("Apply of %d changes: %v", n, err)
		}
		mustApply(t, ref, statusChanges(next, n))
		next += n
		sameLog(t, s, ref, false)
	}
}

// TestFileStoreFailedApplyWritesNoEntry: an Apply refused (a conflict, in a
// commit of one change and in a group commit, or a change no Router makes:
// a region out of range) writes nothing, and the log goes on as a
// MemoryStore's. A conflict leaves the frontier stale (the transaction
// ran); an invalid change is refused before anything, and leaves it as it
// was.
func TestFileStoreFailedApplyWritesNoEntry(t *testing.T) {
	ctx := context.Background()
	s := storeWithCommits(t, filepath.Join(t.TempDir(), "fail.db"), 1, 1)
	defer s.Close()
	ref := NewMemoryStore()
	mustApply(t, ref, statusChanges(0, 2))
	next := 2
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bad := Change{
		Placement: Placement{AccountID: "bad", Version: 1, Region: region.Region(200), DataCenter: "linode-eu", Created: at, Updated: at},
		Event:     Event{AccountID: "bad", Version: 1, Time: at, Kind: Placed},
	}
	conflict := statusChanges(0, 1) // dc-0 is at version 1 already
	for _, tc := range []struct {
		name     string
		changes  []Change
		conflict bool
	}{
		{"conflict alone", conflict, true},
		{"conflict in a group", append(statusChanges(1000, 5), conflict...), true},
		{"invalid change", []Change{bad}, false},
		{"invalid change in a group", append(statusChanges(2000, 5), bad), false},
	} {
		size, _ := s.LogSize(ctx)
		s.mu.Lock()
		staleBefore := s.stale
		s.mu.Unlock()
		err := s.Apply(ctx, tc.changes)
		if err == nil || errors.Is(err, ErrConflict) != tc.conflict || errors.Is(err, ErrInvalidChange) == tc.conflict {
			t.Fatalf("%s: Apply = %v; want an error, a conflict: %v, else ErrInvalidChange", tc.name, err, tc.conflict)
		}
		s.mu.Lock()
		stale := s.stale
		s.mu.Unlock()
		if want := tc.conflict || staleBefore; stale != want {
			t.Errorf("%s: the frontier is stale: %v after a failed Apply, want %v", tc.name, stale, want)
		}
		if n, _ := s.LogSize(ctx); n != size {
			t.Errorf("%s: LogSize %d after a failed Apply, was %d", tc.name, n, size)
		}
		var found []string
		s.LoadAccounts(ctx, []string{"bad"}, func(a StoredAccount) error { found = append(found, a.Placement.AccountID); return nil })
		if len(found) != 0 {
			t.Errorf("%s: the failed Apply stored %v", tc.name, found)
		}
		for _, n := range []int{1, 8} {
			if err := s.Apply(ctx, statusChanges(next, n)); err != nil {
				t.Fatalf("%s: Apply of %d changes after: %v", tc.name, n, err)
			}
			mustApply(t, ref, statusChanges(next, n))
			next += n
			sameLog(t, s, ref, false)
		}
	}
}

// mustApply applies changes to the reference store s, or fails the test.
func mustApply(t *testing.T, s Store, changes []Change) {
	t.Helper()
	if err := s.Apply(context.Background(), changes); err != nil {
		t.Fatal(err)
	}
}

// TestFileStoreInvalidStatus: a status record whose status is none of
// provider's (its checksum made right) is damage, whether DataCenters
// reads it or the upgrade of a file of format 4 copies it into the new
// log, which then leaves the file as it was.
func TestFileStoreInvalidStatus(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "status.db")
	s := storeWithCommits(t, path, 1)
	err := s.db.Update(func(tx *bolt.Tx) error {
		st := statusChanges(0, 1)[0].DataCenter
		st.Status = "gone"
		k := []byte(st.ID)
		return tx.Bucket(bucketStatus).Put(k, seal(kindStatus, k, encodeStatus(st)))
	})
	if err != nil {
		t.Fatal(err)
	}
	const want = `data center dc-0 has status "gone"`
	if _, err := s.DataCenters(ctx); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Errorf("DataCenters: %v, want ErrCorrupt saying %s", err, want)
	}
	// The file as format 4 left it: no log, no tail.
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketLog); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		var tail [][]byte
		c := meta.Cursor()
		for k, _ := c.Seek(keyTail); k != nil && bytes.HasPrefix(k, keyTail); k, _ = c.Next() {
			tail = append(tail, bytes.Clone(k))
		}
		for _, k := range tail {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return meta.Put(keyFormat, []byte("4"))
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := openFileStore(ctx, path); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
		if err == nil {
			s.Close()
		}
		t.Errorf("opening the file of format 4 for writing: %v, want ErrCorrupt saying %s", err, want)
	}
	if v := fileFormatOf(t, path); v != "4" {
		t.Errorf("format after the failed upgrade = %q, want 4", v)
	}
}
