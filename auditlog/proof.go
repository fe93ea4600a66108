package auditlog

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// ProveEntry returns the proof that the entry at index is in the tree of
// the log's first size entries (an RFC 6962 audit path, [tlog.ProveRecord]),
// reading the stored hashes through r. Check it with [CheckEntry] against
// a checkpoint of that size.
func ProveEntry(index, size int64, r tlog.HashReader) (tlog.RecordProof, error) {
	if err := checkSize("size", size); err != nil {
		return nil, &EntryError{Index: index, Err: err}
	}
	if index < 0 || index >= size {
		return nil, &EntryError{Index: index, Err: fmt.Errorf("%w: not below size %d", ErrOutOfRange, size)}
	}
	p, err := tlog.ProveRecord(size, index, r)
	if err != nil {
		return nil, &EntryError{Index: index, Err: fmt.Errorf("auditlog: proving inclusion in size %d: %w", size, err)}
	}
	return p, nil
}

// CheckEntry checks that proof proves entry, at index, to be in the tree
// whose head is c. It fails with an [*EntryError] naming index, wrapping
// [ErrInvalidProof] when the proof does not hold (the entry was rewritten,
// or is not at index, or the proof is for another tree) or
// [ErrOutOfRange] when index is not below c.Size.
//
// CheckEntry trusts c: open it with [OpenCheckpoint] first.
func CheckEntry(proof tlog.RecordProof, c Checkpoint, index int64, entry []byte) error {
	if err := checkSize("checkpoint size", c.Size); err != nil {
		return &EntryError{Index: index, Err: err}
	}
	if index < 0 || index >= c.Size {
		return &EntryError{Index: index, Err: fmt.Errorf("%w: not below checkpoint size %d", ErrOutOfRange, c.Size)}
	}
	if err := tlog.CheckRecord(proof, c.Size, c.Hash, index, EntryHash(entry)); err != nil {
		return &EntryError{Index: index, Err: fmt.Errorf("%w: not in checkpoint of size %d: %w", ErrInvalidProof, c.Size, err)}
	}
	return nil
}

// ProveExtension returns the proof that the tree of the log's first
// newSize entries extends the tree of its first oldSize entries (an RFC
// 6962 consistency proof, [tlog.ProveTree]), reading the stored hashes
// through r. It needs 0 <= oldSize <= newSize; the proof from an empty
// log, or between equal sizes, is empty. Check it with [CheckExtension].
func ProveExtension(oldSize, newSize int64, r tlog.HashReader) (tlog.TreeProof, error) {
	if oldSize < 0 || newSize < oldSize || newSize > MaxSize {
		return nil, fmt.Errorf("%w: extension from size %d to %d", ErrOutOfRange, oldSize, newSize)
	}
	if oldSize == 0 {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(newSize, oldSize, r)
	if err != nil {
		return nil, fmt.Errorf("auditlog: proving extension from size %d to %d: %w", oldSize, newSize, err)
	}
	return p, nil
}

// CheckExtension checks that proof proves newer's log to extend older's:
// that the first older.Size entries of the log newer commits to are the
// very entries older committed to. This is what an auditor checks of
// each new checkpoint against the last one it verified. It fails with
//   - [ErrOriginMismatch] when the checkpoints are of different logs;
//   - [ErrShortLog] when newer is smaller than older: the log was cut;
//   - [ErrInvalidProof] when the proof does not hold: an entry older
//     committed to was rewritten, or the proof is for other sizes.
//
// CheckExtension trusts both checkpoints: open them with
// [OpenCheckpoint] first.
func CheckExtension(proof tlog.TreeProof, older, newer Checkpoint) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("%w: %q and %q", ErrOriginMismatch, older.Origin, newer.Origin)
	}
	if older.Size > newer.Size {
		return fmt.Errorf("%w: newer checkpoint has %d entries, older %d", ErrShortLog, newer.Size, older.Size)
	}
	if older.Size < 0 || newer.Size > MaxSize {
		return fmt.Errorf("%w: extension from size %d to %d", ErrOutOfRange, older.Size, newer.Size)
	}
	if older.Size == 0 {
		// Every tree extends the empty one; tlog.CheckTree wants sizes >= 1.
		empty, _ := tlog.TreeHash(0, nil)
		if older.Hash != empty || len(proof) != 0 {
			return fmt.Errorf("%w: extension from size 0 to %d", ErrInvalidProof, newer.Size)
		}
		return nil
	}
	if err := tlog.CheckTree(proof, newer.Size, newer.Hash, older.Size, older.Hash); err != nil {
		return fmt.Errorf("%w: extension from size %d to %d: %w", ErrInvalidProof, older.Size, newer.Size, err)
	}
	return nil
}
