package residency

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// RewriteLogPerEntry rewrites the log of tx as formats 5 to 8 kept it
// (rewriteLogPerEntry), for the tests of upgrades in package
// residency_test.
var RewriteLogPerEntry = rewriteLogPerEntry

// rewriteLogPerEntry rewrites the log of tx as formats 5 to 8 kept it: a
// record per entry, its stored hashes then its entry, under its 8-byte
// index in the log bucket, the last inTail of them (formats 7 and 8)
// under "tail" and the index in the meta bucket; each entry as its JSON
// when asJSON (formats 5 to 7), or as it is stored (binary, format 8).
func rewriteLogPerEntry(tx *bolt.Tx, inTail int, asJSON bool) error {
	n, err := logSize(tx)
	if err != nil {
		return err
	}
	type record struct{ hashes, entry []byte }
	records := make([]record, n)
	r := entryReader{tx: tx}
	for i := range n {
		hashes, e, err := r.read(i)
		if err != nil {
			return err
		}
		if asJSON {
			if e, err = jsonOfStored(nil, e, nil); err != nil {
				return err
			}
		}
		records[i] = record{bytes.Clone(hashes), bytes.Clone(e)}
	}
	if err := tx.DeleteBucket(bucketLog); err != nil {
		return err
	}
	log, err := tx.CreateBucket(bucketLog)
	if err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	var tailKeys [][]byte
	c := meta.Cursor()
	for k, _ := c.Seek(keyTail); k != nil && bytes.HasPrefix(k, keyTail); k, _ = c.Next() {
		tailKeys = append(tailKeys, bytes.Clone(k))
	}
	for _, k := range tailKeys {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	for i, rec := range records {
		k := indexKey(int64(i))
		v := seal(kindLogEntry, k, append(rec.hashes, rec.entry...))
		if i < len(records)-inTail {
			err = log.Put(k, v)
		} else {
			err = meta.Put(oldTailKey(int64(i)), v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
