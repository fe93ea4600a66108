package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// pageSize is how many accounts Load reads per query, with their
// agreements: enough to amortise the round trips, few enough to bound
// the memory of a page.
const pageSize = 10000

// Snapshot is what [Store.Snapshot] read besides the accounts.
type Snapshot struct {
	// Position is the log position the snapshot is at: it holds every
	// change up to it and none after. A follower reads on from it with
	// [Store.Changes].
	Position uint64
	// DataCenters are the runtime statuses, as [Store.DataCenters] gives.
	DataCenters []residency.DataCenterState
	// LogSize is the audit log's size at the snapshot, as [Store.LogSize]
	// gives: the snapshot is the state its first LogSize entries make.
	LogSize int64
}

// Load calls fn with every stored account, in account ID order, with its
// agreements, consents and objections (each by reference), from one
// consistent snapshot; not with its audit trail, which [Store.Trail]
// reads. It
// stops at fn's first error and returns it.
func (s *Store) Load(ctx context.Context, fn func(residency.StoredAccount) error) error {
	_, err := s.snapshot(ctx, fn, false)
	return err
}

// Snapshot is [Store.Load] and [Store.DataCenters] from one snapshot
// (REPEATABLE READ), with the log position that snapshot is at: a Router
// that loads with it and then reads [Store.Changes] from that position
// misses nothing and applies nothing twice.
func (s *Store) Snapshot(ctx context.Context, fn func(residency.StoredAccount) error) (Snapshot, error) {
	return s.snapshot(ctx, fn, true)
}

func (s *Store) snapshot(ctx context.Context, fn func(residency.StoredAccount) error, full bool) (snap Snapshot, err error) {
	if err := s.errClosed(); err != nil {
		return snap, err
	}
	tx, err := read(ctx, s, func() (pgx.Tx, error) {
		return s.begin(ctx, pgx.RepeatableRead, pgx.ReadOnly)
	})
	if err != nil {
		return snap, fmt.Errorf("postgres: load: %w", connectError(err))
	}
	defer tx.Rollback(ctx)
	if full {
		var pos int64
		if err := tx.QueryRow(ctx, s.sql.head).Scan(&pos); err != nil {
			return snap, fmt.Errorf("postgres: load: %w", err)
		}
		snap.Position, snap.LogSize = uint64(pos), pos-s.logStart
		if snap.DataCenters, err = s.dataCenters(ctx, tx); err != nil {
			return snap, err
		}
	}
	// One goroutine reads the pages, the caller's runs fn: the database
	// and the decoding of the next page overlap with the caller's work on
	// this one. Only the reader uses the transaction until it is done.
	type result struct {
		page []residency.StoredAccount
		err  error
	}
	pages := make(chan result, 1)
	// Pages the caller is done with go back to the reader: fn gets
	// copies, so a page's array can hold the next page, and the garbage
	// of a load is not one more copy of every account.
	free := make(chan []residency.StoredAccount, 3)
	rctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(pages)
		l := loader{s: s, tx: tx}
		after := ""
		for {
			var buf []residency.StoredAccount
			select {
			case buf = <-free:
			default:
			}
			page, err := l.accounts(rctx, buf, pageSize, s.sql.accountsPage, after, pageSize)
			if err == nil && len(page) > 0 {
				first, last := page[0].Placement.AccountID, page[len(page)-1].Placement.AccountID
				err = l.attach(rctx, page, s.sql.agreementsRange, s.sql.consentsRange, s.sql.objectionsRange, first, last)
				after = last
			}
			if err != nil || len(page) > 0 {
				select {
				case pages <- result{page, err}:
				case <-rctx.Done():
					return
				}
			}
			if err != nil || len(page) < pageSize {
				return
			}
		}
	}()
	stop := func() {
		cancel()
		for range pages { // wait for the reader to let go of the transaction
		}
	}
	for r := range pages {
		if ctx.Err() != nil {
			// The reader's error, if any, is of a connection closed by
			// the cancellation: say why.
			r.err = fmt.Errorf("postgres: load: %w", ctx.Err())
		}
		if r.err == nil {
			for _, a := range r.page {
				if r.err = fn(a); r.err != nil {
					break
				}
			}
			clear(r.page) // let go of what fn was given
			select {
			case free <- r.page[:0]:
			default:
			}
		}
		if r.err != nil {
			stop()
			return snap, r.err
		}
	}
	cancel()
	if err := ctx.Err(); err != nil {
		// The reader may have stopped on the cancellation without a
		// word; the transaction's connection is then closed.
		return snap, fmt.Errorf("postgres: load: %w", err)
	}
	return snap, tx.Commit(ctx)
}

