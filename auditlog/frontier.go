package auditlog

import (
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// Frontier is the right edge of a log's tree: for each level, the newest
// complete node, at most 64 hashes. It is all that appending an entry, or
// computing the log's current root hash, reads; so a store can keep one
// in memory beside its log and append without reading stored hashes
// (one query fewer per write for a database store). [CheckLog] uses one
// to recompute a log in O(log n) memory.
//
// A Frontier is a value of about 2 KiB: copy it to append tentatively.
// A store appends to a copy inside its write transaction and keeps the
// copy only once the transaction commits:
//
//	next := *s.frontier
//	first, hashes, err := next.Append(entry)
//	// ... write the entry at next.Size()-1 and the hashes from first, commit ...
//	*s.frontier = next // only after the commit succeeded
//
// A Frontier is right only while it is the sole writer's: a store whose
// log other processes may append to must read the stored hashes
// ([AppendHashes]) or reload it ([LoadFrontier]) in each transaction.
//
// The zero Frontier is that of an empty log. A Frontier is not safe for
// concurrent use: appends are serialised by the caller, as for
// [AppendHashes].
type Frontier struct {
	n     int64 // entries in the log
	nodes [64]tlog.Hash
}

// LoadFrontier returns the frontier of a log of n entries whose stored
// hashes r reads, in one ReadHashes call of at most 64 indexes.
func LoadFrontier(n int64, r tlog.HashReader) (Frontier, error) {
	f := Frontier{n: n}
	if n < 0 {
		return Frontier{}, fmt.Errorf("%w: log size %d", ErrOutOfRange, n)
	}
	var indexes []int64
	for level := 0; n>>level > 0; level++ {
		indexes = append(indexes, tlog.StoredHashIndex(level, n>>level-1))
	}
	if len(indexes) == 0 {
		return f, nil
	}
	hashes, err := r.ReadHashes(indexes)
	if err == nil && len(hashes) != len(indexes) {
		err = fmt.Errorf("ReadHashes(%d indexes) = %d hashes", len(indexes), len(hashes))
	}
	if err != nil {
		return Frontier{}, fmt.Errorf("auditlog: loading the frontier of %d entries: %w", n, err)
	}
	copy(f.nodes[:], hashes)
	return f, nil
}

// Size returns the number of entries in the log.
func (f *Frontier) Size() int64 { return f.n }

// Append appends entries and returns the hashes to store for them, as
// [AppendHashes] does: the i-th at stored hash index first+i. It reads
// nothing but f, and cannot fail.
func (f *Frontier) Append(entries ...[]byte) (first int64, hashes []tlog.Hash) {
	first = tlog.StoredHashCount(f.n)
	hashes = make([]tlog.Hash, 0, tlog.StoredHashCount(f.n+int64(len(entries)))-first)
	for _, e := range entries {
		hashes = f.append(hashes, tlog.RecordHash(e))
	}
	return first, hashes
}

// AppendTo appends one entry, as Append does, and appends the hashes to
// store for it to hashes, the first at stored hash index
// tlog.StoredHashCount(n) for a log of n entries before the call; it
// returns the extended slice. Given room for 64 hashes it allocates
// nothing: a store's write path appends with it.
func (f *Frontier) AppendTo(hashes []tlog.Hash, entry []byte) []tlog.Hash {
	return f.append(hashes, tlog.RecordHash(entry))
}

// append appends the entry whose hash is h and adds its stored hashes to
// hashes: as tlog.StoredHashesForRecordHash, reading the right edge from
// f itself, which holds it whole, so that it cannot fail (and f need not
// escape to the heap as a tlog.HashReader).
func (f *Frontier) append(hashes []tlog.Hash, h tlog.Hash) []tlog.Hash {
	// Each trailing 1 bit of n completes a subtree whose left half is
	// the newest complete node of that level.
	m := bits.TrailingZeros64(uint64(f.n + 1))
	hashes = append(hashes, h)
	for level := range m {
		h = tlog.NodeHash(f.nodes[level], h)
		hashes = append(hashes, h)
	}
	copy(f.nodes[:], hashes[len(hashes)-m-1:])
	f.n++
	return hashes
}

// Checkpoint returns the checkpoint of the log, named origin, at its
// current size.
func (f *Frontier) Checkpoint(origin string) (Checkpoint, error) {
	return NewCheckpoint(origin, f.n, f)
}

// ReadHashes returns the hashes at indexes, each of which must be the
// newest complete node of its level: those are all a Frontier holds. It
// makes a Frontier a [tlog.HashReader] for [tlog.StoredHashes] and
// [tlog.TreeHash] at its size; proofs need the stored hashes.
func (f *Frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		level, k := tlog.SplitStoredHashIndex(x)
		if level >= len(f.nodes) || k != f.n>>level-1 {
			return nil, fmt.Errorf("%w: stored hash %d (level %d, node %d) is not on the right edge of a tree of %d entries", ErrOutOfRange, x, level, k, f.n)
		}
		out[i] = f.nodes[level]
	}
	return out, nil
}
