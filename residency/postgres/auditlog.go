package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/residency"
)

// The audit log (residency.LogStore) of a PostgreSQL store is the changes
// table: it already holds every committed change at gap-free positions in
// commit order, written by Apply's own statement. Entry i is the change at
// position logstart+i+1, as residency.EncodeEntry encodes it once decoded
// from the row: a deterministic function of the row, so that a row
// rewritten with an UPDATE is a different entry, and the stored JSON's own
// layout (written for followers) is free to differ from the entry bytes.
// logstart (table meta) is 0 for schemas created with the log, and the
// position the log was trimmed to for schemas of formats 1 and 2 upgraded
// to 3: their log starts at the upgrade. Rows are never removed any more.
//
// The tree's stored hashes (table loghashes) are computed after commit,
// not in Apply's transaction: by the Store that appended the entries, right
// after its commit, from the bytes it committed (hasher.go), and otherwise
// by whoever needs them (LogSize, ReadHashes):
//   - the tree is a pure function of the entry sequence, so hashes
//     computed by anyone, any number of times, are the same: two
//     processes extending at once insert the same rows, and INSERT ... ON
//     CONFLICT DO NOTHING lets both succeed;
//   - Apply stays one statement and does not serialise on reading the
//     tree's right edge (the head row already orders commits; computing
//     hashes there would add a round trip to every commit of every
//     process, since no process is the only writer);
//   - hashes are no evidence of their own: an auditor recomputes them from
//     the entries (CheckLog) against a checkpoint signed earlier. An entry
//     rewritten after its hashes were stored is caught by them too; one
//     rewritten before (its writer stopped between its commit and storing
//     them) only by a checkpoint signed earlier.
// The hashes of a batch are inserted in one statement, so the table always
// holds the hashes of a prefix of the log: tlog.StoredHashCount(k) rows for
// some k.

// logPage is how many entries LogEntries and extend read per query.
const logPage = 1000

// LogSize returns the number of entries in the audit log, and makes sure
// the stored hashes cover them all (in memory when read-only).
func (s *Store) LogSize(ctx context.Context) (int64, error) {
	if err := s.errClosed(); err != nil {
		return 0, err
	}
	pos, err := s.head(ctx)
	if err != nil {
		return 0, err
	}
	n := pos - s.logStart
	if err := s.extendHashes(ctx, n); err != nil {
		return 0, err
	}
	return n, nil
}

// LogEntries calls fn with each entry from index from on, in index order.
func (s *Store) LogEntries(ctx context.Context, from int64, fn func(int64, []byte) error) error {
	if err := s.errClosed(); err != nil {
		return err
	}
	for {
		var fnErr error // fn's own error, given back as it is
		n, err := readSome(ctx, s, func(n *int) (int, error) {
			err := s.entries(ctx, from, logPage, func(i int64, e []byte) error {
				*n++
				from = i + 1
				fnErr = fn(i, e)
				return fnErr
			})
			return *n, err
		})
		if fnErr != nil {
			return fnErr
		}
		if err != nil || n < logPage {
			return err
		}
	}
}

// entries reads up to limit entries from index from.
func (s *Store) entries(ctx context.Context, from int64, limit int, fn func(int64, []byte) error) error {
	rows, err := s.pool.Query(ctx, s.sql.logEntries, s.logStart+from, limit)
	if err != nil {
		return fmt.Errorf("postgres: reading the log: %w", connectError(err))
	}
	defer rows.Close()
	want := from
	for rows.Next() {
		var (
			pos int64
			raw []byte
		)
		if err := rows.Scan(&pos, &raw); err != nil {
			return fmt.Errorf("postgres: reading the log: %w", err)
		}
		if pos != s.logStart+want+1 {
			return fmt.Errorf("%w: the log has position %d where entry %d (position %d) belongs", residency.ErrCorrupt, pos, want, s.logStart+want+1)
		}
		var c residency.Change
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("%w: log entry %d (position %d): %v", residency.ErrCorrupt, want, pos, err)
		}
		e, err := residency.EncodeEntry(c)
		if err != nil {
			return fmt.Errorf("%w: log entry %d (position %d): %v", residency.ErrCorrupt, want, pos, err)
		}
		if err := fn(want, e); err != nil {
			return err
		}
		want++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: reading the log: %w", err)
	}
	return nil
}

// ReadHashes returns the stored hashes at indexes, computing and storing
// those of committed entries not hashed yet (in memory when read-only).
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := s.errClosed(); err != nil {
		return nil, err
	}
	out, missing, err := s.readHashes(ctx, indexes)
	if err != nil || len(missing) == 0 {
		return out, err
	}
	if s.readOnly {
		s.logMu.Lock()
		defer s.logMu.Unlock()
		if err := s.fromMemory(ctx, indexes, out, missing); err != nil {
			return nil, err
		}
		return out, nil
	}
	if _, err := s.LogSize(ctx); err != nil { // extends the hashes to the head
		return nil, err
	}
	out, missing, err = s.readHashes(ctx, indexes)
	if err == nil && len(missing) > 0 {
		err = fmt.Errorf("%w: reading stored hashes beyond the log", auditlog.ErrOutOfRange)
	}
	return out, err
}

