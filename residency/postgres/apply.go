package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/domicile-go/domicile/residency"
	"github.com/jackc/pgx/v5/pgconn"
)

// The rows of Apply, as JSON for json_to_recordset.
type (
	accountRow struct {
		ID           string  `json:"id"`
		Version      uint64  `json:"version"`
		Country      string  `json:"country"`
		Region       string  `json:"region"`
		DataCenter   string  `json:"datacenter"`
		Provider     string  `json:"provider"`
		Backup       string  `json:"backup"`
		Rule         string  `json:"rule"`
		Transfer     string  `json:"transfer"`
		Created      *string `json:"created"`
		CreatedNs    int16   `json:"created_ns"`
		Updated      *string `json:"updated"`
		UpdatedNs    int16   `json:"updated_ns"`
		MoveID       *string `json:"move_id"`
		MoveFrom     *string `json:"move_from"`
		MoveTo       *string `json:"move_to"`
		MoveRegion   *string `json:"move_region"`
		MoveTransfer *string `json:"move_transfer"`
		MoveBegan    *string `json:"move_began"`
		MoveBeganNs  *int16  `json:"move_began_ns"`
	}
	eventRow struct {
		Account   string  `json:"account"`
		Version   uint64  `json:"version"`
		Time      *string `json:"time"`
		TimeNs    int16   `json:"time_ns"`
		Kind      string  `json:"kind"`
		Source    string  `json:"source"`
		Target    string  `json:"target"`
		Rule      string  `json:"rule"`
		Reference string  `json:"reference"`
		MoveID    string  `json:"move_id"`
	}
	agreementRow struct {
		Account   string  `json:"account"`
		Reference string  `json:"reference"`
		ToRegion  string  `json:"to_region"`
		Expires   *string `json:"expires"`
		ExpiresNs int16   `json:"expires_ns"`
		Granted   *string `json:"granted"`
		GrantedNs int16   `json:"granted_ns"`
		Revoked   *string `json:"revoked"`
		RevokedNs int16   `json:"revoked_ns"`
	}
	dataCenterRow struct {
		ID        string  `json:"id"`
		Status    string  `json:"status"`
		Changed   *string `json:"changed"`
		ChangedNs int16   `json:"changed_ns"`
		N         int     `json:"n"` // how many changes of this Apply it sums up
	}
)

func newAccountRow(p *residency.Placement) accountRow {
	r := accountRow{ID: p.AccountID, Version: p.Version, Country: p.Country.String(), Region: p.Region.String(),
		DataCenter: p.DataCenter, Provider: string(p.Provider), Backup: p.Backup, Rule: p.Rule, Transfer: p.Transfer}
	r.Created, r.CreatedNs = wireTime(p.Created)
	r.Updated, r.UpdatedNs = wireTime(p.Updated)
	if m := p.Move; m != nil {
		region := m.ToRegion.String()
		r.MoveID, r.MoveFrom, r.MoveTo, r.MoveRegion, r.MoveTransfer = &m.ID, &m.From, &m.To, &region, &m.Transfer
		var ns int16
		r.MoveBegan, ns = wireTime(m.Began)
		r.MoveBeganNs = &ns
	}
	return r
}

// Apply makes changes durable as one transaction and returns once it has
// committed; see [Store.Append].
func (s *Store) Apply(ctx context.Context, changes []residency.Change) error {
	_, err := s.Append(ctx, changes)
	return err
}

