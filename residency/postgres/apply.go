package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/domicile-go/domicile/internal/jsontext"
	"github.com/domicile-go/domicile/residency"
	"github.com/jackc/pgx/v5/pgconn"
)

// Apply makes changes durable as one transaction and returns once it has
// committed; see [Store.Append].
func (s *Store) Apply(ctx context.Context, changes []residency.Change) error {
	_, err := s.append(ctx, changes, nil)
	return err
}

// Append is Apply that also returns the log position of the last of the
// changes (0 when there are none): a Router that waits for followers to
// reach its write waits for that position.
//
// The changes are one transaction: every account's and data center's
// versions are checked by the database (each change's version must be one
// more than the stored one, 1 for a new account or data center; several
// changes of one account or data center in a unit must follow each
// other), and a unit with any stale change is refused whole with an error
// matching [residency.ErrConflict] and [residency.ErrStaleVersion]. So is
// a unit decided on fewer data center status changes than the log holds
// (statuses, the sum of the versions of the states the writer knows): see
// [residency.SharedStore].
//
// An error that is neither a conflict nor a refusal of bad input says
// whether the changes may have been committed: when the connection fails
// after they were sent, PostgreSQL may have committed them, and the error
// says so. The changes log then tells (a following Router reads them
// there). A Store opened with [ReadOnly] refuses with [ErrReadOnly].
func (s *Store) Append(ctx context.Context, changes []residency.Change, statuses uint64) (uint64, error) {
	return s.append(ctx, changes, &statuses)
}

// append is Append, with no check of the statuses when statuses is nil.
func (s *Store) append(ctx context.Context, changes []residency.Change, statuses *uint64) (uint64, error) {
	if err := s.errClosed(); err != nil {
		return 0, err
	}
	if s.readOnly {
		return 0, ErrReadOnly
	}
	if len(changes) == 0 {
		return 0, nil
	}
	// One statement: atomic by itself, in one round trip. It takes the
	// head row last (see statements.go), and the row lock that orders
	// commits (see follow.go) is held from there to the commit, within the
	// server.
	args, entries, err := s.applyArgs(changes, statuses)
	if err != nil {
		if err == errVersionZero {
			err = s.explainConflict(ctx, changes, statuses, err)
		}
		return 0, err
	}
	var pos int64
	err = runApply(ctx, s.pool.Reset, func() error {
		return s.pool.QueryRow(ctx, s.sql.apply, args...).Scan(&pos, nil, nil)
	})
	if err != nil {
		if statuses != nil && mayCommitYet(err) {
			// The statement's notification must then wake (see
			// newTag).
			s.newTag()
		}
		err = applyError(err)
		if errors.Is(err, residency.ErrConflict) {
			err = s.explainConflict(ctx, changes, statuses, err)
		}
		return 0, err
	}
	s.hashLater(pos-int64(len(changes))-s.logStart, entries)
	return uint64(pos), nil
}

