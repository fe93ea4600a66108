// Package postgres is a [residency.Store] on PostgreSQL, for many backend
// instances that share one database: every instance keeps its own
// in-memory Router, and the database is the source of truth and the
// channel between them.
//
//	s, err := postgres.Open(ctx, "postgres://app@db/helpdesk")
//	if err != nil { ... }
//	r, err := residency.Open(ctx, residency.WithStore(s))
//
// It is the only package of domicile that imports pgx: a program that does
// not import it does not link a PostgreSQL driver.
//
// # Tables
//
// [Open] creates its tables in a schema of their own ("domicile" unless
// [WithSchema] says otherwise), or checks and upgrades them, under a
// transaction-level advisory lock, so that many instances may start at
// once. The schema records its format version; a newer one is
// [residency.ErrFormat], an older one is upgraded in place to the current
// format 4 (format 1, which did not keep consents and objections, gains
// their two tables; format 3 added the audit log's hashes). A schema
// that holds tables that are not domicile's is refused with an error
// matching [ErrForeign] and is never altered. A tool that must not
// create a store where it finds none (a mistyped database name) opens it
// with [NoCreate], which refuses a schema without domicile's tables with
// [ErrNoTables]. The tables are:
//
//	meta         domicile's marker: the format version and the tables' layout
//	accounts     each account's current placement
//	events       every account's whole audit trail, one row per version
//	agreements   every account's transfer agreements, revoked ones included
//	consents     every account's consents to sub-processors, revoked ones included
//	objections   every account's objections to sub-processors, withdrawn ones included
//	datacenters  data center statuses set at run time (Drain, Activate)
//	head         one row: the position of the last change in the log, of the last trimmed
//	             (schemas of format 1 and 2), and the count of data center status changes
//	changes      the log of the changes applied, by position: for followers, and the audit log's entries
//	loghashes    the audit log's stored Merkle tree hashes
//	members      the Routers following the log: how far each has applied it, and its lease
//
// Times are stored exactly: a timestamptz (microseconds) and, in a column
// named after it with "_ns", the nanoseconds below the microsecond; NULL is
// the zero time.
//
// # Privileges
//
// The role that first opens an empty database needs CREATE on it (Open
// creates the schema and tables). Other roles need USAGE on the schema and
// SELECT, INSERT, UPDATE and DELETE on its tables. Open refuses a role
// without UPDATE on the members table, naming it, since a Router renews
// its lease with it in the background, where a refusal would otherwise
// only show as [residency.ErrStale] a lease later; what other missing
// privileges refuse fails in the caller's hands, with PostgreSQL's
// "permission denied for table ...". Open's refusal, as the database's,
// wraps a [*github.com/jackc/pgx/v5/pgconn.PgError] of SQLSTATE 42501
// (insufficient_privilege), which errors.As finds. A store opened with
// [ReadOnly] needs SELECT only.
//
// # Writes
//
// [Store.Apply] writes a unit of changes in one statement, and so one
// transaction, sent in one round trip. Versions are checked by the events table
// itself: an event's key is (account, version) and it references the
// account's previous version, so a stale change (its version is taken) or
// one from a writer ahead of the store (the previous version is missing)
// fails the transaction with an error matching [residency.ErrConflict], and
// nothing of the unit is written.
//
// # Database settings
//
// The statements are written for read committed, PostgreSQL's default.
// Under a default_transaction_isolation of repeatable read or serializable
// (a database's or a role's), a write that a concurrent commit overtook
// fails with a serialization failure, nothing of it committed, and the
// Store runs it again, a few times, after short random pauses; Open's
// setup asks for read committed itself. A write is acknowledged only once
// durable: where synchronous_commit is off, the write sets it to local
// for its own transaction (flushed on this server, without waiting for
// the synchronous standbys the operator chose not to wait for). The
// store's transactions of several statements (Open's snapshot, which
// waits between pages while the Router applies one, and its other reads)
// lift idle_in_transaction_session_timeout for themselves. A statement_timeout
// or lock_timeout applies as set: a write it ends fails with the server's
// error, nothing of it committed.
//
// After the database lost commits (restored from a backup, or failed over
// to a standby that missed the last ones), open every Router again: log
// positions after the loss are handed out again, to changes the running
// Routers would not read. [residency.Router.Sync] notices, and returns
// [residency.ErrStale].
//
// # Following
//
// Every Apply also appends its changes to the changes log, at positions
// that have no gaps and follow commit order, and notifies the channel
// [Store.Channel] with the new head position (followed, for an Append, by
// the writing Store's tag: see [Store.Channel]). A follower reads the log by
// position ([Store.Changes]) from the position of a consistent snapshot
// ([Store.Snapshot]), and uses a [Listener] as its wake-up: notifications,
// a wake-up after every (re)connection, and polling, so that a lost
// notification only costs latency.
//
// # Through PgBouncer
//
// A proxy that pools by transaction (PgBouncer with pool_mode =
// transaction, and the like) runs each transaction of a client connection
// on whichever server connection is free. Two things follow, and the
// store needs both:
//
//   - LISTEN does not work: open the store with [WithPollOnly], so that
//     followers poll ([WithPollInterval], 1 s by default);
//   - neither do pgx's cached prepared statements (its default exec
//     mode): the connection string must say default_query_exec_mode=exec
//     (or simple_protocol).
//
// For example:
//
//	s, err := postgres.Open(ctx, "postgres://app@pgbouncer:6432/helpdesk?default_query_exec_mode=exec",
//		postgres.WithPollOnly())
//
// In those modes results come back as text; the store reads them whatever
// the database's DateStyle and bytea_output (with [WithPool], see there).
// Open's setup lock is transaction-level and every write one transaction,
// so nothing else of the store needs a session. A store opened with
// [ReadOnly] cannot go through PgBouncer (in any pool mode): it connects
// directly, or to a standby.
//
// # Reading only
//
// An auditor's tool opens the store with [ReadOnly]: it checks the tables
// in a READ ONLY transaction and never creates, upgrades or writes them
// (a schema without domicile's tables is [ErrNoTables], one of an older
// format [ErrNeedsUpgrade]), its sessions run with
// default_transaction_read_only on (a startup parameter, which PgBouncer
// refuses: connect such a store to the server directly, or to a
// standby), its writes fail with [ErrReadOnly], and it needs no more than
// SELECT on the tables. The log's stored hashes
// that no writer has stored yet, it computes in memory.
//
// # Concurrency
//
// A Store is safe for concurrent use by many goroutines.
//
// # How a Router follows the others, step by step
//
// Users of a Router need none of this; it is what the Router does, for
// those who write a follower of their own:
//
//  1. starts a [Listener] ([Store.Listen], or [Store.Wakeups], which
//     skips the notifications of the store's own Appends) and, with
//     [Store.Snapshot], loads the accounts and statuses with the log
//     position of that snapshot;
//  2. on every wake-up of the Listener, reads [Store.Changes] from the
//     last position it read and applies each change whose version is
//     newer than the one in its memory (its own writes may come back
//     too; a change of one version it already has is skipped);
//  3. on [ErrTrimmed], loads a new snapshot (changes removed by the Trim
//     of formats 1 and 2: a follower that started from a snapshot never
//     meets it);
//  4. writes with [Store.Append] (Apply with the position of the last
//     change), and may wait for followers to reach that position; when
//     the unit's positions follow right after what it read, it need not
//     read them back, and otherwise reads the log at once;
//  5. for Sync, reads [Store.Head] and waits until it has applied up to
//     it;
//  6. joins as a [Member] ([Store.Join]) and, before it first answers,
//     applies the log up to the head read after joining (a fence that
//     counted the members before the join did not wait for it); renews
//     its lease as it applies the log ([Member.Renew]) and stops
//     answering from memory when the lease Renew returned has ended;
//     leaves on Close ([Member.Leave]), once it has stopped answering;
//  7. for a fence (CompleteMove, Drain, and the writes that narrow whom
//     MayAccess lets in: RevokeAccess, Object, AbortMove, Delete), after
//     its write at position p,
//     calls [Store.WaitApplied](p, its own member ID).
//
// An Apply refused with [residency.ErrConflict] means another instance
// changed one of the accounts first: re-read them ([Store.LoadAccounts])
// and decide again. An error that says the changes may or may not have
// been committed (the connection failed after they were sent) is settled
// by the log: the change is there, at some position, or it is not.
package postgres
