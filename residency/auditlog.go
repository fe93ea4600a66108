package residency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/domicile-go/domicile/auditlog"
)

// The audit log: every change a store commits is an entry of one
// deployment-wide, append-only log, in commit order, written in the same
// transaction as the change (see package [auditlog] for the hashing and
// DESIGN.md, "An audit trail an auditor can verify").
//
// # Entry encoding
//
// An entry is [EncodeEntry] of the committed [Change]: the Change as JSON
// with the JSON names of this package's types (the same as the HTTP and
// export forms), compact, fields in declaration order, empty optional
// fields left out, times in RFC 3339 with nanoseconds in UTC. encoding/json
// writes a struct's fields in a fixed order and escapes strings the same
// way every time, so the bytes are a deterministic function of the Change;
// [AppendEntry] writes these bytes by hand, without reflection (it is on
// the path of every durable write); its tests compare it with
// encoding/json's Marshal over Changes whose every field is filled, so a
// field added to Change or to the types it holds must be added to it too.
// [DecodeEntry] reads an entry back.

// EncodeEntry returns the audit log entry of a committed change: its
// canonical JSON encoding, as described above, the bytes json.Marshal
// writes for &c. Stores call it (or [AppendEntry]) for each change they
// commit, before committing; auditors decode entries with [DecodeEntry].
// It fails only for a change JSON cannot hold, such as a time outside the
// years 0 to 9999; a store refuses such a change whole.
func EncodeEntry(c Change) ([]byte, error) {
	return AppendEntry(make([]byte, 0, 512), &c)
}

// DecodeEntry parses an audit log entry written by [EncodeEntry]. It fails
// with an error matching [ErrCorrupt] when entry is not one.
func DecodeEntry(entry []byte) (Change, error) {
	var c Change
	if err := json.Unmarshal(entry, &c); err != nil {
		return Change{}, fmt.Errorf("%w: log entry: %v", ErrCorrupt, err)
	}
	return c, nil
}

// LogStore is a [Store] that keeps the audit log: every change Apply
// commits is appended, in the same atomic unit, with the tlog stored hashes
// of the log's Merkle tree ([auditlog.AppendHashes]). Package storetest
// checks each of these promises.
//
// Entries are numbered from 0 in commit order, the changes of one Apply in
// the order given, and are never rewritten or removed. Entry i is, byte
// for byte, [EncodeEntry] of the i-th change committed, as Apply was given
// it (with UTC times, as the Store contract has them), however the store
// keeps it: an auditor, or another store, can recompute every entry from
// the changes. A unit Apply refuses (an error matching [ErrConflict]), or
// Apply with an ended context, appends nothing; so does any Apply that
// writes nothing.
//
// After Close the three methods fail, as the Store's do.
type LogStore interface {
	Store
	// LogSize returns the number of entries committed.
	LogSize(ctx context.Context) (int64, error)
	// LogEntries calls fn with each entry from index from (0 or more) on,
	// with its index, in index order, as of one committed state; from at
	// or past the end calls fn never. It stops at fn's first error and
	// returns it. Each entry is fn's own: the store keeps no reference to
	// it, and does not reuse it for the next.
	LogEntries(ctx context.Context, from int64, fn func(index int64, entry []byte) error) error
	// ReadHashes returns the stored hashes at indexes (tlog.StoredHashIndex),
	// in the order of indexes: those [tlog.StoredHashes] computes over the
	// entries, so that [tlog.TreeHash] over them is the tree hash of the
	// log's first n entries. Hashes of committed entries never change. An
	// index that no committed entry added is an error.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
}

// HashReader returns a [tlog.HashReader] over s's stored hashes that reads
// with ctx, for the functions of package auditlog.
func HashReader(ctx context.Context, s LogStore) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) { return s.ReadHashes(ctx, indexes) })
}

// Errors of the audit log API.
var (
	// ErrNoLog: the Router's store keeps no audit log (the Router has no
	// store, or one that is not a [LogStore]).
	ErrNoLog = errors.New("residency: the store keeps no audit log")
	// ErrNoSigner: a signed checkpoint was asked of a Router without
	// [WithLogSigner].
	ErrNoSigner = errors.New("residency: no log signer configured")
)

// DefaultLogOrigin is the origin of the log's checkpoints when neither
// [WithLogSigner] nor [WithLogOrigin] names it.
const DefaultLogOrigin = "domicile"

// WithLogSigner makes [Router.SignedCheckpoint] sign checkpoints with s
// (an Ed25519 note signer, as examples/audit keygen makes) and names the
// log after the key: the checkpoints' origin is s.Name(). From the key file
// keygen writes (-key), note.NewSigner(strings.TrimSpace(string(b))) makes
// one, b being the file's bytes.
func WithLogSigner(s note.Signer) Option {
	return optionFunc(func(cfg *config) { cfg.logSigner = s })
}

