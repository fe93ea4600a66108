// Package auditlog hashes an append-only log into a Merkle tree, signs its
// heads, and proves and checks what an auditor needs: that an entry is in
// the log, that the log only grew, and that every stored entry hashes to
// the head it was shown. It knows entries as bytes and hashes, nothing of
// what the entries record; domicile's Router and stores feed it.
//
// It is built on golang.org/x/mod/sumdb/tlog (RFC 6962 hashing, the
// checksum database's own log) and golang.org/x/mod/sumdb/note (Ed25519
// signed notes), and writes heads in the C2SP tlog-checkpoint form, so
// that tools made for those logs can read them.
//
// # The log
//
// A log is a sequence of entries, numbered from 0 in the order they were
// committed. Entries are never rewritten or removed. Each entry is hashed
// ([EntryHash]) into a leaf of a Merkle tree; the tree's nodes are kept
// as stored hashes, about two per entry, indexed as
// [tlog.StoredHashIndex] says. The root hash of the tree of the first n
// entries commits to all of them: a [Checkpoint] is that root with its
// size and the log's name (its origin), and a signed checkpoint is one
// signed as a note by the log's key ([Checkpoint.Sign], [OpenCheckpoint]).
//
// Proofs are short (about log2(n) hashes): [ProveEntry] proves that an
// entry is in the tree of a checkpoint, [ProveExtension] that a newer
// checkpoint's log begins with all of an older checkpoint's entries.
// [CheckEntry] and [CheckExtension] check them with nothing but the
// checkpoints and the entry; [CheckLog] recomputes a whole log from its
// entries.
//
// # What an auditor keeps
//
// An auditor keeps the last checkpoint it verified, signed, and the
// public key of the log. Later it opens the log's new checkpoint with that
// key and checks that the new one extends the one kept ([CheckExtension]
// with a proof from the log, or [CheckLog] over all the entries), then
// keeps the new one instead.
//
// Keeping the old checkpoint is what makes the log tamper-evident. The
// operator holds the signing key: given a rewritten history it could
// rebuild the whole tree and sign a new head for it, and that head would
// verify on its own. Only an older head, signed before the rewrite and
// kept out of the operator's reach, shows that the new log no longer
// extends it. Signing two checkpoints of which neither extends the other
// is the log's one unforgivable act: two of one size with different
// hashes show it by themselves; for two of different sizes, the log
// cannot give the proof that the larger extends the smaller
// ([ProveExtension]), which anyone holding both may ask for.
//
// A checkpoint signed by a key the auditor does not know is refused
// ([ErrUnknownKey]); one whose text was changed after signing too
// ([ErrBadSignature]). Signatures by other keys beside a known one are
// ignored, so a log can rotate its key by signing with both for a while.
//
// # How a store uses it
//
// A store keeps the entries and the stored hashes next to the state they
// record, and appends both in the write transaction that commits the
// change, so that the state, the log and its hashes change together or
// not at all:
//
//	tx := begin()
//	defer tx.rollback()
//	tx.applyChange(change)
//	n := tx.logSize()                  // entries stored so far
//	first, hashes, err := auditlog.AppendHashes(n, tx.hashReader(), entry)
//	if err != nil {
//		return err
//	}
//	tx.putEntry(n, entry)
//	for i, h := range hashes {
//		tx.putHash(first+int64(i), h) // stored hash index first+i
//	}
//	return tx.commit()
//
// hashReader is a [tlog.HashReader] (a [tlog.HashReaderFunc] will do) over
// the hashes stored in that same transaction. Appends must be serialised:
// entry n's hashes depend on those of the entries before it, so only one
// transaction may append at a time, which a store's single writer
// ensures. The current head is [NewCheckpoint] over the same reader;
// proofs are [ProveEntry] and [ProveExtension] over any reader that sees
// a committed state of at least the sizes proved.
//
// A store that is its log's only writer can instead keep the log's
// [Frontier] (its tree's right edge, at most 64 hashes) in memory: it
// appends and computes the head without reading any stored hash, and is
// loaded once at open with [LoadFrontier]. Append to a copy inside the
// transaction and keep the copy only once the transaction committed.
//
// [MemoryHashes] is a hash storage held in memory, for tests and tools.
//
// # Concurrency
//
// The functions of this package are pure and safe for concurrent use;
// they read only through the [tlog.HashReader] given. [MemoryHashes] is
// safe for concurrent use; a [Frontier] is not (it is a value its single
// writer owns). A [Checkpoint] is a comparable value.
package auditlog