// applyArgs checks changes and turns them into the parameters of the apply
// statement: for each table, its rows as a JSON array for
// json_to_recordset (nil when there are none): events, accounts, agreements
// and data centers, then the log's changes, their number and the channel
// to notify, then consents and objections, then the number of data
// center rows and of status changes, and the statuses the unit was
// decided on (nil for no check). It also returns each change's log entry,
// the bytes the statement commits, which nothing writes to afterwards.
func (s *Store) applyArgs(changes []residency.Change, statuses *uint64) (args []any, entries [][]byte, err error) {
	type dcRow struct {
		st   *residency.DataCenterState
		prev uint64 // the version the unit's first change of it follows
	}
	var (
		accounts   []*residency.Placement
		accountAt  = map[string]int{}
		events     = make([]*residency.Event, 0, len(changes))
		agreements []*residency.Agreement
		agreeAt    map[[2]string]int
		consents   []*residency.ConsentRecord
		consentAt  map[[2]string]int
		objections []*residency.ObjectionRecord
		objectAt   map[[2]string]int
		dcs        []dcRow
		log        = jw{jsontext.Object{B: make([]byte, 0, 512*len(changes))}}
	)
	for i := range changes {
		// All of them first, as the other stores do: an invalid change
		// is refused as such, whatever else the unit holds.
		if err := changes[i].Check(); err != nil {
			return nil, nil, fmt.Errorf("postgres: apply: change %d: %w", i, err)
		}
	}
	entries = make([][]byte, 0, len(changes))
	log.B = append(log.B, '[')
	for i := range changes {
		c := &changes[i]
		if i > 0 {
			log.B = append(log.B, ',')
		}
		start := len(log.B)
		log.B, err = residency.AppendEntry(log.B, c) // the entry itself: followers and the log read it back
		log.Err = cmp.Or(log.Err, err)
		entries = append(entries, log.B[start:len(log.B):len(log.B)])
		if st := c.DataCenter; st != nil {
			if st.Version == 0 {
				return nil, nil, &residency.ConflictError{DataCenter: st.ID, Stale: true}
			}
			if j := slices.IndexFunc(dcs, func(r dcRow) bool { return r.st.ID == st.ID }); j >= 0 {
				if last := dcs[j].st.Version; st.Version != last+1 {
					return nil, nil, &residency.ConflictError{DataCenter: st.ID, Version: st.Version - 1, Stored: residency.Placement{Version: last}, Stale: true}
				}
				dcs[j].st = st
			} else {
				dcs = append(dcs, dcRow{st, st.Version - 1})
			}
			continue
		}
		p, e := &c.Placement, &c.Event
		if p.Version == 0 {
			return nil, nil, errVersionZero
		}
		// The account's row is its last placement of the unit; every
		// change adds its event, whose keys check the version.
		if j, ok := accountAt[p.AccountID]; ok {
			accounts[j] = p
		} else {
			accountAt[p.AccountID] = len(accounts)
			accounts = append(accounts, p)
		}
		events = append(events, e)
		if k := c.Consent; k != nil {
			consents, consentAt = keep(consents, consentAt, k, k.AccountID, k.Reference)
		}
		if o := c.Objection; o != nil {
			objections, objectAt = keep(objections, objectAt, o, o.AccountID, o.Reference)
		}
		if a := c.Agreement; a != nil {
			agreements, agreeAt = keep(agreements, agreeAt, a, a.AccountID, a.Reference)
		}
	}
	log.B = append(log.B, ']')

	// Rows in key order: concurrent Applies that touch the same keys take
	// their locks in the same order, and so cannot deadlock.
	slices.SortFunc(events, func(a, b *residency.Event) int {
		return cmp.Or(strings.Compare(a.AccountID, b.AccountID), cmp.Compare(a.Version, b.Version))
	})
	slices.SortFunc(accounts, func(a, b *residency.Placement) int { return strings.Compare(a.AccountID, b.AccountID) })
	slices.SortFunc(agreements, func(a, b *residency.Agreement) int {
		return cmp.Or(strings.Compare(a.AccountID, b.AccountID), strings.Compare(a.Reference, b.Reference))
	})
	slices.SortFunc(consents, func(a, b *residency.ConsentRecord) int {
		return cmp.Or(strings.Compare(a.AccountID, b.AccountID), strings.Compare(a.Reference, b.Reference))
	})
	slices.SortFunc(objections, func(a, b *residency.ObjectionRecord) int {
		return cmp.Or(strings.Compare(a.AccountID, b.AccountID), strings.Compare(a.Reference, b.Reference))
	})
	slices.SortFunc(dcs, func(a, b dcRow) int { return strings.Compare(a.st.ID, b.st.ID) })

	args = make([]any, 13)
	w := jw{jsontext.Object{B: make([]byte, 0, 256*len(changes))}}
	array := func(n int, row func(i int)) any {
		if n == 0 {
			return nil // NULL: json_to_recordset gives no rows
		}
		w.B = append(w.B[:0], '[')
		for i := range n {
			if i > 0 {
				w.B = append(w.B, ',')
			}
			w.Open()
			row(i)
			w.Close()
		}
		w.B = append(w.B, ']')
		return string(w.B)
	}
	args[0] = array(len(events), func(i int) {
		e := events[i]
		w.Str("account", e.AccountID)
		w.Uint("version", e.Version)
		w.wireTime("time", e.Time)
		w.Str("kind", string(e.Kind))
		w.Str("source", e.From)
		w.Str("target", e.To)
		w.Str("rule", e.Rule)
		w.Str("reference", e.Reference)
		w.Str("move_id", e.MoveID)
	})
	args[1] = array(len(accounts), func(i int) {
		p := accounts[i]
		w.Str("id", p.AccountID)
		w.Uint("version", p.Version)
		w.Str("country", p.Country.String())
		w.Str("region", p.Region.String())
		w.Str("datacenter", p.DataCenter)
		w.Str("provider", string(p.Provider))
		w.Str("backup", p.Backup)
		w.Str("rule", p.Rule)
		w.Str("transfer", p.Transfer)
		w.wireTime("created", p.Created)
		w.wireTime("updated", p.Updated)
		if m := p.Move; p.Moving() {
			w.Str("move_id", m.ID)
			w.Str("move_from", m.From)
			w.Str("move_to", m.To)
			w.Str("move_region", m.ToRegion.String())
			w.Str("move_transfer", m.Transfer)
			w.wireTime("move_began", m.Began)
		}
	})
	args[2] = array(len(agreements), func(i int) {
		a := agreements[i]
		w.Str("account", a.AccountID)
		w.Str("reference", a.Reference)
		w.Str("to_region", a.To.String())
		w.wireTime("expires", a.ExpiresAt)
		w.wireTime("granted", a.Granted)
		w.wireTime("revoked", a.Revoked)
	})
	args[3] = array(len(dcs), func(i int) {
		w.Str("id", dcs[i].st.ID)
		w.Str("status", string(dcs[i].st.Status))
		w.wireTime("changed", dcs[i].st.Changed)
		w.Uint("version", dcs[i].st.Version)
		w.Uint("prev", dcs[i].prev)
	})
	args[7] = array(len(consents), func(i int) {
		k := consents[i]
		w.Str("account", k.AccountID)
		w.Str("reference", k.Reference)
		w.Str("subprocessor", k.SubProcessor)
		w.wireTime("expires", k.ExpiresAt)
		w.wireTime("granted", k.Granted)
		w.wireTime("revoked", k.Revoked)
	})
	args[8] = array(len(objections), func(i int) {
		o := objections[i]
		w.Str("account", o.AccountID)
		w.Str("reference", o.Reference)
		w.Str("subprocessor", o.SubProcessor)
		w.wireTime("raised", o.Raised)
		w.wireTime("withdrawn", o.Withdrawn)
	})
	if err := cmp.Or(log.Err, w.Err); err != nil {
		return nil, nil, fmt.Errorf("postgres: apply: %w", err)
	}
	args[4], args[5], args[6] = string(log.B), int64(len(changes)), s.channel
	var n int64 // status changes
	for _, r := range dcs {
		n += int64(r.st.Version - r.prev)
	}
	args[9], args[10] = int64(len(dcs)), n
	args[12] = ""
	if statuses != nil {
		// A Router's write (Append), which it does not read back: the
		// tag lets its Wakeups skip the notification. Apply's, by
		// anyone else, must wake it.
		args[11], args[12] = int64(*statuses), *s.ownTag.Load()
	}
	return args, entries, nil
}

