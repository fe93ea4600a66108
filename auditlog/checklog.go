package auditlog

import (
	"fmt"
	"iter"

	"golang.org/x/mod/sumdb/tlog"
)

// Entries returns an iterator over a log's entries held in a slice, in
// index order, for [CheckLog].
func Entries(entries [][]byte) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for _, e := range entries {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// checkBatch is how many stored hashes CheckLog compares per ReadHashes
// call.
const checkBatch = 1024

// CheckLog recomputes a whole log's tree from its entries and checks it
// against c, a checkpoint of the log an auditor verified earlier. entries
// yields every entry the log holds, in index order from 0, or an error
// that stops the check; CheckLog keeps none of the slices it yields. When stored is not nil it reads the log's stored
// hashes, and each recomputed hash is compared with the one stored, so
// that a rewritten entry is found and named.
//
// It returns the checkpoint, of origin c.Origin, of all the entries read,
// whose Size may exceed c.Size (the log grew). The caller compares it
// with the log's current signed checkpoint, and keeps it as the last
// verified one. CheckLog keeps O(log n) hashes in memory.
//
// It fails, reporting the first fault found in index order, with
//   - an [*EntryError] wrapping [ErrEntryMismatch] naming the first entry
//     whose recomputed hashes disagree with those stored for it;
//   - [ErrTreeMismatch] when the first c.Size entries do not hash to
//     c.Hash (entries and stored hashes were both rewritten, or entries
//     inserted or removed);
//   - [ErrShortLog] when the log holds fewer than c.Size entries;
//   - an [*EntryError] wrapping the error entries yielded, or an error
//     reading stored.
func CheckLog(c Checkpoint, entries iter.Seq2[[]byte, error], stored tlog.HashReader) (Checkpoint, error) {
	if err := checkSize("checkpoint size", c.Size); err != nil {
		return Checkpoint{}, err
	}
	k := checker{stored: stored}
	if c.Size == 0 {
		if err := k.checkRoot(c); err != nil {
			return Checkpoint{}, err
		}
	}
	for e, err := range entries {
		n := k.f.n
		if err != nil {
			return Checkpoint{}, &EntryError{Index: n, Err: err}
		}
		_, hashes := k.f.Append(e)
		if err := k.compare(n, hashes); err != nil {
			return Checkpoint{}, err
		}
		if k.f.n == c.Size {
			if err := k.checkRoot(c); err != nil {
				return Checkpoint{}, err
			}
		}
	}
	if err := k.flush(); err != nil {
		return Checkpoint{}, err
	}
	if k.f.n < c.Size {
		return Checkpoint{}, fmt.Errorf("%w: %d entries, checkpoint has %d", ErrShortLog, k.f.n, c.Size)
	}
	root, err := tlog.TreeHash(k.f.n, &k.f)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("auditlog: tree hash: %w", err)
	}
	return Checkpoint{Origin: c.Origin, Size: k.f.n, Hash: root}, nil
}

// checker is the state of one CheckLog.
type checker struct {
	f      Frontier
	stored tlog.HashReader
	// batch holds recomputed hashes not yet compared with stored ones,
	// from stored index first on; owner is the entry each belongs to.
	first int64
	batch []tlog.Hash
	owner []int64
}

// compare queues the hashes recomputed for entry n for comparison.
func (k *checker) compare(n int64, hashes []tlog.Hash) error {
	if k.stored == nil {
		return nil
	}
	for _, h := range hashes {
		k.batch = append(k.batch, h)
		k.owner = append(k.owner, n)
	}
	if len(k.batch) >= checkBatch {
		return k.flush()
	}
	return nil
}

// flush compares the queued hashes with the stored ones.
func (k *checker) flush() error {
	if len(k.batch) == 0 {
		return nil
	}
	indexes := make([]int64, len(k.batch))
	for i := range indexes {
		indexes[i] = k.first + int64(i)
	}
	got, err := k.stored.ReadHashes(indexes)
	if err == nil && len(got) != len(indexes) {
		err = fmt.Errorf("ReadHashes(%d indexes) = %d hashes", len(indexes), len(got))
	}
	if err != nil {
		return k.readError(err)
	}
	for i, h := range got {
		if h != k.batch[i] {
			return &EntryError{Index: k.owner[i], Err: ErrEntryMismatch}
		}
	}
	k.first += int64(len(k.batch))
	k.batch, k.owner = k.batch[:0], k.owner[:0]
	return nil
}

// readError names the first entry of the batch whose stored hashes
// cannot be read, reading them one entry at a time, and returns err for
// it (or the first entry's, if each read alone succeeds).
func (k *checker) readError(err error) error {
	index, at := k.owner[0], k.first
	for i := 0; i < len(k.batch); {
		n := k.owner[i]
		j := i
		for j < len(k.batch) && k.owner[j] == n {
			j++
		}
		indexes := make([]int64, j-i)
		for x := range indexes {
			indexes[x] = at + int64(i+x)
		}
		if got, e := k.stored.ReadHashes(indexes); e != nil || len(got) != len(indexes) {
			index = n
			if e != nil {
				err = e
			}
			break
		}
		i = j
	}
	return &EntryError{Index: index, Err: fmt.Errorf("auditlog: reading stored hashes: %w", err)}
}

// checkRoot checks the tree read so far, of c.Size entries, against c.
func (k *checker) checkRoot(c Checkpoint) error {
	// An entry-level fault before c.Size is the more precise report.
	if err := k.flush(); err != nil {
		return err
	}
	root, err := tlog.TreeHash(c.Size, &k.f)
	if err != nil {
		return fmt.Errorf("auditlog: tree hash at size %d: %w", c.Size, err)
	}
	if root != c.Hash {
		return fmt.Errorf("%w: the first %d entries hash to %v, checkpoint has %v", ErrTreeMismatch, c.Size, root, c.Hash)
	}
	return nil
}