// LoadAccounts calls fn, in the order of ids, for each of the given
// accounts that the store holds, as Load would give it: a Router re-reads
// accounts this way after another instance changed them. Accounts the
// store does not hold are left out; an ID given twice is given twice.
func (s *Store) LoadAccounts(ctx context.Context, ids []string, fn func(residency.StoredAccount) error) error {
	if err := s.errClosed(); err != nil {
		return err
	}
	tx, err := read(ctx, s, func() (pgx.Tx, error) {
		return s.begin(ctx, pgx.RepeatableRead, pgx.ReadOnly)
	})
	if err != nil {
		return fmt.Errorf("postgres: load: %w", connectError(err))
	}
	defer tx.Rollback(ctx)
	l := loader{s: s, tx: tx}
	for len(ids) > 0 {
		given := ids[:min(len(ids), pageSize)]
		ids = ids[len(given):]
		// The queries take the chunk's IDs sorted, once each; fn gets
		// the accounts in the order given.
		chunk := slices.Clone(given)
		slices.Sort(chunk)
		chunk = slices.Compact(chunk)
		page, err := l.accounts(ctx, nil, len(chunk), s.sql.accountsByID, chunk)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			continue
		}
		if err := l.attach(ctx, page, s.sql.agreementsByID, s.sql.consentsByID, s.sql.objectionsByID, chunk); err != nil {
			return err
		}
		for _, id := range given {
			i, ok := slices.BinarySearchFunc(page, id, func(a residency.StoredAccount, id string) int {
				return strings.Compare(a.Placement.AccountID, id)
			})
			if !ok {
				continue
			}
			if err := fn(copyAccount(page[i])); err != nil {
				return err
			}
		}
	}
	return tx.Commit(ctx)
}

// copyAccount returns a with slices of its own, so that an account given
// twice shares nothing with its other copy.
func copyAccount(a residency.StoredAccount) residency.StoredAccount {
	a.Agreements = slices.Clone(a.Agreements)
	a.Consents = slices.Clone(a.Consents)
	a.Objections = slices.Clone(a.Objections)
	return a
}

// DataCenters returns the data center statuses set at run time, by ID.
func (s *Store) DataCenters(ctx context.Context) ([]residency.DataCenterState, error) {
	if err := s.errClosed(); err != nil {
		return nil, err
	}
	tx, err := read(ctx, s, func() (pgx.Tx, error) { return s.begin(ctx, pgx.ReadCommitted, pgx.ReadOnly) })
	if err != nil {
		return nil, fmt.Errorf("postgres: load: %w", connectError(err))
	}
	defer tx.Rollback(ctx)
	return s.dataCenters(ctx, tx)
}

