package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/domicile-go/domicile/residency"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// format is the version of the tables this package writes. Any change to
// them, or to the JSON of the changes log, needs a new version and an
// upgrade step in setup.
const format = 4

// schemaDDL creates the current format in schema %[1]s (sanitised): the
// tables of format 1 and what formats 2, 3 and 4 added, as an upgrade
// creates them, so that a new schema and an upgraded one have the same
// layout. Format 3 added the audit log's loghashes table (logDDL) and the
// meta key 'logstart', and no longer lets Trim remove changes. Format 4
// versions data center statuses (upgrade4DDL).
const schemaDDL = schemaDDL1 + upgrade2DDL + logDDL + upgrade4DDL

// upgrade4DDL turns format 3 into format 4 in schema %[1]s (sanitised).
// Format 3 already counted each data center's changes in its version
// column, but wrote statuses without checking it; format 4 checks it, and
// counts all status changes in the head row, so that a write decided on
// older statuses is refused (statements.go). A data center's row records
// the version its last change followed (prev), a column without default
// that format 3's statement does not fill: a Router of format 3 still
// running after the upgrade fails to write a status (a not-null
// violation), rather than change one without counting it in the head.
const upgrade4DDL = `
ALTER TABLE %[1]s.head ADD COLUMN statuses bigint NOT NULL DEFAULT 0;
UPDATE %[1]s.head SET statuses = (SELECT coalesce(sum(version), 0) FROM %[1]s.datacenters);
ALTER TABLE %[1]s.datacenters ADD COLUMN prev bigint NOT NULL DEFAULT 0;
ALTER TABLE %[1]s.datacenters ALTER COLUMN prev DROP DEFAULT;
`

// upgradeLocks takes, in schema %[1]s (sanitised), the locks an upgrade
// needs before it changes anything, in an order that cannot deadlock with
// Routers of an older format still running (setup says why).
const upgradeLocks = `
LOCK TABLE %[1]s.datacenters IN SHARE MODE;
LOCK TABLE %[1]s.head IN ACCESS EXCLUSIVE MODE;
`

// refuseTrimDDL makes the database refuse, in schema %[1]s (sanitised),
// any DELETE from the changes, which are the audit log since format 3.
// Only an upgrade from format 1 or 2 adds it: Routers of those formats
// may still be running, and their Store's Trim removed changes (and
// moved head's trim mark, in the same statement, which fails with it).
// Nothing of this package deletes changes; the trigger, not being a
// column, is no part of the layout.
const refuseTrimDDL = `
CREATE FUNCTION %[1]s.refuse_trim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'domicile: the changes are the audit log since format 3, never removed: an instance of format 1 or 2 still running called Store.Trim; nothing was removed'
		USING ERRCODE = 'object_not_in_prerequisite_state';
END
$$;
CREATE TRIGGER refuse_trim BEFORE DELETE OR TRUNCATE ON %[1]s.changes
	FOR EACH STATEMENT EXECUTE FUNCTION %[1]s.refuse_trim();
`

