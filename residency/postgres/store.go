package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/domicile-go/domicile/residency"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is a [residency.Store] on a PostgreSQL database. Besides the
// Store methods it offers what a Router following other instances needs:
// to follow, [Store.Snapshot], [Store.Changes], [Store.Head],
// [Store.Listen] and [Store.LoadAccounts]; to write and know where,
// [Store.Append]; for leases and fences, [Store.Join] and
// [Store.WaitApplied]. The changes are also the audit log
// ([residency.LogStore]), and are never removed.
//
// A Store is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	ownsPool bool
	schema   string
	lease    time.Duration
	poll     time.Duration
	pollOnly bool
	channel  string
	sql      statements

	mu        sync.Mutex
	listeners map[*Listener]struct{}
	closed    bool

	// logStart is the log position before the audit log's first entry
	// (auditlog.go); logMu serialises this process's extensions of the
	// stored hashes.
	logStart int64
	logMu    sync.Mutex
	// readOnly is set by ReadOnly; mem holds the stored hashes a
	// read-only Store computed itself (readonly.go), guarded by logMu.
	readOnly bool
	mem      memHashes
	// noCreate is set by NoCreate: setup creates no tables.
	noCreate bool
	// hash stores the hashes of what Append commits (hasher.go); nil
	// when read-only.
	hash *hasher

	// ownTag ends the notifications of this Store's Appends (see
	// Store.Wakeups): a space and a random ID. An Append that fails
	// replaces it (see newTag).
	ownTag atomic.Pointer[string]
}

// Errors of this package.
var (
	// ErrForeign: the schema holds tables that are not domicile's, or
	// domicile's tables changed by someone else. Open alters nothing then.
	// It matches [residency.ErrCorrupt] too.
	ErrForeign = fmt.Errorf("%w: the schema holds tables that are not domicile's", residency.ErrCorrupt)
	// ErrTrimmed: [Store.Changes] was asked for changes that were trimmed
	// from the log (by the Trim of formats 1 and 2, before the log became
	// the audit log); the follower must load a new snapshot. A follower
	// that starts from a [Store.Snapshot] never asks for them.
	ErrTrimmed = errors.New("postgres: the changes were trimmed from the log")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("postgres: store is closed")
)

// Defaults of the options.
const (
	DefaultSchema       = "domicile"
	DefaultLease        = 10 * time.Second
	DefaultPollInterval = time.Second
	// defaultConnectTimeout bounds each connection attempt when the
	// connection string does not set connect_timeout and the context has
	// no deadline, so that an unreachable server is an error, not a hang.
	defaultConnectTimeout = 10 * time.Second
)

// Option configures [Open].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	schema   string
	lease    time.Duration
	poll     time.Duration
	pollOnly bool
	pool     *pgxpool.Pool
	readOnly bool
	noCreate bool
}

// WithSchema sets the schema of domicile's tables (default "domicile"). It
// is created when missing (unless [NoCreate] or [ReadOnly]). Several
// deployments may share a database with a schema each.
func WithSchema(name string) Option { return optionFunc(func(c *config) { c.schema = name }) }

// NoCreate makes [Open] refuse a schema without domicile's tables (or no
// schema) with [ErrNoTables], creating nothing, where it would create
// them: for a tool that works on an existing store only, which a
// mistyped database name would otherwise give a new, empty one. Tables
// of an older format it still upgrades, as Open does; [ReadOnly] neither
// creates nor upgrades anything.
func NoCreate() Option { return optionFunc(func(c *config) { c.noCreate = true }) }

// WithLease sets how long a Router may answer from memory while it cannot
// reach the database (default 10 s). The Store only keeps it; see
// [Store.Lease]. A Router renews it every quarter of a lease, a query
// each time; it is also how long a fence ([residency.Router.CompleteMove],
// [residency.Router.Drain]) waits at most for a Router that crashed or
// was cut off. Much below a second, a busy database's latency makes
// healthy Routers answer [residency.ErrStale].
func WithLease(d time.Duration) Option { return optionFunc(func(c *config) { c.lease = d }) }

// WithPollInterval sets how often a [Listener] wakes its follower when no
// notification came (default 1 s); it bounds how late a follower learns of
// a change whose notification was lost.
func WithPollInterval(d time.Duration) Option { return optionFunc(func(c *config) { c.poll = d }) }

// WithPollOnly makes a [Listener] poll and never LISTEN: for connections
// through a proxy that pools by transaction (such as PgBouncer with
// pool_mode = transaction), where LISTEN does not work. It is not all
// such a proxy needs: pgx's default exec mode prepares each statement
// once per connection and caches it, and the proxy runs the next
// transaction on another server connection, where it was never prepared.
// So the connection string must also say default_query_exec_mode=exec
// (or simple_protocol), as in
//
//	postgres://app@pgbouncer:6432/helpdesk?default_query_exec_mode=exec
//	host=pgbouncer port=6432 dbname=helpdesk user=app default_query_exec_mode=exec
//
// (see the package doc's "Through PgBouncer"). Followers then learn of
// others' changes by polling, within [WithPollInterval].
func WithPollOnly() Option { return optionFunc(func(c *config) { c.pollOnly = true }) }