// keep adds r to rows under its account and reference, or replaces the
// row already there: the later record of a unit is the one kept. at maps
// keys to indexes in rows; it is made on first use.
func keep[T any](rows []*T, at map[[2]string]int, r *T, account, reference string) ([]*T, map[[2]string]int) {
	if at == nil {
		at = map[[2]string]int{}
	}
	k := [2]string{account, reference}
	if j, ok := at[k]; ok {
		rows[j] = r
	} else {
		at[k] = len(rows)
		rows = append(rows, r)
	}
	return rows, at
}

// errVersionZero is what applyArgs says of a placement at version 0: a
// stale write, which explainConflict turns into a *residency.ConflictError.
var errVersionZero = fmt.Errorf("%w: a placement at version 0", residency.ErrStaleVersion)

// explainConflict finds the first data center of a refused unit whose
// stored version is not the one the unit expects, or else the first
// account whose changes do not follow each other or whose stored version
// is not the one expected, or else statuses that fall short of the log's,
// and returns its *residency.ConflictError; err is what the database said,
// for when the store matches (a change between the two reads) or the
// stored versions cannot be read.
func (s *Store) explainConflict(ctx context.Context, changes []residency.Change, statuses *uint64, err error) error {
	if ce := s.explainStatuses(ctx, changes, statuses); ce != nil {
		return ce
	}
	first := map[string]*residency.Placement{}
	last := map[string]*residency.Placement{}
	var ids []string
	var inUnit *residency.Placement // the first change that does not follow its account's previous one in the unit
	for i := range changes {
		if changes[i].DataCenter != nil {
			continue
		}
		p := &changes[i].Placement
		if prev, ok := last[p.AccountID]; ok {
			if inUnit == nil && p.Version != prev.Version+1 {
				inUnit = p
			}
		} else {
			first[p.AccountID] = p
			ids = append(ids, p.AccountID)
		}
		last[p.AccountID] = p
	}
	stored := map[string]uint64{}
	rows, qerr := s.pool.Query(ctx, s.sql.versions, ids)
	if qerr == nil {
		for rows.Next() {
			var id string
			var v int64
			if rows.Scan(&id, &v) == nil {
				stored[id] = uint64(v)
			}
		}
		rows.Close()
		qerr = rows.Err()
	}
	stale := func(p *residency.Placement) error {
		ce := &residency.ConflictError{AccountID: p.AccountID, Version: p.Version - 1, Stale: true}
		if v, ok := stored[p.AccountID]; ok {
			ce.Stored = residency.Placement{AccountID: p.AccountID, Version: v}
		}
		return ce
	}
	if qerr != nil {
		for _, id := range ids {
			if p := first[id]; p.Version == 0 { // stale whatever is stored
				return stale(p)
			}
		}
		if inUnit != nil {
			return stale(inUnit)
		}
		return fmt.Errorf("%w (reading the stored versions: %v)", err, qerr)
	}
	for _, id := range ids {
		if p := first[id]; p.Version == 0 || stored[id] != p.Version-1 {
			return stale(p)
		}
	}
	if inUnit != nil {
		return stale(inUnit)
	}
	return err
}