// schemaDDL1 creates format 1 in schema %[1]s (sanitised). Every id and
// reference column sorts bytewise (COLLATE "C"), as Go compares strings,
// so that Load returns accounts in the order the Store contract asks.
const schemaDDL1 = `
CREATE SCHEMA IF NOT EXISTS %[1]s;

-- meta: domicile's marker. 'format' is the format version of the tables
-- below; 'layout' is their columns as created, which Open compares with
-- what it finds, so that tables altered by someone else are noticed.
CREATE TABLE %[1]s.meta (
	key   text PRIMARY KEY,
	value text NOT NULL
);

-- accounts: each account's current placement, one row per account.
-- version grows by one with every change; move_id is NULL when no move is
-- in progress, and then so are the other move_ columns.
CREATE TABLE %[1]s.accounts (
	id            text COLLATE "C" PRIMARY KEY,
	version       bigint NOT NULL CHECK (version > 0),
	country       text NOT NULL,
	region        text NOT NULL,
	datacenter    text NOT NULL,
	provider      text NOT NULL,
	backup        text NOT NULL,
	rule          text NOT NULL,
	transfer      text NOT NULL,
	created       timestamptz,
	created_ns    smallint NOT NULL,
	updated       timestamptz,
	updated_ns    smallint NOT NULL,
	move_id       text,
	move_from     text,
	move_to       text,
	move_region   text,
	move_transfer text,
	move_began    timestamptz,
	move_began_ns smallint
);

-- events: every account's whole audit trail, one row per version, never
-- updated. The keys enforce the versioning of writes: a version is taken
-- once (primary key), and only right after the one before it (prev
-- references it; NULL for version 1), so a stale write fails.
CREATE TABLE %[1]s.events (
	account   text COLLATE "C" NOT NULL,
	version   bigint NOT NULL CHECK (version > 0),
	prev      bigint CHECK (prev = version - 1),
	time      timestamptz,
	time_ns   smallint NOT NULL,
	kind      text NOT NULL,
	source    text NOT NULL,
	target    text NOT NULL,
	rule      text NOT NULL,
	reference text NOT NULL,
	move_id   text NOT NULL,
	PRIMARY KEY (account, version),
	FOREIGN KEY (account, prev) REFERENCES %[1]s.events (account, version),
	CHECK ((version = 1) = (prev IS NULL))
);

-- agreements: every account's transfer agreements, by reference, revoked
-- ones included.
CREATE TABLE %[1]s.agreements (
	account    text COLLATE "C" NOT NULL,
	reference  text COLLATE "C" NOT NULL,
	to_region  text NOT NULL,
	expires    timestamptz,
	expires_ns smallint NOT NULL,
	granted    timestamptz,
	granted_ns smallint NOT NULL,
	revoked    timestamptz,
	revoked_ns smallint NOT NULL,
	PRIMARY KEY (account, reference)
);

-- datacenters: data center statuses set at run time (Drain, Activate),
-- which override the catalog's. version counts the changes.
CREATE TABLE %[1]s.datacenters (
	id         text COLLATE "C" PRIMARY KEY,
	status     text NOT NULL,
	changed    timestamptz,
	changed_ns smallint NOT NULL,
	version    bigint NOT NULL
);

-- head: one row, the position of the last change in the changes log.
-- Every Apply updates it last, which serialises commits and hands out
-- positions in commit order. trimmed is the last position the Trim of
-- format 1 removed from the log; nothing removes changes any more.
CREATE TABLE %[1]s.head (
	one     boolean PRIMARY KEY DEFAULT true CHECK (one),
	pos     bigint NOT NULL,
	trimmed bigint NOT NULL CHECK (trimmed <= pos)
);
INSERT INTO %[1]s.head (pos, trimmed) VALUES (0, 0);

-- members: the Routers that follow this schema, each with the log
-- position it has applied and a lease that ends at expires, by the
-- database's clock; a fence waits for the members whose lease runs.
CREATE TABLE %[1]s.members (
	id      text PRIMARY KEY,
	name    text NOT NULL,
	applied bigint NOT NULL,
	joined  timestamptz NOT NULL,
	expires timestamptz NOT NULL
);

-- changes: every change applied (since the trim mark of format 1), as
-- JSON (a residency.Change), at positions 1, 2, 3... without gaps and in
-- commit order: what followers read, and the audit log's entries.
CREATE TABLE %[1]s.changes (
	pos    bigint PRIMARY KEY,
	change json NOT NULL
);
`

// upgrade2DDL turns format 1 into format 2 in schema %[1]s (sanitised):
// it adds the tables of consents and objections, which format 1 did not
// keep (its Apply refused them), so there is nothing to copy.
const upgrade2DDL = `
-- consents: every account's consents to consent-gated sub-processors, by
-- reference, revoked ones included.
CREATE TABLE %[1]s.consents (
	account      text COLLATE "C" NOT NULL,
	reference    text COLLATE "C" NOT NULL,
	subprocessor text NOT NULL,
	expires      timestamptz,
	expires_ns   smallint NOT NULL,
	granted      timestamptz,
	granted_ns   smallint NOT NULL,
	revoked      timestamptz,
	revoked_ns   smallint NOT NULL,
	PRIMARY KEY (account, reference)
);

-- objections: every account's objections to sub-processors, by reference,
-- withdrawn ones included.
CREATE TABLE %[1]s.objections (
	account      text COLLATE "C" NOT NULL,
	reference    text COLLATE "C" NOT NULL,
	subprocessor text NOT NULL,
	raised       timestamptz,
	raised_ns    smallint NOT NULL,
	withdrawn    timestamptz,
	withdrawn_ns smallint NOT NULL,
	PRIMARY KEY (account, reference)
);
`