// WithPool makes the Store use an existing pool instead of opening one;
// Open's connection string must then be "". The caller keeps the pool and
// closes it after [Store.Close], which does not. Listeners open a
// connection of their own, outside the pool, the way the pool opens one:
// a copy of its ConnConfig, passed through its BeforeConnect hook (so
// credentials fetched for each connection, such as cloud IAM tokens or
// Vault's dynamic passwords, work for them too) and then to its
// AfterConnect hook; only their context watcher is their own (it sets the
// connection's deadline and sends no cancel request). With pgx's
// default_query_exec_mode exec or simple_protocol (see [WithPollOnly]),
// results come back as text, and pgx reads dates only in ISO format: set
// the pool's ConnConfig.RuntimeParams["DateStyle"] = "ISO" unless the
// database's DateStyle is ISO already (a pool Open opens has it); Open
// refuses such a pool otherwise, with an error matching
// [residency.ErrInvalidOption]. The pool's
// BuildContextWatcherHandler must end a query soon after its context is
// done (pgx's default sets the connection's deadline at once): the Store
// says it is a [residency.PromptStore], so a Router waits for its calls
// rather than give up on them.
func WithPool(p *pgxpool.Pool) Option { return optionFunc(func(c *config) { c.pool = p }) }

// Open connects to the database at connString (a URL such as
// "postgres://app@db/helpdesk" or a keyword/value string such as
// "host=db user=app dbname=helpdesk"), creates domicile's tables or checks
// and upgrades them, and returns the Store; with [NoCreate] it creates
// none, and with [ReadOnly] it only checks them. A bad connection string,
// or an option out of range (a schema name
// of 0 or more than 63 bytes, not UTF-8 or holding a NUL; a lease or poll
// interval that is not positive), is an error at once that matches
// [residency.ErrInvalidOption]; an unreachable server is an error by
// ctx's deadline or the connection string's connect_timeout
// (default 10 s), whichever comes first: Open does not retry, so a
// service starting while its database restarts should. Tables of a newer format are
// [residency.ErrFormat]; tables that are not domicile's are [ErrForeign].
// A role without UPDATE on the members table, which leases need, is
// refused with an error that says so and wraps a
// [*github.com/jackc/pgx/v5/pgconn.PgError] of SQLSTATE 42501 (see the
// package doc's Privileges).
func Open(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	c := config{schema: DefaultSchema, lease: DefaultLease, poll: DefaultPollInterval}
	nilOption := false
	for _, o := range opts {
		if o == nil {
			nilOption = true
			continue
		}
		o.apply(&c)
	}
	switch {
	case nilOption:
		return nil, fmt.Errorf("%w: postgres: a nil Option", residency.ErrInvalidOption)
	case c.schema == "" || len(c.schema) > 63:
		return nil, fmt.Errorf("%w: postgres: schema name %.80q: want 1 to 63 bytes", residency.ErrInvalidOption, c.schema)
	case !utf8.ValidString(c.schema) || strings.ContainsRune(c.schema, 0):
		return nil, fmt.Errorf("%w: postgres: schema name %q: want UTF-8 without NUL", residency.ErrInvalidOption, c.schema)
	case c.lease <= 0:
		return nil, fmt.Errorf("%w: postgres: lease %v: want a positive duration", residency.ErrInvalidOption, c.lease)
	case c.poll <= 0:
		return nil, fmt.Errorf("%w: postgres: poll interval %v: want a positive duration", residency.ErrInvalidOption, c.poll)
	case c.pool != nil && connString != "":
		return nil, fmt.Errorf("%w: postgres: both a connection string and WithPool: pass \"\" with WithPool", residency.ErrInvalidOption)
	}
	s := &Store{schema: c.schema, lease: c.lease, poll: c.poll, pollOnly: c.pollOnly, readOnly: c.readOnly, noCreate: c.noCreate, listeners: map[*Listener]struct{}{}}
	s.channel = channelName(c.schema)
	s.newTag()
	s.sql = buildStatements(pgx.Identifier{c.schema}.Sanitize())
	if c.pool != nil {
		s.pool = c.pool
	} else {
		cfg, err := pgxpool.ParseConfig(connString)
		if err != nil {
			return nil, fmt.Errorf("%w: postgres: bad connection string: %w", residency.ErrInvalidOption, parseError(err))
		}
		if cfg.ConnConfig.ConnectTimeout == 0 {
			cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
		}
		// Dates in the one format pgx reads as text (output.go).
		setDateStyle(cfg.ConnConfig.RuntimeParams)
		if c.readOnly {
			// The server refuses every write of these sessions.
			cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
		}
		if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		s.ownsPool = true
	}
	setup := s.setup
	if c.readOnly {
		setup = s.setupReadOnly
	}
	err := setup(ctx)
	if err == nil && !c.readOnly {
		err = s.checkPrivileges(ctx)
	}
	if err == nil && !s.ownsPool {
		err = s.checkDateStyle(ctx)
	}
	if err != nil {
		if s.ownsPool {
			s.pool.Close()
		}
		return nil, err
	}
	if !c.readOnly {
		s.startHasher()
	}
	return s, nil
}

