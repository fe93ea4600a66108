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

// The audit log of the file store: the log and loghashes buckets
// (filestore.go), keyed by index in 8 big-endian bytes so that they sort
// in index order.

func indexKey(i int64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(i)) }

// appendLog appends the entries of changes to the log of tx, and their
// stored hashes, advancing next, the log's frontier in tx.
func appendLog(tx *bolt.Tx, next *auditlog.Frontier, changes []Change) error {
	entries, hashes := tx.Bucket(bucketLog), tx.Bucket(bucketLogHashes)
	// Both buckets only ever grow at their end: full pages waste no space.
	entries.FillPercent, hashes.FillPercent = 1, 1
	for i := range changes {
		e, err := EncodeEntry(changes[i])
		if err != nil {
			return err
		}
		first, hs := next.Append(e)
		k := indexKey(next.Size() - 1)
		if err := entries.Put(k, seal(kindLogEntry, k, e)); err != nil {
			return err
		}
		for j := range hs {
			k := indexKey(first + int64(j))
			if err := hashes.Put(k, seal(kindLogHash, k, hs[j][:])); err != nil {
				return err
			}
		}
	}
	return nil
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
		b := tx.Bucket(bucketLogHashes)
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			k := indexKey(x)
			v := b.Get(k)
			if v == nil {
				return nil, fmt.Errorf("%w: stored hash %d is missing", ErrCorrupt, x)
			}
			h, err := unseal(kindLogHash, k, v)
			if err != nil {
				return nil, err
			}
			if len(h) != len(tlog.Hash{}) {
				return nil, fmt.Errorf("%w: stored hash %d has %d bytes", ErrCorrupt, x, len(h))
			}
			copy(out[i][:], h)
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
			e, err := unseal(kindLogEntry, k, v)
			if err != nil {
				return fmt.Errorf("log entry %d: %w", want, err)
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

// upgradeLog creates the log buckets in a file of format 3 (or one just
// upgraded to it) and writes its first entries, in the transaction tx.
// The log of an upgraded file starts at the upgrade: the changes committed
// before it were not logged, and their order across accounts is not known.
// Its first entries are a snapshot of the state as the upgrade found it,
// so that replaying the log gives the stored state: for each account in ID
// order, its latest change (the placement with the event of its version),
// then for each agreement of the account one change carrying it (the same
// placement and event); then each data center's runtime status in ID order.
// The events before each account's latest stay in the events bucket.
func (s *fileStore) upgradeLog(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketLog, bucketLogHashes} {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
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