// setup creates, upgrades or checks the schema, holding a transaction-level
// advisory lock so that concurrent Opens take turns. A schema that is
// current is only read, without the lock: an instance that holds it (one
// paused in its Open, say) holds up only the Opens that must create or
// upgrade the tables, not every instance's.
func (s *Store) setup(ctx context.Context) error {
	if current, err := s.openCurrent(ctx); current || err != nil {
		return err
	}
	// Read committed, whatever the database's default: each statement
	// sees what was committed before it, so an Open that waited for the
	// lock sees the tables another Open created meanwhile.
	tx, err := s.begin(ctx, pgx.ReadCommitted, "")
	if err != nil {
		// Nothing was done yet: any failure is one of getting a working
		// connection.
		return fmt.Errorf("postgres: cannot connect to the database at %s: %w", s.addr(), err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(s.schema)); err != nil {
		return fmt.Errorf("postgres: locking schema %q for setup: %w", s.schema, err)
	}
	tables, err := s.tables(ctx, tx)
	if err != nil {
		return err
	}
	if !contains(tables, "meta") {
		if len(tables) > 0 {
			return fmt.Errorf("%w: schema %q holds %s and no domicile format marker (table meta); choose another schema with WithSchema", ErrForeign, s.schema, strings.Join(tables, ", "))
		}
		if s.noCreate {
			return fmt.Errorf("%w: schema %q at %s holds no tables, and NoCreate creates none", ErrNoTables, s.schema, s.addr())
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(schemaDDL, pgx.Identifier{s.schema}.Sanitize())); err != nil {
			return fmt.Errorf("postgres: creating tables in schema %q: %w", s.schema, err)
		}
		layout, err := s.layout(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.sql.insertMeta, "format", strconv.Itoa(format), "layout", layout); err != nil {
			return fmt.Errorf("postgres: creating tables in schema %q: %w", s.schema, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+pgx.Identifier{s.schema}.Sanitize()+`.meta (key, value) VALUES ('logstart', '0')`); err != nil {
			return fmt.Errorf("postgres: creating tables in schema %q: %w", s.schema, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("postgres: creating tables in schema %q: %w", s.schema, err)
		}
		return nil
	}
	n, err := s.checkSchema(ctx, tx)
	if err != nil {
		return err
	}
	if n < format {
		// An older format, checked as it was created: upgrade it, still
		// under the lock, and record the new format and layout in the
		// same transaction, so that the upgrade happens whole or not at
		// all.
		//
		// Routers of the older format may still be running, and the
		// upgrade alters head and datacenters. Their writes lock
		// datacenters, then head; their Load reads head, then
		// datacenters. The upgrade takes datacenters from the writers
		// first (SHARE: readers go on), then head, so that it never
		// holds one of the two while one of them holds the other and
		// waits for it, a deadlock that PostgreSQL would end by
		// failing the old Router's write or the upgrade.
		if _, err := tx.Exec(ctx, fmt.Sprintf(upgradeLocks, pgx.Identifier{s.schema}.Sanitize())); err != nil {
			return fmt.Errorf("postgres: upgrading schema %q from format %d to %d: locking its tables: %w", s.schema, n, format, err)
		}
		if n < 2 {
			if _, err := tx.Exec(ctx, fmt.Sprintf(upgrade2DDL, pgx.Identifier{s.schema}.Sanitize())); err != nil {
				return fmt.Errorf("postgres: upgrading schema %q from format %d to 2: %w", s.schema, n, err)
			}
		}
		if n < 3 {
			if err := s.upgradeLog(ctx, tx); err != nil {
				return fmt.Errorf("postgres: upgrading schema %q from format %d to 3: %w", s.schema, n, err)
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(refuseTrimDDL, pgx.Identifier{s.schema}.Sanitize())); err != nil {
				return fmt.Errorf("postgres: upgrading schema %q from format %d to 3: %w", s.schema, n, err)
			}
		}
		if n < 4 {
			if _, err := tx.Exec(ctx, fmt.Sprintf(upgrade4DDL, pgx.Identifier{s.schema}.Sanitize())); err != nil {
				return fmt.Errorf("postgres: upgrading schema %q from format %d to 4: %w", s.schema, n, err)
			}
		}
		if n < 3 {
			if err := s.snapshotLog(ctx, tx); err != nil {
				return fmt.Errorf("postgres: upgrading schema %q from format %d to 3: the log's snapshot: %w", s.schema, n, err)
			}
		}
		layout, err := s.layout(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.sql.updateMeta, "format", strconv.Itoa(format), "layout", layout); err != nil {
			return fmt.Errorf("postgres: upgrading schema %q from format %d to %d: %w", s.schema, n, format, err)
		}
	}
	if err := tx.QueryRow(ctx, s.sql.logStart).Scan(&s.logStart); err != nil {
		return fmt.Errorf("%w: schema %q: reading the log's start: %w", ErrForeign, s.schema, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: opening schema %q: %w", s.schema, err)
	}
	return nil
}

// openCurrent opens a schema of the current format, reading it without
// the setup's lock in one snapshot (repeatable read: another Open's
// creation or upgrade is seen whole or not at all), and reports whether
// it did. A schema without tables, or of an older format, is left to
// setup under the lock; one that is not domicile's or of a newer format
// is refused at once.
func (s *Store) openCurrent(ctx context.Context) (bool, error) {
	tx, err := s.begin(ctx, pgx.RepeatableRead, pgx.ReadOnly)
	if err != nil {
		// Nothing was done yet: any failure is one of getting a working
		// connection.
		return false, fmt.Errorf("postgres: cannot connect to the database at %s: %w", s.addr(), err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	current, err := s.readCurrent(ctx, tx)
	if err != nil {
		return false, err
	}
	// Ended by COMMIT, as setup's transaction is: a rollback here would
	// be one more statement of Open's, which nothing waits for.
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("postgres: opening schema %q: %w", s.schema, err)
	}
	return current, nil
}

// readCurrent is openCurrent's reading, in tx.
func (s *Store) readCurrent(ctx context.Context, tx pgx.Tx) (bool, error) {
	tables, err := s.tables(ctx, tx)
	if err != nil || !contains(tables, "meta") {
		return false, err
	}
	n, err := s.checkSchema(ctx, tx)
	if err != nil || n < format {
		return false, err
	}
	if err := tx.QueryRow(ctx, s.sql.logStart).Scan(&s.logStart); err != nil {
		return false, fmt.Errorf("%w: schema %q: reading the log's start: %w", ErrForeign, s.schema, err)
	}
	return true, nil
}

// checkSchema reads the format version of a schema that has domicile's
// meta table, refuses one it cannot read (newer, or not a number) and
// tables that are not as domicile created them (their layout, recorded
// with the format), and returns the format.
func (s *Store) checkSchema(ctx context.Context, tx pgx.Tx) (int, error) {
	var v, want string
	err := tx.QueryRow(ctx, s.sql.selectMeta, "format").Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w: schema %q has a meta table without a domicile format version", ErrForeign, s.schema)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: schema %q: reading the format version: %w", s.schema, err)
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil || n < 1:
		return 0, fmt.Errorf("%w: schema %q has format version %q", ErrForeign, s.schema, v)
	case n > format:
		return 0, fmt.Errorf("%w: schema %q has format %d, this version of domicile reads %d", residency.ErrFormat, s.schema, n, format)
	}
	if err := tx.QueryRow(ctx, s.sql.selectMeta, "layout").Scan(&want); err != nil {
		return 0, fmt.Errorf("%w: schema %q: reading the layout: %w", ErrForeign, s.schema, err)
	}
	got, err := s.layout(ctx, tx)
	if err != nil {
		return 0, err
	}
	if got != want {
		return 0, fmt.Errorf("%w: the tables of schema %q are not as domicile created them: %s", ErrForeign, s.schema, layoutDiff(want, got))
	}
	return n, nil
}

// tables lists the schema's tables, views and the like, by name.
func (s *Store) tables(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`, s.schema)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing the tables of schema %q: %w", s.schema, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: listing the tables of schema %q: %w", s.schema, err)
	}
	return names, nil
}

// layout describes the schema's tables and columns, one line each.
func (s *Store) layout(ctx context.Context, tx pgx.Tx) (string, error) {
	var out string
	err := tx.QueryRow(ctx, `SELECT coalesce(string_agg(c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
			|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, E'\n' ORDER BY c.relname, a.attnum), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped`, s.schema).Scan(&out)
	if err != nil {
		return "", fmt.Errorf("postgres: reading the tables of schema %q: %w", s.schema, err)
	}
	return out, nil
}

// layoutDiff names the first lines that differ between two layouts.
func layoutDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	in := func(list []string, s string) bool { return contains(list, s) }
	var missing, extra []string
	for _, l := range w {
		if !in(g, l) {
			missing = append(missing, l)
		}
	}
	for _, l := range g {
		if !in(w, l) {
			extra = append(extra, l)
		}
	}
	return fmt.Sprintf("missing %q, unexpected %q", missing, extra)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// addr names the server the store connects to, for errors.
func (s *Store) addr() string {
	c := s.pool.Config().ConnConfig
	if strings.HasPrefix(c.Host, "/") {
		return fmt.Sprintf("%s (socket), database %q", c.Host, c.Database)
	}
	return fmt.Sprintf("%s, database %q", net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.Database)
}

// connectError explains a failure to get a connection.
func connectError(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("postgres: cannot connect to the database: %w", err)
	}
	return fmt.Errorf("postgres: %w", err)
}
