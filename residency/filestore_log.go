package residency

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/domicile-go/domicile/auditlog"
)

// The audit log of the file store, format 9: the log bucket
// (filestore.go) and its tail in the meta bucket. Each entry is packed
// as the stored hashes appending it added (the indexes
// tlog.StoredHashCount(i) to tlog.StoredHashCount(i+1)-1 for entry i),
// the length of the stored entry (uvarint) and the stored entry (its
// JSON, [AppendEntry], is what is hashed; its stored form is that of
// codec_entry.go). Stored hash x was added by the entry that completed
// its subtree, ((n+1)<<level)-1 where level and n are
// tlog.SplitStoredHashIndex(x).
//
//   - A chunk, in the log bucket: key the index of its first entry (8
//     bytes, big-endian) and the number of its entries (one byte, 1 to
//     255), so that keys sort in index order; value consecutive packed
//     entries with a checksum that covers the 9-byte key.
//   - The tail, in the meta bucket under "tail": the index of its first
//     entry and the number of its entries (uvarints), then its packed
//     entries, with a checksum.
//   - A record, of formats 5 to 8, in the log bucket: key the entry's
//     index (8 bytes), value its stored hashes and entry (no length) with
//     a checksum; formats 7 and 8 also kept records in the meta bucket,
//     under "tail" and the index. Format 9 writes none, and reads them
//     where an upgraded file holds them (opening a file of format 7 or 8
//     for writing moves its tail's records to the log bucket as they are).
//
// Every index of the log bucket is below every index of the tail;
// together they hold 0 to n-1 without a gap or an overlap.
//
// Why so: what appending costs a durable commit is mostly bbolt's, and
// bbolt's cost is in the pages a commit dirties and the elements of their
// nodes. A Put rewrites the whole path from the bucket's root to the leaf
// it changes: in the log bucket, three pages from about a thousand entries
// on (four from a few hundred thousand), the branch among them holding up
// to ~170 elements that bbolt decodes, grows and writes again. The meta
// bucket is dirtied by every commit anyway (its record counts), and has
// three keys, so bbolt never splits it: a tail of several KiB is one node
// of a few contiguous pages. So a commit appends its entries to the tail,
// and the log bucket is written only when the tail is full, every dozen
// or so commits of one change, one in three or four group commits of 16
// Places: then the tail and the commit's entries move to the log bucket
// in chunks, and the tail is removed. A chunk holds at most chunkRoom
// bytes, so that five fit a leaf page of 4 KiB: bbolt never splits a node
// of four elements or fewer however large it grows, so the last leaf of
// larger chunks would grow past a page and be rewritten whole. One Put
// per chunk rather than per entry, and the log bucket's path dirtied one
// commit in several, are most of the CPU saved.

// keyTail is the meta bucket's key of the log's tail; the records of the
// tail of formats 7 and 8 were under keyTail and an 8-byte index.
var keyTail = []byte("tail")

const (
	// chunkRoom bounds a chunk's value (its packed entries and checksum),
	// unless one entry alone is larger: a leaf page of 4 KiB (a 16-byte
	// header, and for each element 16 bytes, its 9-byte key and its
	// value) holds five.
	chunkRoom = (4096-16)/5 - 16 - 9
	// tailPage is the tail's room for commits of a few changes: the meta
	// bucket stays one page.
	tailPage = 3072
	// tailMax bounds the tail's packed entries; a commit's entries stay
	// in the tail while it is at most three times theirs (and tailPage),
	// so that group commits too write the log bucket one time in three.
	tailMax = 12288
	// prepareAside is the fewest changes whose log entries Apply makes
	// in a goroutine beside the transaction's writes.
	prepareAside = 4
	// maxChunkEntries is the most entries a chunk's key can count.
	maxChunkEntries = 255
)

// tailRoom returns the tail's room for a commit of entries packed in n
// bytes.
func tailRoom(n int) int { return min(max(3*n, tailPage), tailMax) }