// explainStatuses returns the *residency.ConflictError of the first data
// center change of a refused unit whose version does not follow the
// stored one, or of statuses short of the log's; nil when neither is, or
// the stored versions cannot be read.
func (s *Store) explainStatuses(ctx context.Context, changes []residency.Change, statuses *uint64) *residency.ConflictError {
	first := map[string]*residency.DataCenterState{}
	var ids []string
	for i := range changes {
		if st := changes[i].DataCenter; st != nil && first[st.ID] == nil {
			first[st.ID] = st
			ids = append(ids, st.ID)
		}
	}
	if len(ids) == 0 && statuses == nil {
		return nil
	}
	rows, err := s.pool.Query(ctx, s.sql.dcVersions, ids)
	if err != nil {
		return nil
	}
	stored := map[string]uint64{}
	var inLog int64
	for rows.Next() {
		var id *string
		var v int64
		if rows.Scan(&id, &v) != nil {
			rows.Close()
			return nil
		}
		if id == nil {
			inLog = v
		} else {
			stored[*id] = uint64(v)
		}
	}
	rows.Close()
	if rows.Err() != nil {
		return nil
	}
	for _, id := range ids {
		if st := first[id]; st.Version != stored[id]+1 {
			return &residency.ConflictError{DataCenter: id, Version: max(st.Version, 1) - 1, Stored: residency.Placement{Version: stored[id]}, Stale: true}
		}
	}
	if statuses != nil && int64(*statuses) != inLog {
		return &residency.ConflictError{Stale: true,
			Reason: fmt.Sprintf("the log holds %d data center status changes, the write was decided on %d", inLog, *statuses)}
	}
	return nil
}

// runApply runs run, the apply statement, as serialized does, and once
// more, after reset drops the pool's connections, when its error says
// that its connection was gone (unused: a restart, or connections
// terminated; the others are likely gone too, and the pool drops them
// all, those in use once returned).
//
// A first run whose statement reached the server, which then ended the
// connection (class 57), may have committed all the same: an immediate
// shutdown or a crash of another backend ends a backend wherever it is,
// its commit written or not, and a statement that committed runs again
// only to be refused as stale. Whatever the second run then says, the
// outcome is unknown: its error is an *endedInFlight, which applyError
// says so of.
func runApply(ctx context.Context, reset func(), run func() error) error {
	return serialized(ctx, func() error {
		err := run()
		if err == nil || !unused(err) || ctx.Err() != nil {
			return err
		}
		first := err
		reset()
		if err = run(); err != nil && !notSent(first) {
			return &endedInFlight{first: first, err: err}
		}
		return err
	})
}

// mayCommitYet reports whether an apply statement that failed with err
// (runApply's) may commit yet: its last run was sent and the server did
// not answer it.
func mayCommitYet(err error) bool {
	if e := (*endedInFlight)(nil); errors.As(err, &e) {
		err = e.err // the first run's backend is gone
	}
	var pe *pgconn.PgError
	return !errors.As(err, &pe) && !notSent(err)
}

// endedInFlight is the error of an apply statement run again (runApply)
// after the server ended the connection of a first run that may have
// committed.
type endedInFlight struct{ first, err error }

func (e *endedInFlight) Error() string {
	return fmt.Sprintf("the server ended the connection while the statement ran (%v), and running it again failed: %v", e.first, e.err)
}

func (e *endedInFlight) Unwrap() []error { return []error{e.first, e.err} }

// serializationRetries bounds how often serialized runs a statement again.
const serializationRetries = 20