// Append is Apply that also returns the log position of the last of the
// changes (0 when there are none): a Router that waits for followers to
// reach its write waits for that position.
//
// The changes are one transaction: every account's versions are checked by
// the database (each change's version must be one more than the stored
// one, 1 for a new account; several changes of one account in a unit must
// follow each other), and a unit with any stale change is refused whole
// with an error matching [residency.ErrConflict]. Data center statuses
// carry no version and are written as given; their stored version column
// counts the changes.
//
// An error that is neither a conflict nor a refusal of bad input says
// whether the changes may have been committed: when the connection fails
// after they were sent, PostgreSQL may have committed them, and the error
// says so. The changes log then tells (a following Router reads them
// there).
func (s *Store) Append(ctx context.Context, changes []residency.Change) (uint64, error) {
	if err := s.errClosed(); err != nil {
		return 0, err
	}
	if len(changes) == 0 {
		return 0, nil
	}
	// One statement: atomic by itself, in one round trip. It takes the
	// head row last (see statements.go), and the row lock that orders
	// commits (see follow.go) is held from there to the commit, within the
	// server.
	args, err := s.applyArgs(changes)
	if err != nil {
		return 0, err
	}
	var pos int64
	err = s.pool.QueryRow(ctx, s.sql.apply, args...).Scan(&pos, nil)
	if err != nil && unused(err) && ctx.Err() == nil {
		// A connection the server had closed (a restart, or connections
		// terminated): nothing ran. The others are likely gone too: the
		// pool drops them all (those in use once returned), and the
		// statement runs once more, on a new connection.
		s.pool.Reset()
		err = s.pool.QueryRow(ctx, s.sql.apply, args...).Scan(&pos, nil)
	}
	if err != nil {
		err = applyError(err)
		if errors.Is(err, residency.ErrConflict) {
			err = s.explainConflict(ctx, changes, err)
		}
		return 0, err
	}
	return uint64(pos), nil
}

// applyArgs checks changes and turns them into the parameters of the apply
// statement.
func (s *Store) applyArgs(changes []residency.Change) ([]any, error) {
	var (
		accounts   []accountRow
		accountAt  = map[string]int{}
		events     = make([]eventRow, 0, len(changes))
		agreements []agreementRow
		agreeAt    map[[2]string]int
		dcs        []dataCenterRow
		dcAt       map[string]int
		log        = make([]json.RawMessage, len(changes))
	)
	for i := range changes {
		c := &changes[i]
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("postgres: apply: change %d: %w", i, err)
		}
		log[i] = b
		if st := c.DataCenter; st != nil {
			if st.ID == "" || !st.Status.IsValid() {
				return nil, fmt.Errorf("postgres: apply: change %d: data center %q with status %q", i, st.ID, st.Status)
			}
			r := dataCenterRow{ID: st.ID, Status: string(st.Status), N: 1}
			r.Changed, r.ChangedNs = wireTime(st.Changed)
			if dcAt == nil {
				dcAt = map[string]int{}
			}
			if j, ok := dcAt[st.ID]; ok {
				r.N += dcs[j].N
				dcs[j] = r
			} else {
				dcAt[st.ID] = len(dcs)
				dcs = append(dcs, r)
			}
			continue
		}
		p, e := &c.Placement, &c.Event
		switch {
		case p.AccountID == "" || p.Version == 0 || !p.Region.IsValid():
			return nil, fmt.Errorf("postgres: apply: change %d: placement of account %q at version %d in region %v", i, p.AccountID, p.Version, p.Region)
		case e.AccountID != p.AccountID || e.Version != p.Version:
			return nil, fmt.Errorf("postgres: apply: change %d: event of account %q version %d with a placement of account %q version %d", i, e.AccountID, e.Version, p.AccountID, p.Version)
		case p.Move != nil && !p.Move.ToRegion.IsValid():
			return nil, fmt.Errorf("postgres: apply: change %d: account %q: move to region %v", i, p.AccountID, p.Move.ToRegion)
		}
		// The account's row is its last placement of the unit; every
		// change adds its event, whose keys check the version.
		if j, ok := accountAt[p.AccountID]; ok {
			accounts[j] = newAccountRow(p)
		} else {
			accountAt[p.AccountID] = len(accounts)
			accounts = append(accounts, newAccountRow(p))
		}
		er := eventRow{Account: e.AccountID, Version: e.Version, Kind: string(e.Kind), Source: e.From, Target: e.To,
			Rule: e.Rule, Reference: e.Reference, MoveID: e.MoveID}
		er.Time, er.TimeNs = wireTime(e.Time)
		events = append(events, er)
		if a := c.Agreement; a != nil {
			if a.AccountID == "" || a.Reference == "" || !a.To.IsValid() {
				return nil, fmt.Errorf("postgres: apply: change %d: agreement %q of account %q to region %v", i, a.Reference, a.AccountID, a.To)
			}
			r := agreementRow{Account: a.AccountID, Reference: a.Reference, ToRegion: a.To.String()}
			r.Expires, r.ExpiresNs = wireTime(a.ExpiresAt)
			r.Granted, r.GrantedNs = wireTime(a.Granted)
			r.Revoked, r.RevokedNs = wireTime(a.Revoked)
			if agreeAt == nil {
				agreeAt = map[[2]string]int{}
			}
			k := [2]string{a.AccountID, a.Reference}
			if j, ok := agreeAt[k]; ok {
				agreements[j] = r
			} else {
				agreeAt[k] = len(agreements)
				agreements = append(agreements, r)
			}
		}
	}

	// Rows in key order: concurrent Applies that touch the same keys take
	// their locks in the same order, and so cannot deadlock.
	slices.SortFunc(events, func(a, b eventRow) int {
		return cmp.Or(strings.Compare(a.Account, b.Account), cmp.Compare(a.Version, b.Version))
	})
	slices.SortFunc(accounts, func(a, b accountRow) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(agreements, func(a, b agreementRow) int {
		return cmp.Or(strings.Compare(a.Account, b.Account), strings.Compare(a.Reference, b.Reference))
	})
	slices.SortFunc(dcs, func(a, b dataCenterRow) int { return strings.Compare(a.ID, b.ID) })

	args := make([]any, 7)
	for i, p := range []struct {
		rows any
		n    int
	}{{events, len(events)}, {accounts, len(accounts)}, {agreements, len(agreements)}, {dcs, len(dcs)}, {log, len(log)}} {
		if p.n == 0 {
			continue // NULL: json_to_recordset gives no rows
		}
		j, err := json.Marshal(p.rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: apply: %w", err)
		}
		args[i] = string(j)
	}
	args[5], args[6] = int64(len(changes)), s.channel
	return args, nil
}