func (s *Store) dataCenters(ctx context.Context, tx pgx.Tx) ([]residency.DataCenterState, error) {
	rows, err := tx.Query(ctx, s.sql.dataCenters)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading data center statuses: %w", err)
	}
	defer rows.Close()
	var out []residency.DataCenterState
	for rows.Next() {
		var (
			st      residency.DataCenterState
			status  string
			changed pgtype.Timestamptz
			ns      int16
			version int64
		)
		if err := rows.Scan(&st.ID, &status, &changed, &ns, &version); err != nil {
			return nil, fmt.Errorf("postgres: reading data center statuses: %w", err)
		}
		st.Status, st.Changed, st.Version = provider.Status(status), readTime(changed, ns), uint64(version)
		if !st.Status.IsValid() {
			return nil, fmt.Errorf("%w: data center %s has status %q", residency.ErrCorrupt, st.ID, status)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: reading data center statuses: %w", err)
	}
	return out, nil
}

// loader reads accounts within one transaction. Strings that repeat across
// accounts (data centers, rules, kinds) are interned, so that a million
// loaded accounts share them.
type loader struct {
	s      *Store
	tx     pgx.Tx
	intern map[string]string
}

func (l *loader) str(s string) string {
	if v, ok := l.intern[s]; ok {
		return v
	}
	if l.intern == nil {
		l.intern = make(map[string]string)
	}
	if len(l.intern) < 1<<16 {
		l.intern[s] = s
	}
	return s
}

// bytes returns b as a string, interned.
func (l *loader) bytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if v, ok := l.intern[string(b)]; ok {
		return v
	}
	return l.str(string(b))
}

// accounts reads the placements a query selects, in ID order. Text
// columns are read from the raw row (text is the same in either wire
// format) and interned without a copy when they repeat; the others are
// scanned.
//
// A query returns at most max rows: the page is buf when it can hold them,
// else allocated once at that size. The scan's destinations are declared once per query, not per row,
// since Scan makes them escape.
func (l *loader) accounts(ctx context.Context, buf []residency.StoredAccount, max int, sql string, args ...any) ([]residency.StoredAccount, error) {
	rows, err := l.tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: load: %w", err)
	}
	defer rows.Close()
	out := buf[:0]
	if cap(out) < max {
		out = make([]residency.StoredAccount, 0, max)
	}
	var (
		version                 int64
		created, updated, began pgtype.Timestamptz
		createdNs, updatedNs    int16
		beganNs                 *int16
	)
	dest := []any{nil, &version, nil, nil, nil, nil, nil, nil, nil,
		&created, &createdNs, &updated, &updatedNs,
		nil, nil, nil, nil, nil, &began, &beganNs}
	for rows.Next() {
		var p residency.Placement
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("postgres: load: %w", err)
		}
		raw := rows.RawValues()
		id := string(raw[0])
		p.AccountID = id
		p.Version = uint64(version)
		if c := raw[2]; len(c) > 0 {
			if p.Country, err = region.ParseCountry(string(c)); err != nil {
				return nil, fmt.Errorf("%w: account %q: country %q", residency.ErrCorrupt, id, c)
			}
		}
		if p.Region, err = parseRegion(raw[3]); err != nil {
			return nil, fmt.Errorf("%w: account %q: region %q", residency.ErrCorrupt, id, raw[3])
		}
		p.DataCenter, p.Provider, p.Backup = l.bytes(raw[4]), provider.Provider(l.bytes(raw[5])), l.bytes(raw[6])
		p.Rule, p.Transfer = l.bytes(raw[7]), l.bytes(raw[8])
		p.Created, p.Updated = readTime(created, createdNs), readTime(updated, updatedNs)
		if raw[13] != nil {
			moveID := string(raw[13])
			if raw[14] == nil || raw[15] == nil || raw[16] == nil || raw[17] == nil || beganNs == nil {
				return nil, fmt.Errorf("%w: account %q: move %q lacks columns", residency.ErrCorrupt, id, moveID)
			}
			m := &residency.Move{ID: moveID, AccountID: id, From: l.bytes(raw[14]), To: l.bytes(raw[15]), Transfer: l.bytes(raw[17]), Began: readTime(began, *beganNs)}
			if m.ToRegion, err = parseRegion(raw[16]); err != nil {
				return nil, fmt.Errorf("%w: account %q: move to region %q", residency.ErrCorrupt, id, raw[16])
			}
			p.Move = *m
		}
		out = append(out, residency.StoredAccount{Placement: p})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: load: %w", err)
	}
	return out, nil
}