// serialized runs f, a statement that writes, again while it fails with
// a serialization failure or a deadlock (SQLSTATE 40001, 40P01), after a
// short random pause: nothing was committed. domicile's statements are
// written for read committed, where they never fail so; a database whose
// default_transaction_isolation is repeatable read or serializable makes
// a statement fail so whenever a concurrent commit overtook it (another
// instance's write of the head row, say). The isolation level cannot be
// set for a statement of its own, and a session setting would not survive
// a transaction-pooling proxy.
func serialized(ctx context.Context, f func() error) error {
	for i := 0; ; i++ {
		err := f()
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "40001" && pe.Code != "40P01" || i == serializationRetries {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) << min(i, 4)))):
		}
	}
}

// unused reports whether err says that the statement's connection was
// gone: not sent at all, or ended by a server shutting down or
// terminating the connection (class 57, operator intervention). The
// statement then most likely never ran (the server ended an idle
// connection), but a server that ends a backend at once (an immediate
// shutdown, a crash) may have done so after its commit: a read may run
// again, a write's outcome is unknown (runApply).
func unused(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return notSent(err)
}

// read runs f, a read of the database, and once more when f's error says
// that its statement never ran, on a connection the server had closed (a
// restart, or connections terminated): the pool drops its connections
// first, as Append does. An error that still says so matches
// residency.ErrUnavailable: the database cannot be reached.
func read[T any](ctx context.Context, s *Store, f func() (T, error)) (T, error) {
	return readSome(ctx, s, func(*int) (T, error) { return f() })
}

// readSome is read for an f that hands its caller rows as it reads them,
// counting them in *n: once it has handed one, f is not run again.
func readSome[T any](ctx context.Context, s *Store, f func(n *int) (T, error)) (T, error) {
	n := 0
	v, err := f(&n)
	if err != nil && n == 0 && unused(err) && ctx.Err() == nil {
		s.pool.Reset()
		v, err = f(&n)
	}
	if err != nil && unused(err) {
		err = fmt.Errorf("%w: %w", residency.ErrUnavailable, err)
	}
	return v, err
}

// notSent reports whether err says that the statement never left the
// client: pgx marks such errors safe to retry, but not a connection that
// could not be made (a server down or restarting refuses it).
func notSent(err error) bool {
	var ce *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || errors.As(err, &ce)
}

// endsSession reports whether pe's severity ends the server's backend
// (FATAL, PANIC) rather than the statement's transaction alone (ERROR).
func endsSession(pe *pgconn.PgError) bool {
	sev := cmp.Or(pe.SeverityUnlocalized, pe.Severity)
	return sev == "FATAL" || sev == "PANIC"
}

// applyError explains why Apply failed.
func applyError(err error) error {
	if e := (*endedInFlight)(nil); errors.As(err, &e) {
		return fmt.Errorf("postgres: apply: the changes may or may not have been committed: %w", err)
	}
	if ce := (*pgconn.ConnectError)(nil); errors.As(err, &ce) {
		// No connection, so nothing sent, whatever the server said
		// as it refused it (57P03 while it shuts down, starts up or
		// recovers).
		return fmt.Errorf("%w: %w", residency.ErrStoreFailed, connectError(err))
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505" && pe.TableName == "events":
			return fmt.Errorf("%w: the unit's versions do not follow the store's: %s", residency.ErrConflict, pe.Detail)
		case pe.Code == "23503" && pe.TableName == "events":
			return fmt.Errorf("%w: the unit's versions do not follow the store's: %s", residency.ErrConflict, pe.Detail)
		case pe.Code == "23502" && pe.TableName == "changes":
			// The head refused the unit (statements.go): a data center
			// status is stale.
			return fmt.Errorf("%w: the unit's data center statuses do not follow the store's", residency.ErrConflict)
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "57"):
			// A connection exception, from a proxy between (PgBouncer's
			// "server conn crashed?"), or an operator's intervention (a
			// server shutting down, a connection terminated), which may
			// come once the statement has run: it says nothing of the
			// commit.
			return fmt.Errorf("postgres: apply: the changes may or may not have been committed: %w", err)
		case endsSession(pe):
			// A FATAL or PANIC error ends the backend, wherever it was:
			// a PANIC may come once the commit is in the WAL (a failed
			// fsync of it, a failure after it), which recovery replays.
			return fmt.Errorf("postgres: apply: the changes may or may not have been committed: %w", err)
		}
		// The server refused the statement with an ERROR: it ran in a
		// transaction of its own, which did not commit. The Router
		// answers this as it is, with no reading back
		// (residency.Store).
		return fmt.Errorf("%w: postgres: apply: %w", residency.ErrStoreFailed, err)
	}
	if pgconn.SafeToRetry(err) {
		// The statement never left: nothing ran.
		return fmt.Errorf("%w: %w", residency.ErrStoreFailed, connectError(err))
	}
	return fmt.Errorf("postgres: apply: the changes may or may not have been committed: %w", err)
}