func indexKey(i int64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(i)) }

// oldTailKey is the meta bucket's key of the record of entry i in the tail
// of formats 7 and 8.
func oldTailKey(i int64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(keyTail)+8), keyTail...), uint64(i))
}

func chunkKey(first int64, n int) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 9), uint64(first)), byte(n))
}

// keyRange returns the first index and the number of entries of the log
// bucket's key k: a chunk's (9 bytes) or a record's (8 bytes).
func keyRange(k []byte) (first, n int64, err error) {
	switch {
	case len(k) == 8:
		return int64(binary.BigEndian.Uint64(k)), 1, nil
	case len(k) == 9 && k[8] > 0:
		return int64(binary.BigEndian.Uint64(k)), int64(k[8]), nil
	}
	return 0, 0, fmt.Errorf("%w: log key %x", ErrCorrupt, k)
}

// hashesOf returns how many stored hashes appending entry i adds.
func hashesOf(i int64) int { return int(tlog.StoredHashCount(i+1) - tlog.StoredHashCount(i)) }

// packedLen returns the bytes of entry i packed at the start of p.
func packedLen(p []byte, i int64) (int, error) {
	h := hashesOf(i) * len(tlog.Hash{})
	if len(p) > h {
		// The length's shortest encoding only: an entry packs one way.
		if n, w := binary.Uvarint(p[h:]); w > 0 && n <= uint64(len(p)-h-w) && w == uvarintLen(n) {
			return h + w + int(n), nil
		}
	}
	return 0, fmt.Errorf("%w: log entry %d: packed entry cut short", ErrCorrupt, i)
}

// uvarintLen returns the bytes of the shortest uvarint of n.
func uvarintLen(n uint64) int { return max(1, (bits.Len64(n)+6)/7) }

// splitPacked splits the packed entry i of p, which packedLen measured.
func splitPacked(p []byte, i int64) (hashes, entry []byte) {
	h := hashesOf(i) * len(tlog.Hash{})
	_, w := binary.Uvarint(p[h:])
	return p[:h], p[h+w:]
}

// eachPacked calls fn with each of the n entries packed in p, the first of
// index first, and checks that p holds them and nothing more.
func eachPacked(p []byte, first, n int64, fn func(i int64, hashes, entry []byte) error) error {
	for i := first; i < first+n; i++ {
		size, err := packedLen(p, i)
		if err != nil {
			return err
		}
		hashes, entry := splitPacked(p[:size], i)
		if err := fn(i, hashes, entry); err != nil {
			return err
		}
		p = p[size:]
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: log entries %d to %d: %d bytes after the last", ErrCorrupt, first, first+n-1, len(p))
	}
	return nil
}

// checkPacked checks that p holds the n packed entries from index first
// and nothing more.
func checkPacked(p []byte, first, n int64) error {
	return eachPacked(p, first, n, func(int64, []byte, []byte) error { return nil })
}

// openChunk checks the chunk of key k and value v, and returns its first
// index, its number of entries and its packed entries.
func openChunk(k, v []byte) (first, n int64, packed []byte, err error) {
	if first, n, err = keyRange(k); err != nil {
		return 0, 0, nil, err
	}
	if packed, err = unseal(kindLogEntry, k, v); err != nil {
		return 0, 0, nil, fmt.Errorf("log entries %d to %d: %w", first, first+n-1, err)
	}
	return first, n, packed, nil
}

// openTail checks the tail's value v, and returns its first index, its
// number of entries and its packed entries.
func openTail(v []byte) (first, n int64, packed []byte, err error) {
	p, err := unseal(kindLogEntry, keyTail, v)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("log tail: %w", err)
	}
	f, w1 := binary.Uvarint(p)
	c, w2 := uint64(0), 0
	if w1 > 0 {
		c, w2 = binary.Uvarint(p[w1:])
	}
	if w1 <= 0 || w2 <= 0 || c == 0 || f > 1<<62 || c > 1<<32 {
		return 0, 0, nil, fmt.Errorf("%w: log tail header", ErrCorrupt)
	}
	return int64(f), int64(c), p[w1+w2:], nil
}