// explainConflict finds the first account of a refused unit whose stored
// version is not the one the unit expects, and says so; err is what the
// database said, for when the store matches (a fault inside the unit, or
// a change between the two reads).
func (s *Store) explainConflict(ctx context.Context, changes []residency.Change, err error) error {
	expect := map[string]uint64{}
	var ids []string
	for i := range changes {
		p := &changes[i].Placement
		if changes[i].DataCenter != nil {
			continue
		}
		if _, ok := expect[p.AccountID]; !ok {
			expect[p.AccountID] = p.Version - 1
			ids = append(ids, p.AccountID)
		}
	}
	rows, qerr := s.pool.Query(ctx, s.sql.versions, ids)
	if qerr != nil {
		return err
	}
	stored := map[string]uint64{}
	for rows.Next() {
		var id string
		var v int64
		if rows.Scan(&id, &v) == nil {
			stored[id] = uint64(v)
		}
	}
	rows.Close()
	if rows.Err() != nil {
		return err
	}
	for _, id := range ids {
		if stored[id] != expect[id] {
			return fmt.Errorf("%w: account %q is at version %d in the store, the change expects %d", residency.ErrConflict, id, stored[id], expect[id])
		}
	}
	return err
}

// unused reports whether err says the statement never ran because its
// connection was gone: not sent at all, or refused by a server shutting
// down or terminating the connection (class 57, operator intervention).
func unused(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return pgconn.SafeToRetry(err)
}

// applyError explains why Apply failed.
func applyError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505" && pe.TableName == "events":
			return fmt.Errorf("%w: the unit's versions do not follow the store's: %s", residency.ErrConflict, pe.Detail)
		case pe.Code == "23503" && pe.TableName == "events":
			return fmt.Errorf("%w: the unit's versions do not follow the store's: %s", residency.ErrConflict, pe.Detail)
		}
		return fmt.Errorf("postgres: apply: nothing committed: %w", err)
	}
	if pgconn.SafeToRetry(err) {
		return fmt.Errorf("postgres: apply: nothing committed: %w", connectError(err))
	}
	return fmt.Errorf("postgres: apply: the changes may or may not have been committed: %w", err)
}