// each runs a query whose rows are ordered by account, their first
// column, and calls fn with each row that belongs to one of page's
// accounts (ordered too), and that account.
func (l *loader) each(ctx context.Context, page []residency.StoredAccount, sql string, args []any, fn func(pgx.Rows, *residency.StoredAccount) error) error {
	rows, err := l.tx.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("postgres: load: %w", err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		account := rows.RawValues()[0]
		for i < len(page) && page[i].Placement.AccountID < string(account) {
			i++
		}
		if i == len(page) || page[i].Placement.AccountID != string(account) {
			continue // an account between two of the page's, not asked for
		}
		if err := fn(rows, &page[i]); err != nil {
			return fmt.Errorf("postgres: load: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: load: %w", err)
	}
	return nil
}

// parseRegion parses a stored region name without a copy for the names
// this package writes.
func parseRegion(b []byte) (region.Region, error) {
	for _, r := range region.All() {
		if string(b) == r.String() {
			return r, nil
		}
	}
	return region.Parse(string(b))
}

// attach reads the agreements, consents and objections of page's accounts
// (ordered by account) and adds them to their accounts.
func (l *loader) attach(ctx context.Context, page []residency.StoredAccount, agreementsSQL, consentsSQL, objectionsSQL string, args ...any) error {
	rows, err := l.tx.Query(ctx, agreementsSQL, args...)
	if err != nil {
		return fmt.Errorf("postgres: load: %w", err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var (
			a                         residency.Agreement
			to                        string
			expires, granted, revoked pgtype.Timestamptz
			eNs, gNs, rNs             int16
		)
		if err := rows.Scan(&a.AccountID, &a.Reference, &to, &expires, &eNs, &granted, &gNs, &revoked, &rNs); err != nil {
			return fmt.Errorf("postgres: load: %w", err)
		}
		for i < len(page) && page[i].Placement.AccountID < a.AccountID {
			i++
		}
		if i == len(page) || page[i].Placement.AccountID != a.AccountID {
			continue
		}
		a.AccountID = page[i].Placement.AccountID
		if a.To, err = region.Parse(to); err != nil {
			return fmt.Errorf("%w: account %q: agreement %q to region %q", residency.ErrCorrupt, a.AccountID, a.Reference, to)
		}
		a.ExpiresAt, a.Granted, a.Revoked = readTime(expires, eNs), readTime(granted, gNs), readTime(revoked, rNs)
		page[i].Agreements = append(page[i].Agreements, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: load: %w", err)
	}

	err = l.each(ctx, page, consentsSQL, args, func(rows pgx.Rows, a *residency.StoredAccount) error {
		var (
			k                         residency.ConsentRecord
			expires, granted, revoked pgtype.Timestamptz
			eNs, gNs, rNs             int16
		)
		if err := rows.Scan(nil, &k.Reference, nil, &expires, &eNs, &granted, &gNs, &revoked, &rNs); err != nil {
			return err
		}
		k.AccountID, k.SubProcessor = a.Placement.AccountID, l.bytes(rows.RawValues()[2])
		k.ExpiresAt, k.Granted, k.Revoked = readTime(expires, eNs), readTime(granted, gNs), readTime(revoked, rNs)
		a.Consents = append(a.Consents, k)
		return nil
	})
	if err != nil {
		return err
	}
	err = l.each(ctx, page, objectionsSQL, args, func(rows pgx.Rows, a *residency.StoredAccount) error {
		var (
			o                 residency.ObjectionRecord
			raised, withdrawn pgtype.Timestamptz
			rNs, wNs          int16
		)
		if err := rows.Scan(nil, &o.Reference, nil, &raised, &rNs, &withdrawn, &wNs); err != nil {
			return err
		}
		o.AccountID, o.SubProcessor = a.Placement.AccountID, l.bytes(rows.RawValues()[2])
		o.Raised, o.Withdrawn = readTime(raised, rNs), readTime(withdrawn, wNs)
		a.Objections = append(a.Objections, o)
		return nil
	})
	return err
}

// Trail returns the account's audit trail, oldest first, as committed;
// empty for an account the store does not hold. Load and LoadAccounts
// leave StoredAccount.History empty: a Router on this Store reads trails
// here when asked ([residency.TrailStore]), and holds none in memory.
func (s *Store) Trail(ctx context.Context, accountID string) ([]residency.Event, error) {
	if err := s.errClosed(); err != nil {
		return nil, err
	}
	ids := []string{accountID}
	trails, err := read(ctx, s, func() (map[string][]residency.Event, error) { return s.trails(ctx, ids) })
	return trails[accountID], err
}

// trailsChunk is how many accounts' trails [Store.Trails] reads per
// query.
const trailsChunk = 1000

// Trails calls fn with the audit trail of each of the accounts, in the
// order given, as [Store.Trail] gives it (empty for an account the store
// does not hold), reading the trails of up to a thousand accounts a query:
// a tool that reads many trails, such as an auditor's check of every
// account, costs a query per thousand accounts, not one each. Each query
// sees what was committed when it ran. It stops at fn's first error and
// returns it as it is.
func (s *Store) Trails(ctx context.Context, accountIDs []string, fn func(accountID string, trail []residency.Event) error) error {
	if err := s.errClosed(); err != nil {
		return err
	}
	for len(accountIDs) > 0 {
		chunk := accountIDs[:min(len(accountIDs), trailsChunk)]
		accountIDs = accountIDs[len(chunk):]
		trails, err := read(ctx, s, func() (map[string][]residency.Event, error) { return s.trails(ctx, chunk) })
		if err != nil {
			return err
		}
		for _, id := range chunk {
			if err := fn(id, trails[id]); err != nil {
				return err
			}
		}
	}
	return nil
}

// trails reads the trails of the accounts in one query, once.
func (s *Store) trails(ctx context.Context, ids []string) (map[string][]residency.Event, error) {
	what := fmt.Sprintf("the trails of %d accounts", len(ids))
	if len(ids) == 1 {
		what = fmt.Sprintf("the trail of account %q", ids[0])
	}
	rows, err := s.pool.Query(ctx, s.sql.eventsByAccount, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading %s: %w", what, connectError(err))
	}
	defer rows.Close()
	out := make(map[string][]residency.Event, len(ids))
	for rows.Next() {
		e, err := scanEvent(rows, "")
		if err != nil {
			return nil, fmt.Errorf("postgres: reading %s: %w", what, err)
		}
		trail := out[e.AccountID]
		if e.Version != uint64(len(trail))+1 {
			return nil, fmt.Errorf("%w: account %q: event %d follows event %d", residency.ErrCorrupt, e.AccountID, e.Version, len(trail))
		}
		out[e.AccountID] = append(trail, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: reading %s: %w", what, connectError(err))
	}
	return out, nil
}

// scanEvent scans a row of eventCols, of account, or of the account the
// row names when account is "".
func scanEvent(rows pgx.Rows, account string) (residency.Event, error) {
	var (
		e       residency.Event
		id      any // nil: the column is skipped
		version int64
		t       pgtype.Timestamptz
		ns      int16
		kind    string
	)
	if account == "" {
		id = &e.AccountID
	}
	if err := rows.Scan(id, &version, &t, &ns, &kind, &e.From, &e.To, &e.Rule, &e.Reference, &e.MoveID); err != nil {
		return e, err
	}
	if account != "" {
		e.AccountID = account
	}
	e.Version, e.Time, e.Kind = uint64(version), readTime(t, ns), residency.EventKind(kind)
	return e, nil
}