// appendLog appends the entries of changes to the log of tx, with their
// stored hashes, advancing next, the log's frontier in tx.
func appendLog(tx *bolt.Tx, next *auditlog.Frontier, changes []Change) error {
	var b logBatch
	if err := b.prepare(*next, changes); err != nil {
		return err
	}
	if err := b.store(tx); err != nil {
		return err
	}
	*next = b.next
	return nil
}

// logBatch is the entries of one commit, packed.
type logBatch struct {
	first, n int64  // the index of the first entry, and their number
	packed   []byte // the entries, packed
	next     auditlog.Frontier
}

// prepareOrErr is prepare with a panic returned as an error of Apply, not
// a crash (in a goroutine) nor taken for a damaged file (recoverCorrupt).
func (b *logBatch) prepareOrErr(next auditlog.Frontier, changes []Change) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("residency: making the log's entries panicked: %v", p)
		}
	}()
	return b.prepare(next, changes)
}

// prepare packs the entries of changes appended to the log whose frontier
// is next, all in one allocation.
func (b *logBatch) prepare(next auditlog.Frontier, changes []Change) error {
	var hashes [64]tlog.Hash
	b.first, b.n = next.Size(), int64(len(changes))
	b.packed = make([]byte, 0, len(changes)*(2*len(tlog.Hash{})+storedSizeHint))
	js := make([]byte, 0, entrySizeHint) // each entry's JSON in turn
	st := make([]byte, 0, storedSizeHint)
	for i := range changes {
		var err error
		if js, err = AppendEntry(js[:0], &changes[i]); err != nil {
			return err
		}
		for _, h := range next.AppendTo(hashes[:0], js) {
			b.packed = append(b.packed, h[:]...)
		}
		st = appendStoredEntry(st[:0], &changes[i], js)
		b.packed = append(binary.AppendUvarint(b.packed, uint64(len(st))), st...)
	}
	b.next = next
	return nil
}

