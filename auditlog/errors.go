package auditlog

import (
	"errors"
	"fmt"
)

// Errors of this package. Every error it returns for one of these
// conditions matches the sentinel with [errors.Is]; errors that name an
// entry are [*EntryError] values wrapping one of them.
var (
	// ErrMalformedCheckpoint reports a checkpoint text that is not in the
	// tlog-checkpoint form, or a signed note that cannot be parsed.
	ErrMalformedCheckpoint = errors.New("auditlog: malformed checkpoint")

	// ErrUnknownKey reports a signed checkpoint that bears no signature by
	// any of the keys it was opened with: it was signed by other keys only,
	// which its text names. A checkpoint not signed at all is not a signed
	// note: [ErrMalformedCheckpoint].
	ErrUnknownKey = errors.New("auditlog: checkpoint not signed by a known key")

	// ErrBadSignature reports a signature, by one of the keys the checkpoint
	// was opened with, that does not verify: the checkpoint was altered after
	// it was signed, or the signature forged.
	ErrBadSignature = errors.New("auditlog: invalid checkpoint signature")

	// ErrOriginMismatch reports two checkpoints of different logs compared
	// as if they were of the same one.
	ErrOriginMismatch = errors.New("auditlog: checkpoints of different origins")

	// ErrInvalidProof reports a proof that does not prove what it was
	// checked for: the entry is not in the checkpoint's tree, or the newer
	// checkpoint's tree does not extend the older one's.
	ErrInvalidProof = errors.New("auditlog: invalid proof")

	// ErrOutOfRange reports an entry index or a tree size outside the log.
	ErrOutOfRange = errors.New("auditlog: index out of range")

	// ErrShortLog reports a log holding fewer entries than a checkpoint
	// of it counted: entries were removed from its end.
	ErrShortLog = errors.New("auditlog: log shorter than its checkpoint")

	// ErrTreeMismatch reports a log whose entries do not hash to a
	// checkpoint's root hash at the checkpoint's size: some entry before
	// that size was rewritten, inserted or removed.
	ErrTreeMismatch = errors.New("auditlog: log does not hash to its checkpoint")

	// ErrEntryMismatch reports a stored entry whose hashes disagree with the
	// hashes stored for it: the entry, or a hash, was rewritten.
	ErrEntryMismatch = errors.New("auditlog: entry does not match its stored hashes")
)

// EntryError is an error about the entry at Index. Err is one of the
// sentinels above ([ErrEntryMismatch], [ErrInvalidProof], [ErrOutOfRange])
// or the error met while reading the entry.
type EntryError struct {
	Index int64
	Err   error
}

// Error returns "auditlog: entry INDEX: " followed by Err's text without
// its own "auditlog: " prefix.
func (e *EntryError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%sentry %d", prefix, e.Index)
	}
	msg := e.Err.Error()
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		msg = msg[len(prefix):]
	}
	return fmt.Sprintf("%sentry %d: %s", prefix, e.Index, msg)
}

// Unwrap returns Err.
func (e *EntryError) Unwrap() error { return e.Err }

const prefix = "auditlog: "

// MaxSize is the largest log size this package handles: tlog's tree
// arithmetic overflows past it (its maxpow2 of size+1 doubles past 2^63
// from size 2^62 on). Sizes above it, in a checkpoint or asked of a
// proof, are [ErrOutOfRange].
const MaxSize = 1<<62 - 1

// checkSize is ErrOutOfRange for a tree size below 0 or above MaxSize.
func checkSize(what string, n int64) error {
	if n < 0 || n > MaxSize {
		return fmt.Errorf("%w: %s %d, want 0 to %d", ErrOutOfRange, what, n, int64(MaxSize))
	}
	return nil
}