// WithLogOrigin names the log, the origin line of its checkpoints, when
// they are not signed; with [WithLogSigner] the key's name wins.
func WithLogOrigin(origin string) Option {
	return optionFunc(func(cfg *config) { cfg.logOrigin = origin })
}

func (r *Router) logStore() (LogStore, error) {
	if r.isClosed() {
		return nil, ErrClosed
	}
	ls, ok := r.store.(LogStore)
	if !ok {
		return nil, ErrNoLog
	}
	return ls, nil
}

// Checkpoint returns the head of the audit log: its origin, its size and
// the root hash of the tree of all its entries.
func (r *Router) Checkpoint(ctx context.Context) (auditlog.Checkpoint, error) {
	ls, err := r.logStore()
	if err != nil {
		return auditlog.Checkpoint{}, err
	}
	ctx, cancel := r.untilClose(ctx)
	defer cancel()
	n, err := ls.LogSize(ctx)
	if err != nil {
		return auditlog.Checkpoint{}, r.logErr(err)
	}
	c, err := auditlog.NewCheckpoint(r.logOrigin, n, HashReader(ctx, ls))
	return c, r.logErr(err)
}

// logErr is err, the error of a read of the store's log, or ErrClosed
// when Close closed the store under the read.
func (r *Router) logErr(err error) error {
	if err != nil && r.isClosed() {
		return ErrClosed
	}
	return err
}

// SignedCheckpoint returns the current checkpoint as a note signed by the
// key of [WithLogSigner], the form to publish and give to auditors
// ([auditlog.OpenCheckpoint] opens it). Without a signer it fails with
// [ErrNoSigner].
func (r *Router) SignedCheckpoint(ctx context.Context) ([]byte, error) {
	if _, err := r.logStore(); err != nil {
		return nil, err
	}
	if r.logSigner == nil {
		return nil, ErrNoSigner
	}
	c, err := r.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	return c.Sign(r.logSigner)
}

// LogEntries calls fn with each entry of the audit log from index from on,
// in index order; [DecodeEntry] reads them. It stops at fn's first error
// and returns it. Each entry is fn's own.
func (r *Router) LogEntries(ctx context.Context, from int64, fn func(index int64, entry []byte) error) error {
	ls, err := r.logStore()
	if err != nil {
		return err
	}
	if from < 0 {
		return fmt.Errorf("%w: entry %d", auditlog.ErrOutOfRange, from)
	}
	ctx, cancel := r.untilClose(ctx)
	defer cancel()
	var fnErr error // fn's own error, given back as it is
	err = ls.LogEntries(ctx, from, func(i int64, e []byte) error {
		fnErr = fn(i, e)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return r.logErr(err)
}

// ProveEntry returns the proof that the entry at index is in the log's
// tree of size entries, the tree of a checkpoint of that size; check it
// with [auditlog.CheckEntry]. It fails with an error matching
// [auditlog.ErrOutOfRange] unless 0 <= index < size <= the log's size.
func (r *Router) ProveEntry(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	ls, err := r.logStore()
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.untilClose(ctx)
	defer cancel()
	if err := checkSize(ctx, ls, size); err != nil {
		return nil, r.logErr(err)
	}
	if index < 0 || index >= size {
		return nil, fmt.Errorf("%w: entry %d of %d", auditlog.ErrOutOfRange, index, size)
	}
	p, err := auditlog.ProveEntry(index, size, HashReader(ctx, ls))
	return p, r.logErr(err)
}

// ProveExtension returns the proof that the log's tree of newSize entries
// extends its tree of oldSize entries; check it with
// [auditlog.CheckExtension]. It fails with an error matching
// [auditlog.ErrOutOfRange] unless 0 <= oldSize <= newSize <= the log's size.
func (r *Router) ProveExtension(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	ls, err := r.logStore()
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.untilClose(ctx)
	defer cancel()
	if err := checkSize(ctx, ls, newSize); err != nil {
		return nil, r.logErr(err)
	}
	if oldSize < 0 || oldSize > newSize {
		return nil, fmt.Errorf("%w: sizes %d and %d", auditlog.ErrOutOfRange, oldSize, newSize)
	}
	p, err := auditlog.ProveExtension(oldSize, newSize, HashReader(ctx, ls))
	return p, r.logErr(err)
}

func checkSize(ctx context.Context, ls LogStore, size int64) error {
	n, err := ls.LogSize(ctx)
	if err != nil {
		return err
	}
	if size < 0 || size > n {
		return fmt.Errorf("%w: size %d of a log of %d entries", auditlog.ErrOutOfRange, size, n)
	}
	return nil
}