// store writes the batch's entries to the log of tx: to the tail while it
// has room for them, or else, with the tail's, to the log bucket in chunks
// (see above). Either way in one allocation for the tail, or one per
// chunk, which bbolt holds until the commit.
func (b *logBatch) store(tx *bolt.Tx) error {
	if b.n == 0 {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	first, n := b.first, b.n
	var old []byte // the tail's packed entries, in bbolt's memory
	if v := meta.Get(keyTail); v != nil {
		var err error
		var tn int64
		if first, tn, old, err = openTail(v); err != nil {
			return err
		}
		if first+tn != b.first {
			return fmt.Errorf("%w: the log tail holds entries %d to %d, the log has %d", ErrCorrupt, first, first+tn-1, b.first)
		}
		// The tail is about to be rewritten, or cut into chunks: a count
		// that disagrees with its entries must not become a gap there.
		if err := checkPacked(old, first, tn); err != nil {
			return err
		}
		n += tn
	}
	if len(old)+len(b.packed) <= tailRoom(len(b.packed)) {
		v := make([]byte, 0, 2*binary.MaxVarintLen64+len(old)+len(b.packed)+checksumLen)
		v = binary.AppendUvarint(binary.AppendUvarint(v, uint64(first)), uint64(n))
		v = append(append(v, old...), b.packed...)
		return meta.Put(keyTail, seal(kindLogEntry, keyTail, v))
	}
	log := tx.Bucket(bucketLog)
	// The bucket only ever grows at its end: full pages waste no space.
	log.FillPercent = 1
	w := chunkWriter{log: log}
	if err := w.add(old, first); err != nil {
		return err
	}
	if err := w.add(b.packed, b.first); err != nil {
		return err
	}
	if err := w.end(); err != nil {
		return err
	}
	if old != nil {
		return meta.Delete(keyTail)
	}
	return nil
}

// chunkWriter cuts packed entries into chunks of the log bucket.
type chunkWriter struct {
	log   *bolt.Bucket
	first int64  // the index of the chunk's first entry
	n     int    // its entries so far
	buf   []byte // its packed entries so far
}

// add adds the packed entries p, the first of index i.
func (w *chunkWriter) add(p []byte, i int64) error {
	for ; len(p) > 0; i++ {
		size, err := packedLen(p, i)
		if err != nil {
			return err
		}
		if w.n > 0 && (len(w.buf)+size+checksumLen > chunkRoom || w.n == maxChunkEntries) {
			if err := w.end(); err != nil {
				return err
			}
		}
		if w.n == 0 {
			w.first, w.buf = i, make([]byte, 0, max(chunkRoom, size+checksumLen))
		}
		w.buf = append(w.buf, p[:size]...)
		w.n++
		p = p[size:]
	}
	return nil
}

// end puts the chunk made so far.
func (w *chunkWriter) end() error {
	if w.n == 0 {
		return nil
	}
	k := chunkKey(w.first, w.n)
	w.n = 0
	return w.log.Put(k, seal(kindLogEntry, k, w.buf))
}

// oldTail reports whether the meta bucket holds records of the tail of
// formats 7 and 8, and whether it holds a tail of format 9.
func oldTail(meta *bolt.Bucket) (records, tail bool) {
	c := meta.Cursor()
	for k, _ := c.Seek(keyTail); k != nil && bytes.HasPrefix(k, keyTail); k, _ = c.Next() {
		if len(k) == len(keyTail) {
			tail = true
		} else {
			return true, tail
		}
	}
	return false, tail
}

// moveOldTail moves the records of the tail of formats 7 and 8 to the log
// bucket, as they are: where formats 5 and 6 kept every record, and where
// format 9 reads them.
func moveOldTail(log, meta *bolt.Bucket) error {
	var keys [][]byte
	c := meta.Cursor()
	for k, v := c.Seek(keyTail); k != nil && bytes.HasPrefix(k, keyTail); k, v = c.Next() {
		if len(k) == len(keyTail) {
			continue
		}
		if len(k) != len(keyTail)+8 {
			return fmt.Errorf("%w: log tail key %q", ErrCorrupt, k)
		}
		keys = append(keys, bytes.Clone(k))
		if err := log.Put(bytes.Clone(k[len(keyTail):]), bytes.Clone(v)); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// entrySizeHint is room enough for the JSON entry of a placement and its
// event, most changes: about 400 bytes; storedSizeHint for its stored
// form (codec_entry.go), about 150.
const entrySizeHint, storedSizeHint = 640, 256

// readEntry reads entry i from the log of tx: its stored hashes and its
// entry, both in bbolt's memory (valid in the transaction).
func readEntry(tx *bolt.Tx, i int64) (hashes, entry []byte, err error) {
	return (&entryReader{tx: tx}).read(i)
}

// entryReader reads entries of the log of a transaction, keeping the
// last chunk (or tail) it opened: reading stored hashes in index order,
// as CheckLog does, opens each chunk once.
type entryReader struct {
	tx       *bolt.Tx
	first, n int64  // the entries of packed
	packed   []byte // the last chunk's or tail's packed entries
}

// read reads entry i: its stored hashes and its entry.
func (r *entryReader) read(i int64) (hashes, entry []byte, err error) {
	if r.packed == nil || i < r.first || i >= r.first+r.n {
		if err := r.find(i); err != nil {
			return nil, nil, err
		}
		if r.packed == nil { // a record of formats 5 to 8
			k := indexKey(i)
			v := r.tx.Bucket(bucketLog).Get(k)
			if v == nil {
				v = r.tx.Bucket(bucketMeta).Get(oldTailKey(i))
			}
			return splitEntry(k, v, i)
		}
	}
	p := r.packed
	for x := r.first; ; x++ {
		size, err := packedLen(p, x)
		if err != nil {
			return nil, nil, err
		}
		if x == i {
			hashes, entry = splitPacked(p[:size], x)
			return hashes, entry, nil
		}
		p = p[size:]
	}
}

// find finds where entry i is: a chunk or the tail, which it opens, or a
// record (packed left nil).
func (r *entryReader) find(i int64) error {
	r.packed = nil
	c := r.tx.Bucket(bucketLog).Cursor()
	k, v := c.Seek(indexKey(i))
	if len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) == i {
		// entry i starts this chunk, or is this record
	} else if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k != nil {
		first, n, err := keyRange(k)
		if err != nil {
			return err
		}
		if first <= i && i < first+n {
			if len(k) == 8 {
				return nil
			}
			r.first, r.n, r.packed, err = openChunk(k, v)
			if err == nil {
				err = checkPacked(r.packed, r.first, r.n)
			}
			if err != nil {
				r.packed = nil
			}
			return err
		}
	}
	meta := r.tx.Bucket(bucketMeta)
	if meta.Get(oldTailKey(i)) != nil {
		return nil
	}
	if v := meta.Get(keyTail); v != nil {
		first, n, packed, err := openTail(v)
		if err != nil {
			return err
		}
		if first <= i && i < first+n {
			if err := checkPacked(packed, first, n); err != nil {
				return err
			}
			r.first, r.n, r.packed = first, n, packed
			return nil
		}
	}
	return fmt.Errorf("%w: log entry %d is missing", ErrCorrupt, i)
}

// splitEntry checks the record v of entry i, of key k, and splits it.
func splitEntry(k, v []byte, i int64) (hashes, entry []byte, err error) {
	if v == nil {
		return nil, nil, fmt.Errorf("%w: log entry %d is missing", ErrCorrupt, i)
	}
	p, err := unseal(kindLogEntry, k, v)
	if err != nil {
		return nil, nil, fmt.Errorf("log entry %d: %w", i, err)
	}
	n := hashesOf(i) * len(tlog.Hash{})
	if len(p) < n {
		return nil, nil, fmt.Errorf("%w: log entry %d: record of %d bytes", ErrCorrupt, i, len(p))
	}
	return p[:n], p[n:], nil
}

// logSize returns the number of entries in the log of tx: one more than
// the last index, in the tail or else in the log bucket.
func logSize(tx *bolt.Tx) (int64, error) {
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyTail); v != nil {
		first, n, _, err := openTail(v)
		return first + n, err
	}
	var last []byte
	c := meta.Cursor()
	for k, _ := c.Seek(keyTail); k != nil && bytes.HasPrefix(k, keyTail); k, _ = c.Next() {
		last = k[len(keyTail):]
	}
	if last != nil {
		if len(last) != 8 {
			return 0, fmt.Errorf("%w: log tail key %x", ErrCorrupt, last)
		}
		return int64(binary.BigEndian.Uint64(last)) + 1, nil
	}
	if last, _ = tx.Bucket(bucketLog).Cursor().Last(); last == nil {
		return 0, nil
	}
	first, n, err := keyRange(last)
	return first + n, err
}

// loadFrontier reads the log's frontier from tx.
func loadFrontier(tx *bolt.Tx) (auditlog.Frontier, error) {
	n, err := logSize(tx)
	if err != nil {
		return auditlog.Frontier{}, err
	}
	return auditlog.LoadFrontier(n, txHashes(tx))
}

// txHashes reads the stored hashes of tx.
func txHashes(tx *bolt.Tx) tlog.HashReaderFunc {
	return func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		r := entryReader{tx: tx}
		for k, x := range indexes {
			if x < 0 {
				return nil, fmt.Errorf("%w: stored hash %d", auditlog.ErrOutOfRange, x)
			}
			level, n := tlog.SplitStoredHashIndex(x)
			i := (n+1)<<level - 1
			hashes, _, err := r.read(i)
			if err != nil {
				return nil, err
			}
			at := int(x-tlog.StoredHashCount(i)) * len(tlog.Hash{})
			copy(out[k][:], hashes[at:])
		}
		return out, nil
	}
}

