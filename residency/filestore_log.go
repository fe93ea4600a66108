package residency

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/domicile-go/domicile/auditlog"
)

// The audit log of the file store: the log bucket (filestore.go), keyed by
// entry index in 8 big-endian bytes so that it sorts in index order, and
// its tail in the meta bucket. The record of entry i holds the stored
// hashes appending it added, the indexes tlog.StoredHashCount(i) to
// tlog.StoredHashCount(i+1)-1, then the entry: stored hash x was added by
// the entry that completed its subtree, ((n+1)<<level)-1 where level and
// n are tlog.SplitStoredHashIndex(x). Its checksum covers the 8-byte
// index, wherever the record is.
//
// The tail (from format 7): the newest records of small commits wait in
// the meta bucket, under "tail" and the index, until about 3 KiB of them
// have gathered (a dozen Places', their entries in binary, format 8);
// then one commit moves them to the log bucket, byte for byte. bbolt
// writes every page a commit dirties, and the log bucket's is a path
// from its root to its last leaf, three pages from about a thousand
// entries on and four from a few hundred thousand; the meta bucket is
// rewritten by every commit anyway (its record counts), one page. So a
// commit of one change writes one page for the log, not three or four,
// save the one in about a dozen that moves the tail. A
// commit of more than half the tail's room writes to the log bucket
// directly. Every index in the log bucket is below every index in the
// tail; together they hold 0 to n-1 without a gap.

// tailPrefix starts the keys of the log's tail in the meta bucket.
var tailPrefix = []byte("tail")

// tailRoom bounds the bytes of the tail's records (as bbolt counts them:
// a 16-byte element, the key and the value each), so that the meta
// bucket stays one page of 4 KiB with its counts and format.
const tailRoom = 3072

func tailKey(i int64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(tailPrefix)+8), tailPrefix...), uint64(i))
}

// tailCost is what a record of key k and value v takes of tailRoom.
func tailCost(k, v []byte) int { return 16 + len(k) + len(v) }

func indexKey(i int64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(i)) }

// hashesOf returns how many stored hashes appending entry i adds.
func hashesOf(i int64) int { return int(tlog.StoredHashCount(i+1) - tlog.StoredHashCount(i)) }

