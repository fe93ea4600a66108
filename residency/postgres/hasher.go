package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/domicile-go/domicile/auditlog"
)

// The hasher stores the tree's stored hashes of what this Store appended
// right after each commit, so that a changes row rewritten after its
// commit no longer matches its stored hashes, whoever reads it. Append
// queues its committed entries, the very bytes its statement sent (the
// entries LogEntries yields from their rows, byte for byte, as the
// LogStore contract promises and storetest checks); a goroutine hashes
// them onto the tree's right edge, which it keeps in memory (an
// auditlog.Frontier), and inserts the hashes of all the units queued
// meanwhile in one statement. Apply waits for none of this: it costs
// Append a queue push.
//
// The hashes come from the bytes this process committed, not from the
// rows as read later, so a row rewritten at any time after its hashes
// were stored is caught. What remains uncovered is the window between a
// commit and the insert of its hashes, hashDelay plus an INSERT (a few
// milliseconds), which is closed for good only if the writer goes on: an
// entry whose writer stopped (or lost the database) in that window is
// hashed by the lazy path (extendHashes) from its row as it is then, and
// a rewrite before that is caught only by a checkpoint signed earlier.
// Entries of other processes between two of this one's are read from
// their rows, unless their writers stored their hashes first.

// hashDelay is how long the goroutine waits after a commit for others to
// hash with it: the hashes of an entry are stored about this long after its
// commit, plus an INSERT.
const hashDelay = 10 * time.Millisecond

// maxQueued bounds the entries queued for hashing; beyond it the queue is
// dropped, and the lazy path hashes them when someone reads.
const maxQueued = 1 << 16

// queued is a committed unit's entries, the first at log index first.
type queued struct {
	first   int64
	entries [][]byte
}

// hasher is the state of the Store's hashing goroutine.
type hasher struct {
	kick chan struct{} // buffered 1: work is queued
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the goroutine returns

	// queue, guarded by Store.mu, holds the units committed and not yet
	// hashed; n counts their entries.
	queue []queued
	n     int

	// f is the right edge of the tree of the entries whose hashes are
	// stored, when ready; guarded by Store.logMu.
	f     auditlog.Frontier
	ready bool
}

// startHasher starts the hashing goroutine of a writable Store.
func (s *Store) startHasher() {
	s.hash = &hasher{kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.hashLoop()
}

// stopHasher stores what is queued (for at most a few seconds) and stops
// the goroutine.
func (s *Store) stopHasher() {
	if s.hash == nil {
		return
	}
	close(s.hash.stop)
	<-s.hash.done
}

// hashLater queues the entries committed at log indexes first on, the
// bytes the apply statement sent (no one writes to them afterwards), for
// the hashing goroutine. It is called after the commit, before Append
// returns.
func (s *Store) hashLater(first int64, entries [][]byte) {
	if s.hash == nil {
		return
	}
	s.mu.Lock()
	h := s.hash
	if h.n+len(entries) > maxQueued {
		h.queue, h.n = nil, 0
	}
	h.queue = append(h.queue, queued{first, entries})
	h.n += len(entries)
	s.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (s *Store) hashLoop() {
	h := s.hash
	defer close(h.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-h.stop
		// Give the last insert a moment, then give up: what it did not
		// store, the lazy path hashes later (Close must not wait long on
		// a database that does not answer).
		select {
		case <-time.After(2 * time.Second):
			cancel()
		case <-h.done:
		}
	}()
	for {
		select {
		case <-h.kick:
		case <-h.stop:
			s.hashQueued(ctx) // what the last Appends queued
			return
		}
		// Let the units of the next commits join this one's: one INSERT
		// for several Appends under load.
		select {
		case <-time.After(hashDelay):
		case <-h.stop:
		}
		s.hashQueued(ctx)
	}
}

// hashQueued hashes the queued units onto the tree and stores the hashes.
// On failure it forgets the queue and the tree's edge: the lazy path
// hashes those entries later, and the next run starts from the table.
func (s *Store) hashQueued(ctx context.Context) {
	s.mu.Lock()
	h := s.hash
	units := h.queue
	h.queue, h.n = nil, 0
	s.mu.Unlock()
	if len(units) == 0 {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if err := s.hashUnits(ctx, units); err != nil {
		h.ready = false
	}
}

// hashUnits appends units (in any order) to the tree's edge h.f, reading
// the entries between them that other processes wrote, and stores the
// hashes. The caller holds logMu.
func (s *Store) hashUnits(ctx context.Context, units []queued) error {
	h := s.hash
	slices.SortFunc(units, func(a, b queued) int { return int(a.first - b.first) })
	if !h.ready {
		if err := s.hashFromTable(ctx); err != nil {
			return err
		}
	}
	first := tlog.StoredHashCount(h.f.Size())
	var hashes []tlog.Hash
	for _, u := range units {
		if u.first > h.f.Size() {
			// Entries of others: hashed by their writers, or to be read.
			if len(hashes) > 0 {
				if err := s.insertHashes(ctx, first, hashes); err != nil {
					return err
				}
				hashes = nil
			}
			if err := s.hashFromTable(ctx); err != nil {
				return err
			}
			if u.first > h.f.Size() {
				err := s.hashEntries(ctx, &h.f, u.first, func(first int64, hs []tlog.Hash) error {
					return s.insertHashes(ctx, first, hs)
				})
				if err != nil {
					return err
				}
			}
			first = tlog.StoredHashCount(h.f.Size())
		}
		skip := h.f.Size() - u.first // entries already hashed
		for _, e := range u.entries[min(skip, int64(len(u.entries))):] {
			_, hs := h.f.Append(e)
			hashes = append(hashes, hs...)
		}
	}
	if len(hashes) == 0 {
		return nil
	}
	return s.insertHashes(ctx, first, hashes)
}

// hashFromTable moves the tree's edge h.f to the entries whose hashes the
// table holds, when it holds more than h.f (or h.f is not ready).
func (s *Store) hashFromTable(ctx context.Context) error {
	h := s.hash
	k, count, err := s.hashedPrefix(ctx)
	if err != nil {
		return err
	}
	if h.ready && k <= h.f.Size() {
		return nil
	}
	f, err := auditlog.LoadFrontier(k, s.tableReader(ctx, count))
	if err != nil {
		return err
	}
	h.f, h.ready = f, true
	return nil
}

// insertHashes stores hashes at stored hash indexes first on.
func (s *Store) insertHashes(ctx context.Context, first int64, hs []tlog.Hash) error {
	idx := make([]int64, len(hs))
	hashes := make([][]byte, len(hs))
	for j := range hs {
		idx[j], hashes[j] = first+int64(j), hs[j][:]
	}
	// Not run, it may run again.
	_, err := read(ctx, s, func() (struct{}, error) {
		err := serialized(ctx, func() error {
			_, err := s.pool.Exec(ctx, s.sql.insertHashes, idx, hashes)
			return err
		})
		if err != nil {
			return struct{}{}, fmt.Errorf("postgres: storing hashes: %w", connectError(err))
		}
		return struct{}{}, nil
	})
	return err
}