// newTag gives the Store's Appends a new tag. An Append whose outcome is
// unknown may commit after the Router settled it and read the log (the
// server runs the statement on when the client's cancel request is lost
// or late): the notification of that late commit carries the old tag,
// which Wakeups then no longer skips.
func (s *Store) newTag() {
	var id [12]byte
	rand.Read(id[:])
	tag := " " + hex.EncodeToString(id[:])
	s.ownTag.Store(&tag)
}

// channelName is the NOTIFY channel of a schema: at most 63 bytes, the
// longest a PostgreSQL identifier may be.
func channelName(schema string) string {
	ch := "domicile." + schema
	if len(ch) <= 63 {
		return ch
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	// At most 36 bytes of the schema's name, cut between two characters.
	cut := 36
	for cut > 0 && !utf8.RuneStart(schema[cut]) {
		cut--
	}
	return fmt.Sprintf("domicile.%s.%016x", schema[:cut], h.Sum64())
}

// lockKey is the advisory lock that serialises Opens of one schema.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("domicile schema " + schema))
	return int64(h.Sum64())
}

// Lease returns the lease set by [WithLease].
func (s *Store) Lease() time.Duration { return s.lease }

// Schema returns the schema of domicile's tables.
func (s *Store) Schema() string { return s.schema }

// Channel returns the NOTIFY channel that every Apply notifies with the new
// head position as its payload; an Append's payload goes on after the
// position with a space and the writing Store's tag (see [Store.Wakeups]),
// so a reader of the payloads takes the digits before the first space.
func (s *Store) Channel() string { return s.channel }

// ReturnsPromptly says that the Store is a [residency.PromptStore]: every
// call returns soon after its context is done, since pgx then sets the
// connection's deadline (with a pool from [WithPool], when its context
// watcher does), so a Router calls it in the writer's goroutine.
func (s *Store) ReturnsPromptly() {}

// Close stops the store's listeners, stores the log's hashes of what it
// appended (waiting at most a few seconds) and, unless the pool came from
// [WithPool], closes its connections. It waits for queries in flight.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ls := make([]*Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	s.stopHasher()
	if s.ownsPool {
		s.pool.Close()
	}
	return nil
}

// errClosed reports whether the store is closed.
func (s *Store) errClosed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

var _ residency.PromptStore = (*Store)(nil)

// begin starts a transaction of isolation level iso and access mode mode
// ("" for the session's default: a database an operator made read-only
// stays so) that an idle_in_transaction_session_timeout set on the
// database or role does not end: the SET LOCAL that lifts it goes with
// the BEGIN, in one round trip, so the transaction is never idle with the
// timeout on. A transaction of this store may wait between its statements
// longer than an operator's timeout of seconds: Open's snapshot while the
// Router applies a page, any of them on a throttled container or in a
// long garbage collection pause.
func (s *Store) begin(ctx context.Context, iso pgx.TxIsoLevel, mode pgx.TxAccessMode) (pgx.Tx, error) {
	return s.pool.BeginTx(ctx, pgx.TxOptions{
		BeginQuery: "BEGIN ISOLATION LEVEL " + string(iso) + " " + string(mode) + "; SET LOCAL idle_in_transaction_session_timeout = 0",
	})
}

// parseError returns pgx's error for a connection string it cannot parse
// without the connection string: pgconn masks the passwords it repeats
// only on a best-effort basis (its ParseConfigError says so), and misses
// some ("password = x" with spaces, a URL whose query does not parse).
// What is left says what was wrong; the error it wraps, if any, is kept.
func parseError(err error) error {
	pe, ok := errors.AsType[*pgconn.ParseConfigError](err)
	if !ok {
		return err
	}
	c := *pe
	c.ConnString = ""
	return &noConnStringError{msg: strings.TrimPrefix(c.Error(), "cannot parse ``: "), err: pe.Unwrap()}
}

// noConnStringError is a ParseConfigError's text without the connection
// string, wrapping the error the ParseConfigError wrapped.
type noConnStringError struct {
	msg string
	err error
}

func (e *noConnStringError) Error() string { return e.msg }
func (e *noConnStringError) Unwrap() error { return e.err }