// appendLog appends the entries of changes to the log of tx, with their
// stored hashes, advancing next, the log's frontier in tx: to the tail,
// or to the log bucket when they are many (see above). Each record is
// built in one allocation, which bbolt holds until the commit: its key,
// then its stored hashes, the entry (its JSON, [AppendEntry], is what is
// hashed; its stored form is that of codec_entry.go) and the checksum.
func appendLog(tx *bolt.Tx, next *auditlog.Frontier, changes []Change) error {
	const hs = len(tlog.Hash{})
	var hashes [64]tlog.Hash
	type record struct{ k, v []byte }
	recs := make([]record, len(changes))
	total := 0
	js := make([]byte, 0, entrySizeHint) // each entry's JSON in turn
	for i := range changes {
		n := next.Size()
		at := 8 + hashesOf(n)*hs // where the entry starts
		var err error
		if js, err = AppendEntry(js[:0], &changes[i]); err != nil {
			return err
		}
		rec := make([]byte, at, at+storedSizeHint+checksumLen)
		for j, h := range next.AppendTo(hashes[:0], js) {
			copy(rec[8+j*hs:], h[:])
		}
		rec = appendStoredEntry(rec, &changes[i], js)
		k := binary.BigEndian.AppendUint64(rec[:0:8], uint64(n))
		recs[i] = record{k, seal(kindLogEntry, k, rec[8:])}
		total += tailCost(recs[i].k, recs[i].v) + len(tailPrefix)
	}
	log, meta := tx.Bucket(bucketLog), tx.Bucket(bucketMeta)
	// The bucket only ever grows at its end: full pages waste no space.
	log.FillPercent = 1
	toLog := total > tailRoom/2
	if toLog || tailSize(meta)+total > tailRoom {
		if err := flushTail(log, meta); err != nil {
			return err
		}
	}
	for _, r := range recs {
		var err error
		if toLog {
			err = log.Put(r.k, r.v)
		} else {
			err = meta.Put(append(tailPrefix[:len(tailPrefix):len(tailPrefix)], r.k...), r.v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tailSize returns the bytes the tail's records take of tailRoom.
func tailSize(meta *bolt.Bucket) int {
	size := 0
	c := meta.Cursor()
	for k, v := c.Seek(tailPrefix); k != nil && bytes.HasPrefix(k, tailPrefix); k, v = c.Next() {
		size += tailCost(k, v)
	}
	return size
}

// flushTail moves the tail's records to the log bucket, as they are.
func flushTail(log, meta *bolt.Bucket) error {
	var keys [][]byte
	c := meta.Cursor()
	for k, v := c.Seek(tailPrefix); k != nil && bytes.HasPrefix(k, tailPrefix); k, v = c.Next() {
		if len(k) != len(tailPrefix)+8 {
			return fmt.Errorf("%w: log tail key %q", ErrCorrupt, k)
		}
		keys = append(keys, bytes.Clone(k))
		if err := log.Put(bytes.Clone(k[len(tailPrefix):]), bytes.Clone(v)); err != nil {
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

// readEntry reads the record of entry i from the log bucket or its tail
// in tx: its stored hashes and its entry, both in bbolt's memory (valid in
// the transaction).
func readEntry(tx *bolt.Tx, i int64) (hashes, entry []byte, err error) {
	k := indexKey(i)
	v := tx.Bucket(bucketLog).Get(k)
	if v == nil {
		v = tx.Bucket(bucketMeta).Get(tailKey(i))
	}
	if v == nil {
		return nil, nil, fmt.Errorf("%w: log entry %d is missing", ErrCorrupt, i)
	}
	return splitEntry(k, v, i)
}

// splitEntry checks the record v of entry i, of key k, and splits it.
func splitEntry(k, v []byte, i int64) (hashes, entry []byte, err error) {
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
	var last []byte
	c := tx.Bucket(bucketMeta).Cursor()
	for k, _ := c.Seek(tailPrefix); k != nil && bytes.HasPrefix(k, tailPrefix); k, _ = c.Next() {
		last = k[len(tailPrefix):]
	}
	if last == nil {
		last, _ = tx.Bucket(bucketLog).Cursor().Last()
	}
	if last == nil {
		return 0, nil
	}
	if len(last) != 8 {
		return 0, fmt.Errorf("%w: log key %q", ErrCorrupt, last)
	}
	return int64(binary.BigEndian.Uint64(last)) + 1, nil
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
		for k, x := range indexes {
			if x < 0 {
				return nil, fmt.Errorf("%w: stored hash %d", auditlog.ErrOutOfRange, x)
			}
			level, n := tlog.SplitStoredHashIndex(x)
			i := (n+1)<<level - 1
			hashes, _, err := readEntry(tx, i)
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

// LogEntries calls fn with each entry from index from on, in one read
// transaction. A gap in the indexes, or an entry whose checksum fails, is
// ErrCorrupt.
func (s *fileStore) LogEntries(ctx context.Context, from int64, fn func(int64, []byte) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	return s.db.View(func(tx *bolt.Tx) error {
		want := from
		intern := make(map[string]string) // data centers, rules, kinds
		// each checks the record of key k (the 8-byte index) and value v.
		each := func(k, v []byte) error {
			if len(k) != 8 || int64(binary.BigEndian.Uint64(k)) != want {
				return fmt.Errorf("%w: log key %x where entry %d belongs", ErrCorrupt, k, want)
			}
			_, e, err := splitEntry(k, v, want)
			if err != nil {
				return err
			}
			// e is in bbolt's mmap, valid only in this transaction;
			// jsonOfStored copies it.
			js, err := jsonOfStored(nil, e, intern)
			if err != nil {
				return fmt.Errorf("log entry %d: %w", want, err)
			}
			if err := fn(want, js); err != nil {
				return err
			}
			if want%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			want++
			return nil
		}
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.Seek(indexKey(from)); k != nil; k, v = c.Next() {
			if err := each(k, v); err != nil {
				return err
			}
		}
		c = tx.Bucket(bucketMeta).Cursor()
		for k, v := c.Seek(tailKey(want)); k != nil && bytes.HasPrefix(k, tailPrefix); k, v = c.Next() {
			if err := each(k[len(tailPrefix):], v); err != nil {
				return err
			}
		}
		return nil
	})
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
		v, err := unseal(kindStatus, k, v)
		if err != nil {
			return err
		}
		d := decoder{b: v}
		st := d.status(string(k))
		if err := d.done("status of " + st.ID); err != nil {
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
