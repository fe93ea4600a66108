package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/residency"
)

// A read-only Store, for an auditor's tools (examples/audit): it reads
// domicile's tables and writes nothing. Open checks the schema in one READ
// ONLY transaction, without the setup lock; the pool Open opens runs every
// session with default_transaction_read_only, so that the server refuses
// any write the store would attempt; Apply, Append and Join refuse at once;
// and the log's stored hashes that no writer has stored yet are computed
// in memory (memHashes) instead of being inserted.

// ReadOnly makes [Open] open the store for reading only, as an auditor's
// tool does, with no more than SELECT privileges on domicile's tables. It
// never creates, upgrades or writes anything: a schema without domicile's
// tables is [ErrNoTables] and one of an older format [ErrNeedsUpgrade]
// (open it once without ReadOnly to upgrade it), both leaving the
// database as it was. On a pool Open opens, every session runs with
// default_transaction_read_only on, so that the server refuses any write;
// with [WithPool], configure the pool so if you need that guarantee.
//
// That setting is a startup parameter of each connection, which PgBouncer
// refuses (in any pool mode, unless its ignore_startup_parameters lists
// it, and then it drops the guarantee without a word): connect a
// read-only store to the server directly, or to a standby, not through
// such a proxy. Open's error says so when a proxy refuses it.
//
// [Store.Apply], [Store.Append] and [Store.Join] fail with [ErrReadOnly],
// and so a Router cannot write through the store. [Store.ReadHashes]
// computes the stored hashes of the log's latest entries, when their
// writer has not stored them yet, in memory and keeps them there.
func ReadOnly() Option { return optionFunc(func(c *config) { c.readOnly = true }) }

// Errors of a read-only Store (ErrNoTables, of [NoCreate] too).
var (
	// ErrReadOnly: a write through a Store opened with [ReadOnly].
	ErrReadOnly = errors.New("postgres: the store was opened read-only")
	// ErrNoTables: [Open] with [ReadOnly] or [NoCreate] found no domicile
	// tables in the schema (or no schema), and created none.
	ErrNoTables = errors.New("postgres: no domicile tables in the schema")
	// ErrNeedsUpgrade: [Open] with [ReadOnly] found domicile's tables in an
	// older format, which only a writable Open upgrades. It matches
	// [residency.ErrFormat] too, as the file store's read-only open does.
	ErrNeedsUpgrade = fmt.Errorf("%w: the tables are of an older format, which a read-only open does not upgrade", residency.ErrFormat)
)

// setupReadOnly checks the schema as setup does, reading it in one READ
// ONLY transaction and changing nothing.
func (s *Store) setupReadOnly(ctx context.Context) error {
	tx, err := s.begin(ctx, pgx.RepeatableRead, pgx.ReadOnly)
	if err != nil {
		if refusedReadOnly(err) {
			return fmt.Errorf("postgres: ReadOnly connects with the startup parameter default_transaction_read_only=on, so that the server refuses every write, and the server at %s refused it: a proxy such as PgBouncer refuses startup parameters it does not know; connect a read-only store to PostgreSQL directly, or to a standby: %w", s.addr(), err)
		}
		return fmt.Errorf("postgres: cannot connect to the database at %s: %w", s.addr(), err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	tables, err := s.tables(ctx, tx)
	if err != nil {
		return err
	}
	if !contains(tables, "meta") {
		if len(tables) > 0 {
			return fmt.Errorf("%w: schema %q holds %s and no domicile format marker (table meta)", ErrForeign, s.schema, strings.Join(tables, ", "))
		}
		return fmt.Errorf("%w: schema %q at %s holds no tables", ErrNoTables, s.schema, s.addr())
	}
	n, err := s.checkSchema(ctx, tx)
	if err != nil {
		return err
	}
	if n < format {
		return fmt.Errorf("%w: schema %q has format %d, this version of domicile reads %d", ErrNeedsUpgrade, s.schema, n, format)
	}
	if err := tx.QueryRow(ctx, s.sql.logStart).Scan(&s.logStart); err != nil {
		return fmt.Errorf("%w: schema %q: reading the log's start: %w", ErrForeign, s.schema, err)
	}
	return nil
}

// memHashes are the stored hashes a read-only Store computed itself: those
// at indexes first, first+1, ..., of the entries from the first its writers
// had not hashed when it looked, to f.Size(). Guarded by logMu.
type memHashes struct {
	ready  bool
	first  int64
	f      auditlog.Frontier
	hashes []tlog.Hash
}

// extendInMemory computes, in memory, the stored hashes of the log's first
// n entries that are neither stored nor computed yet. The caller holds
// logMu.
func (s *Store) extendInMemory(ctx context.Context, n int64) error {
	m := &s.mem
	if !m.ready {
		k, count, err := s.hashedPrefix(ctx)
		if err != nil {
			return err
		}
		f, err := auditlog.LoadFrontier(k, s.tableReader(ctx, count))
		if err != nil {
			return err
		}
		*m = memHashes{ready: true, first: count, f: f}
	}
	return s.hashEntries(ctx, &m.f, n, func(first int64, hs []tlog.Hash) error {
		m.hashes = append(m.hashes, hs...)
		return nil
	})
}

// fromMemory fills in out the hashes at indexes that readHashes did not
// find in the table (missing) from those computed in memory, computing the
// log's up to its head first when some are not. The caller holds logMu.
func (s *Store) fromMemory(ctx context.Context, indexes []int64, out []tlog.Hash, missing []int) error {
	m := &s.mem
	have := func(x int64) bool { return m.ready && x >= m.first && x-m.first < int64(len(m.hashes)) }
	for _, k := range missing {
		if !have(indexes[k]) {
			pos, err := s.head(ctx)
			if err != nil {
				return err
			}
			if err := s.extendInMemory(ctx, pos-s.logStart); err != nil {
				return err
			}
			break
		}
	}
	for _, k := range missing {
		x := indexes[k]
		switch {
		case have(x):
			out[k] = m.hashes[x-m.first]
		case m.ready && x < m.first:
			return fmt.Errorf("%w: stored hash %d is missing from table loghashes", residency.ErrCorrupt, x)
		default:
			return fmt.Errorf("%w: stored hash %d, beyond the log's %d entries", auditlog.ErrOutOfRange, x, m.f.Size())
		}
	}
	return nil
}

// refusedReadOnly says whether err is a refusal of the startup parameter
// default_transaction_read_only (PgBouncer's "unsupported startup
// parameter", protocol_violation: 08P01).
func refusedReadOnly(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "08P01" && strings.Contains(pe.Message, "default_transaction_read_only")
}
