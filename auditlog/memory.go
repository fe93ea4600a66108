package auditlog

import (
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// MemoryHashes is a log's hash storage held in memory, for tests and
// tools: it keeps every stored hash (about two per entry, 64 bytes), not
// the entries. It is a [tlog.HashReader], so proofs and checkpoints can be
// computed over it.
//
// The zero MemoryHashes is an empty log, ready to use. It is safe for
// concurrent use; appends are serialised by its lock.
type MemoryHashes struct {
	mu     sync.RWMutex
	size   int64
	hashes []tlog.Hash
}

// Append appends entries to the log and returns the index of the first.
func (m *MemoryHashes) Append(entries ...[]byte) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.size
	first, hashes, err := AppendHashes(n, (*memoryReader)(m), entries...)
	if err != nil {
		return 0, err
	}
	if first != int64(len(m.hashes)) {
		panic("auditlog: MemoryHashes out of step")
	}
	m.hashes = append(m.hashes, hashes...)
	m.size += int64(len(entries))
	return n, nil
}

// Size returns the number of entries appended.
func (m *MemoryHashes) Size() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.size
}

// ReadHashes returns the stored hashes at indexes, in order. It fails
// for an index not stored yet.
func (m *MemoryHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return (*memoryReader)(m).ReadHashes(indexes)
}

// Checkpoint returns the checkpoint of the log, named origin, at its
// current size.
func (m *MemoryHashes) Checkpoint(origin string) (Checkpoint, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return NewCheckpoint(origin, m.size, (*memoryReader)(m))
}

// memoryReader reads a MemoryHashes whose lock the caller holds.
type memoryReader MemoryHashes

func (m *memoryReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("%w: stored hash %d of %d", ErrOutOfRange, x, len(m.hashes))
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}
