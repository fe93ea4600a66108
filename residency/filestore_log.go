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
// entry index in 8 big-endian bytes so that it sorts in index order. The
// record of entry i holds the stored hashes appending it added, the
// indexes tlog.StoredHashCount(i) to tlog.StoredHashCount(i+1)-1, then the
// entry: stored hash x was added by the entry that completed its subtree,
// ((n+1)<<level)-1 where level and n are tlog.SplitStoredHashIndex(x).

func indexKey(i int64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(i)) }

// hashesOf returns how many stored hashes appending entry i adds.
func hashesOf(i int64) int { return int(tlog.StoredHashCount(i+1) - tlog.StoredHashCount(i)) }

// appendLog appends the entries of changes to the log of tx, with their
// stored hashes, advancing next, the log's frontier in tx. Each record is
// built in one allocation, which bbolt holds until the commit: its key,
// then its stored hashes, the entry ([AppendEntry]) and the checksum.
func appendLog(tx *bolt.Tx, next *auditlog.Frontier, changes []Change) error {
	log := tx.Bucket(bucketLog)
	// The bucket only ever grows at its end: full pages waste no space.
	log.FillPercent = 1
	const hs = len(tlog.Hash{})
	var hashes [64]tlog.Hash
	for i := range changes {
		n := next.Size()
		at := 8 + hashesOf(n)*hs // where the entry starts
		rec := make([]byte, at, at+entrySizeHint+checksumLen)
		rec, err := AppendEntry(rec, &changes[i])
		if err != nil {
			return err
		}
		for j, h := range next.AppendTo(hashes[:0], rec[at:]) {
			copy(rec[8+j*hs:], h[:])
		}
		k := binary.BigEndian.AppendUint64(rec[:0:8], uint64(n))
		if err := log.Put(k, seal(kindLogEntry, k, rec[8:])); err != nil {
			return err
		}
	}
	return nil
}

// entrySizeHint is room enough for the entry of a placement and its
// event, most changes: about 400 bytes.
const entrySizeHint = 640

// readEntry reads the record of entry i from the log bucket b: its stored
// hashes and its entry, both in bbolt's memory (valid in the transaction).
func readEntry(b *bolt.Bucket, i int64) (hashes, entry []byte, err error) {
	k := indexKey(i)
	v := b.Get(k)
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
// the last index.
func logSize(tx *bolt.Tx) (int64, error) {
	k, _ := tx.Bucket(bucketLog).Cursor().Last()
	if k == nil {
		return 0, nil
	}
	if len(k) != 8 {
		return 0, fmt.Errorf("%w: log key %q", ErrCorrupt, k)
	}
	return int64(binary.BigEndian.Uint64(k)) + 1, nil
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
		b := tx.Bucket(bucketLog)
		out := make([]tlog.Hash, len(indexes))
		for k, x := range indexes {
			if x < 0 {
				return nil, fmt.Errorf("%w: stored hash %d", auditlog.ErrOutOfRange, x)
			}
			level, n := tlog.SplitStoredHashIndex(x)
			i := (n+1)<<level - 1
			hashes, _, err := readEntry(b, i)
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
		c := tx.Bucket(bucketLog).Cursor()
		want := from
		for k, v := c.Seek(indexKey(from)); k != nil; k, v = c.Next() {
			if len(k) != 8 || int64(binary.BigEndian.Uint64(k)) != want {
				return fmt.Errorf("%w: log key %x where entry %d belongs", ErrCorrupt, k, want)
			}
			_, e, err := splitEntry(k, v, want)
			if err != nil {
				return err
			}
			// e is in bbolt's mmap, valid only in this transaction.
			if err := fn(want, bytes.Clone(e)); err != nil {
				return err
			}
			if want%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			want++
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
