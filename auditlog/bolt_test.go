package auditlog_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"testing"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// A store as a store would use the package: entries and stored hashes in
// buckets of a real bbolt file, appended inside the write transaction
// that commits the change they record.
var (
	bucketEntries = []byte("entries")
	bucketHashes  = []byte("hashes")
)

func key(i int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

// boltHashes reads stored hashes inside a bbolt transaction.
func boltHashes(tx *bolt.Tx) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		b := tx.Bucket(bucketHashes)
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			v := b.Get(key(x))
			if len(v) != tlog.HashSize {
				return nil, fmt.Errorf("stored hash %d: %w", x, auditlog.ErrOutOfRange)
			}
			out[i] = tlog.Hash(v)
		}
		return out, nil
	})
}

// boltEntries yields the stored entries in index order.
func boltEntries(tx *bolt.Tx) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		c := tx.Bucket(bucketEntries).Cursor()
		want := int64(0)
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if i := int64(binary.BigEndian.Uint64(k)); i != want {
				yield(nil, fmt.Errorf("entry %d missing, next is %d", want, i))
				return
			}
			want++
			if !yield(v, nil) {
				return
			}
		}
	}
}

// appendTx appends entry inside tx, as a store's Apply would.
func appendTx(tx *bolt.Tx, entry []byte) error {
	es, err := tx.CreateBucketIfNotExists(bucketEntries)
	if err != nil {
		return err
	}
	hs, err := tx.CreateBucketIfNotExists(bucketHashes)
	if err != nil {
		return err
	}
	n := int64(es.Stats().KeyN) // a real store keeps the size under a key of its own
	first, hashes, err := auditlog.AppendHashes(n, boltHashes(tx), entry)
	if err != nil {
		return err
	}
	if err := es.Put(key(n), entry); err != nil {
		return err
	}
	for i, h := range hashes {
		if err := hs.Put(key(first+int64(i)), h[:]); err != nil {
			return err
		}
	}
	return nil
}

func TestAppendInBoltTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	var committed [][]byte
	errAbort := errors.New("the change was refused")
	for i := range 200 {
		e := entry(int64(i))
		err := db.Update(func(tx *bolt.Tx) error {
			if err := appendTx(tx, e); err != nil {
				return err
			}
			if i%7 == 3 {
				return errAbort // the change fails after the append: all rolls back
			}
			return nil
		})
		switch {
		case err == nil:
			committed = append(committed, e)
		case !errors.Is(err, errAbort):
			t.Fatal(err)
		}
	}
	// Reopen: what was committed is the log, and it verifies.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = bolt.Open(path, 0o600, nil); err != nil {
		t.Fatal(err)
	}
	want := checkpoint(t, memLog(t, committed), int64(len(committed)))
	kept := checkpoint(t, memLog(t, committed), 50) // an auditor's older checkpoint
	err = db.View(func(tx *bolt.Tx) error {
		head, err := auditlog.NewCheckpoint(origin, int64(tx.Bucket(bucketEntries).Stats().KeyN), boltHashes(tx))
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, head); diff != "" {
			t.Errorf("stored head mismatch (-want +got):\n%s", diff)
		}
		got, err := auditlog.CheckLog(kept, boltEntries(tx), boltHashes(tx))
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("CheckLog head mismatch (-want +got):\n%s", diff)
		}
		p, err := auditlog.ProveEntry(42, head.Size, boltHashes(tx))
		if err != nil {
			return err
		}
		return auditlog.CheckEntry(p, head, 42, committed[42])
	})
	if err != nil {
		t.Fatal(err)
	}

	// An operator rewrites entry 17 in the file: refused, and named.
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEntries).Put(key(17), []byte("rewritten"))
	}); err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		_, err := auditlog.CheckLog(kept, boltEntries(tx), boltHashes(tx))
		return err
	})
	var ee *auditlog.EntryError
	if !errors.Is(err, auditlog.ErrEntryMismatch) || !errors.As(err, &ee) || ee.Index != 17 {
		t.Errorf("CheckLog after rewriting entry 17: error = %v, want an EntryError for entry 17 wrapping ErrEntryMismatch", err)
	}
}
