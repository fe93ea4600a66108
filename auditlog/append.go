package auditlog

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// EntryHash returns the hash of an entry, the leaf of the tree: SHA-256
// of a zero byte and the entry's bytes (RFC 6962, [tlog.RecordHash]).
func EntryHash(entry []byte) tlog.Hash {
	return tlog.RecordHash(entry)
}

// AppendHashes returns the hashes a store must add when entries are
// appended to a log of n entries whose stored hashes r reads. The i-th
// returned hash is to be stored at index first+i, where first is
// tlog.StoredHashCount(n); the hashes run up to, not including,
// tlog.StoredHashCount(n+len(entries)). On error nothing is to be stored.
//
// A store calls it inside the write transaction that commits the change
// the entries record, with r reading that same transaction, and writes
// the entries (at indexes n, n+1, ...) and the hashes before committing:
// then the log, its hashes and the state it records change together or
// not at all.
//
// Appends must be serialised by the caller: the hashes of entry n depend
// on those of the entries before it, and two appends computed from the
// same n would both claim index n, leaving a tree that matches neither
// log. A store's single writer (or its write lock) is enough.
//
// AppendHashes reads from r only hashes below first, at most about
// log2(n+len(entries)) of them per entry.
func AppendHashes(n int64, r tlog.HashReader, entries ...[]byte) (first int64, hashes []tlog.Hash, err error) {
	if n < 0 {
		return 0, nil, fmt.Errorf("%w: log size %d", ErrOutOfRange, n)
	}
	first = tlog.StoredHashCount(n)
	if len(entries) == 1 {
		// One entry: tlog reads only hashes already stored.
		hashes, err = tlog.StoredHashes(n, entries[0], r)
		if err != nil {
			return 0, nil, fmt.Errorf("auditlog: hashing entry %d: %w", n, err)
		}
		return first, hashes, nil
	}
	hashes = make([]tlog.Hash, 0, tlog.StoredHashCount(n+int64(len(entries)))-first)
	pr := pendingReader{r: r, first: first, pending: &hashes}
	for i, e := range entries {
		hs, err := tlog.StoredHashes(n+int64(i), e, pr)
		if err != nil {
			return 0, nil, fmt.Errorf("auditlog: hashing entry %d: %w", n+int64(i), err)
		}
		hashes = append(hashes, hs...)
	}
	return first, hashes, nil
}

// pendingReader reads hashes below first from r and the others from the
// hashes computed so far in one AppendHashes call.
type pendingReader struct {
	r       tlog.HashReader
	first   int64
	pending *[]tlog.Hash
}

func (p pendingReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var old []int64
	for _, x := range indexes {
		if x < p.first {
			old = append(old, x)
		}
	}
	var oldHashes []tlog.Hash
	if len(old) > 0 {
		var err error
		if oldHashes, err = p.r.ReadHashes(old); err != nil {
			return nil, err
		}
		if len(oldHashes) != len(old) {
			return nil, fmt.Errorf("auditlog: ReadHashes(%d indexes) = %d hashes", len(old), len(oldHashes))
		}
	}
	pending := *p.pending
	for i, x := range indexes {
		if x < p.first {
			out[i], oldHashes = oldHashes[0], oldHashes[1:]
			continue
		}
		if x-p.first >= int64(len(pending)) {
			return nil, fmt.Errorf("auditlog: hash %d not yet computed", x)
		}
		out[i] = pending[x-p.first]
	}
	return out, nil
}