// readHashes reads the hashes at indexes from table loghashes; missing
// lists the positions in indexes of those it does not hold.
func (s *Store) readHashes(ctx context.Context, indexes []int64) (out []tlog.Hash, missing []int, err error) {
	type result struct {
		out     []tlog.Hash
		missing []int
	}
	r, err := read(ctx, s, func() (result, error) {
		out, missing, err := s.readHashesOnce(ctx, indexes)
		return result{out, missing}, err
	})
	return r.out, r.missing, err
}

// readHashesOnce is readHashes, once.
func (s *Store) readHashesOnce(ctx context.Context, indexes []int64) (out []tlog.Hash, missing []int, err error) {
	rows, err := s.pool.Query(ctx, s.sql.readHashes, indexes)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: reading stored hashes: %w", connectError(err))
	}
	found := make(map[int64]tlog.Hash, len(indexes))
	for rows.Next() {
		var i int64
		if err := rows.Scan(&i, nil); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("postgres: reading stored hashes: %w", err)
		}
		// The hash from the raw value: in text format (exec modes other
		// than pgx's default), bytea_output may be escape (output.go).
		h, err := decodeBytea(rows.RawValues()[1], rows.FieldDescriptions()[1].Format)
		if err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("%w: stored hash %d: %v", residency.ErrCorrupt, i, err)
		}
		if len(h) != len(tlog.Hash{}) {
			rows.Close()
			return nil, nil, fmt.Errorf("%w: stored hash %d has %d bytes", residency.ErrCorrupt, i, len(h))
		}
		found[i] = tlog.Hash(h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("postgres: reading stored hashes: %w", err)
	}
	out = make([]tlog.Hash, len(indexes))
	for k, i := range indexes {
		h, ok := found[i]
		if !ok {
			missing = append(missing, k)
		}
		out[k] = h
	}
	return out, missing, nil
}

// extendHashes makes sure the hashes of the log's first n entries are
// stored, storing those that are not yet, a page of entries per statement;
// a read-only Store computes them in memory instead.
func (s *Store) extendHashes(ctx context.Context, n int64) error {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.readOnly {
		return s.extendInMemory(ctx, n)
	}
	k, count, err := s.hashedPrefix(ctx)
	if err != nil || k >= n {
		return err
	}
	f, err := auditlog.LoadFrontier(k, s.tableReader(ctx, count))
	if err != nil {
		return err
	}
	return s.hashEntries(ctx, &f, n, func(first int64, hs []tlog.Hash) error {
		return s.insertHashes(ctx, first, hs)
	})
}

// hashedPrefix returns k, the number of entries whose stored hashes table
// loghashes holds (always those of a prefix of the log), and count, the
// number of those hashes, tlog.StoredHashCount(k).
func (s *Store) hashedPrefix(ctx context.Context) (k, count int64, err error) {
	count, err = read(ctx, s, func() (int64, error) {
		var count int64
		if err := s.pool.QueryRow(ctx, s.sql.countHashes).Scan(&count); err != nil {
			return 0, fmt.Errorf("postgres: reading stored hashes: %w", connectError(err))
		}
		return count, nil
	})
	if err != nil {
		return 0, 0, err
	}
	k = int64(sort.Search(int(count)+1, func(k int) bool { return tlog.StoredHashCount(int64(k)) >= count }))
	if tlog.StoredHashCount(k) != count {
		return 0, 0, fmt.Errorf("%w: %d stored hashes are those of no log size", residency.ErrCorrupt, count)
	}
	return k, count, nil
}

// tableReader reads stored hashes below count from table loghashes.
func (s *Store) tableReader(ctx context.Context, count int64) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out, missing, err := s.readHashes(ctx, indexes)
		if err == nil && len(missing) > 0 {
			err = fmt.Errorf("%w: stored hash %d, below %d, is missing", residency.ErrCorrupt, indexes[missing[0]], count)
		}
		return out, err
	})
}

// hashEntries appends the log's entries from f.Size() to n to f, a page
// at a time, and gives store the stored hashes of each page, the first at
// index first.
func (s *Store) hashEntries(ctx context.Context, f *auditlog.Frontier, n int64, store func(first int64, hs []tlog.Hash) error) error {
	for f.Size() < n {
		first := tlog.StoredHashCount(f.Size())
		var hs []tlog.Hash
		g := *f // f moves on only with a page stored whole
		_, err := readSome(ctx, s, func(k *int) (int, error) {
			err := s.entries(ctx, g.Size(), int(min(n-g.Size(), logPage)), func(i int64, e []byte) error {
				*k++
				_, h := g.Append(e)
				hs = append(hs, h...)
				return nil
			})
			return *k, err
		})
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("%w: the log ends at entry %d, its head says %d", residency.ErrCorrupt, g.Size(), n)
		}
		if err := store(first, hs); err != nil {
			return err
		}
		*f = g
	}
	return nil
}