// LogSize returns the number of entries in the audit log.
func (s *fileStore) LogSize(ctx context.Context) (n int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	err = s.db.View(func(tx *bolt.Tx) (err error) {
		n, err = logSize(tx)
		return err
	})
	return n, err
}

// LogEntries calls fn with each entry from index from on, up to the size
// the log had when it was called. It reads them in pages of logPage
// entries, each in a read transaction of its own that ends before fn sees
// the page: a slow fn must not hold a transaction open, which would keep
// bbolt from growing the file for a write (entries never change once
// written, so the pages read as one transaction would). A gap in the
// indexes, or an entry whose checksum fails, is ErrCorrupt.
func (s *fileStore) LogEntries(ctx context.Context, from int64, fn func(int64, []byte) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	from = max(from, 0) // as MemoryStore's and PostgreSQL's
	end := int64(-1)    // the log's size at the call
	intern := make(map[string]string)
	type entry struct {
		i  int64
		js []byte
	}
	page := make([]entry, 0, logPage)
	for {
		page = page[:0]
		err := s.db.View(func(tx *bolt.Tx) error {
			if end < 0 {
				n, err := logSize(tx)
				if err != nil {
					return err
				}
				end = n
			}
			return readLogEntries(tx, from, intern, func(i int64, js []byte) error {
				if i >= end {
					return errLogRead
				}
				page = append(page, entry{i, js})
				if len(page) == logPage {
					return errLogPage
				}
				return nil
			})
		})
		if err != nil && err != errLogPage && err != errLogRead {
			return err
		}
		for _, e := range page {
			if err := fn(e.i, e.js); err != nil {
				return err
			}
		}
		if err != errLogPage {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		from = page[len(page)-1].i + 1
	}
}

// logPage is how many entries LogEntries reads in one transaction.
const logPage = 1024

// errLogPage and errLogRead end readLogEntries early: a page is full, or
// the entries LogEntries gives are all read.
var (
	errLogPage = errors.New("residency: log page full")
	errLogRead = errors.New("residency: log read to its size at the call")
)

// readLogEntries calls fn with each entry of tx's log from index from on,
// as JSON of its own (intern shares the strings of many entries).
func readLogEntries(tx *bolt.Tx, from int64, intern map[string]string, fn func(int64, []byte) error) error {
	want := from
	started := false // whether an entry at or before from was found
	// each gives entry i to fn, from from on.
	each := func(i int64, _, e []byte) error {
		if i < want {
			return nil
		}
		if i != want {
			return fmt.Errorf("%w: log entry %d where entry %d belongs", ErrCorrupt, i, want)
		}
		// e is in bbolt's mmap, valid only in this transaction;
		// jsonOfStored copies it.
		js, err := jsonOfStored(nil, e, intern)
		if err != nil {
			return fmt.Errorf("log entry %d: %w", i, err)
		}
		if err := fn(i, js); err != nil {
			return err
		}
		want++
		return nil
	}
	// starts checks that a chunk, record or tail of the entries from
	// first on follows those read, or holds entry from.
	starts := func(first int64) error {
		if first > want || started && first != want {
			return fmt.Errorf("%w: log entry %d where entry %d belongs", ErrCorrupt, first, want)
		}
		started = true
		return nil
	}
	c := tx.Bucket(bucketLog).Cursor()
	k, v := c.Seek(indexKey(from))
	if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) != from {
		// The chunk before may hold entry from.
		var pk, pv []byte
		if k == nil {
			pk, pv = c.Last()
		} else {
			pk, pv = c.Prev()
		}
		first, n, err := keyRange(pk)
		if pk != nil && err == nil && first < from && from < first+n {
			k, v = pk, pv
		} else if k, v = c.Seek(indexKey(from)); pk != nil && err != nil {
			return err
		}
	}
	for ; k != nil; k, v = c.Next() {
		if len(k) == 8 {
			i := int64(binary.BigEndian.Uint64(k))
			if err := starts(i); err != nil {
				return err
			}
			hashes, e, err := splitEntry(k, v, i)
			if err != nil {
				return err
			}
			if err := each(i, hashes, e); err != nil {
				return err
			}
			continue
		}
		first, n, packed, err := openChunk(k, v)
		if err != nil {
			return err
		}
		if err := starts(first); err != nil {
			return err
		}
		if err := eachPacked(packed, first, n, each); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	c = meta.Cursor()
	for k, v := c.Seek(oldTailKey(want)); k != nil && bytes.HasPrefix(k, keyTail); k, v = c.Next() {
		if len(k) != len(keyTail)+8 {
			return fmt.Errorf("%w: log tail key %q", ErrCorrupt, k)
		}
		i := int64(binary.BigEndian.Uint64(k[len(keyTail):]))
		if err := starts(i); err != nil {
			return err
		}
		hashes, e, err := splitEntry(k[len(keyTail):], v, i)
		if err != nil {
			return err
		}
		if err := each(i, hashes, e); err != nil {
			return err
		}
	}
	if v := meta.Get(keyTail); v != nil {
		first, n, packed, err := openTail(v)
		if err != nil {
			return err
		}
		if first+n <= want && !started {
			return nil // the log ends before from
		}
		if err := starts(first); err != nil {
			return err
		}
		return eachPacked(packed, first, n, each)
	}
	return nil
}

// ReadHashes reads stored hashes of the log's tree.
func (s *fileStore) ReadHashes(ctx context.Context, indexes []int64) (out []tlog.Hash, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	err = s.db.View(func(tx *bolt.Tx) (err error) {
		out, err = txHashes(tx)(indexes)
		return err
	})
	return out, err
}

// upgradeLog creates the log bucket in a file of format 4 (or one just
// upgraded to it) and writes its first entries, in the transaction tx.
// The log of an upgraded file starts at the upgrade: the changes committed
// before it were not logged, and their order across accounts is not known.
// Its first entries are a snapshot of the state as the upgrade found it,
// so that replaying the log gives the stored state: for each account in ID
// order, its latest change (the placement with the event of its version),
// then for each agreement, consent and objection of the account one change
// carrying it (the same placement and event); then each data center's
// runtime status in ID order.
// The events before each account's latest stay in the events bucket.
func (s *fileStore) upgradeLog(tx *bolt.Tx) error {
	if _, err := tx.CreateBucket(bucketLog); err != nil {
		return fmt.Errorf("creating bucket %s: %w", bucketLog, err)
	}
	var f auditlog.Frontier
	rd := newAccountReader(tx)
	var batch []Change
	flush := func() error {
		err := appendLog(tx, &f, batch)
		batch = batch[:0]
		return err
	}
	err := tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
		a, err := rd.read(k, v)
		if err != nil {
			return err
		}
		last := a.History[len(a.History)-1]
		batch = append(batch, Change{Placement: a.Placement, Event: last})
		for i := range a.Agreements {
			batch = append(batch, Change{Placement: a.Placement, Event: last, Agreement: &a.Agreements[i]})
		}
		for i := range a.Consents {
			batch = append(batch, Change{Placement: a.Placement, Event: last, Consent: &a.Consents[i]})
		}
		for i := range a.Objections {
			batch = append(batch, Change{Placement: a.Placement, Event: last, Objection: &a.Objections[i]})
		}
		if len(batch) >= 1024 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bucketStatus).ForEach(func(k, v []byte) error {
		st, err := readStatus(k, v)
		if err != nil {
			return err
		}
		batch = append(batch, Change{DataCenter: &st})
		return nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyFormat, []byte(fileFormat))
}