// upgradeLog adds the audit log to a schema of format 2 (or one just
// upgraded to it) in tx: the loghashes table, and the log's start at the
// position the changes were trimmed to. setup records the new format.
func (s *Store) upgradeLog(ctx context.Context, tx pgx.Tx) error {
	schema := pgx.Identifier{s.schema}.Sanitize()
	if _, err := tx.Exec(ctx, fmt.Sprintf(logDDL, schema)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+schema+`.meta (key, value) SELECT 'logstart', trimmed::text FROM `+schema+`.head`)
	return err
}

// snapshotLog starts the log of a schema upgraded in tx from format 1 or 2
// whose changes were trimmed, once its tables are of the current format:
// as a file of an older format does, with a snapshot appended to the
// changes, where the log starts. For each account, in ID order, its
// latest change (the placement with the event of its version), then for
// each of its agreements, consents and objections one change carrying it
// (the same placement and event); then each data center's status in ID
// order. The events before each account's latest stay in its trail,
// outside the log. Routers following the changes find nothing new in
// them. A schema never trimmed needs none: its changes are all its
// changes, and its log starts at the first.
func (s *Store) snapshotLog(ctx context.Context, tx pgx.Tx) error {
	schema := pgx.Identifier{s.schema}.Sanitize()
	var pos, trimmed int64
	if err := tx.QueryRow(ctx, `SELECT pos, trimmed FROM `+schema+`.head`).Scan(&pos, &trimmed); err != nil || trimmed == 0 {
		return err
	}
	start := pos
	var entries []string
	add := func(c residency.Change) error {
		e, err := residency.AppendEntry(nil, &c)
		entries = append(entries, string(e))
		return err
	}
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		positions := make([]int64, len(entries))
		for i := range positions {
			positions[i] = pos + 1 + int64(i)
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+schema+`.changes (pos, change) SELECT p, c::json FROM unnest($1::bigint[], $2::text[]) AS u(p, c)`, positions, entries)
		pos += int64(len(entries))
		entries = entries[:0]
		return err
	}
	l := loader{s: s, tx: tx}
	latest := `SELECT DISTINCT ON (account) ` + eventCols + ` FROM ` + schema + `.events WHERE account BETWEEN $1 AND $2 ORDER BY account, version DESC`
	for after := ""; ; {
		page, err := l.accounts(ctx, nil, pageSize, s.sql.accountsPage, after, pageSize)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break // no accounts, or as many as whole pages
		}
		first, last := page[0].Placement.AccountID, page[len(page)-1].Placement.AccountID
		if err := l.attach(ctx, page, s.sql.agreementsRange, s.sql.consentsRange, s.sql.objectionsRange, first, last); err != nil {
			return err
		}
		events := make(map[string]residency.Event, len(page))
		rows, err := tx.Query(ctx, latest, first, last)
		if err != nil {
			return err
		}
		for rows.Next() {
			e, err := scanEvent(rows, "")
			if err != nil {
				rows.Close()
				return err
			}
			events[e.AccountID] = e
		}
		if rows.Close(); rows.Err() != nil {
			return rows.Err()
		}
		for _, a := range page {
			e := events[a.Placement.AccountID]
			changes := []residency.Change{{Placement: a.Placement, Event: e}}
			for i := range a.Agreements {
				changes = append(changes, residency.Change{Placement: a.Placement, Event: e, Agreement: &a.Agreements[i]})
			}
			for i := range a.Consents {
				changes = append(changes, residency.Change{Placement: a.Placement, Event: e, Consent: &a.Consents[i]})
			}
			for i := range a.Objections {
				changes = append(changes, residency.Change{Placement: a.Placement, Event: e, Objection: &a.Objections[i]})
			}
			for _, c := range changes {
				if err := add(c); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if len(page) < pageSize {
			break
		}
		after = last
	}
	dcs, err := s.dataCenters(ctx, tx)
	if err != nil {
		return err
	}
	for i := range dcs {
		if err := add(residency.Change{DataCenter: &dcs[i]}); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE `+schema+`.head SET pos = $1`, pos); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE `+schema+`.meta SET value = $1 WHERE key = 'logstart'`, strconv.FormatInt(start, 10))
	return err
}

// logDDL creates the table of the log's stored hashes, new in format 3.
const logDDL = `
-- loghashes: the tlog stored hashes of the audit log's Merkle tree, by
-- stored hash index; the log's entries are the changes (auditlog.go).
CREATE TABLE %[1]s.loghashes (
	idx  bigint PRIMARY KEY,
	hash bytea NOT NULL
);
`
