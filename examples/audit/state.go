package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
)

// replayed is what the log's entries say the state is: each account's
// latest placement, its trail, agreements, consents and objections, and
// each data center's latest status.
type replayed struct {
	accounts map[string]*accountLog
	statuses map[string]residency.DataCenterState
}

// accountLog is what the log says of one account.
type accountLog struct {
	placement residency.Placement
	// events are the hashes of its trail's events (eventHash), of
	// versions first, first+1 and on to the placement's: first is 1 for
	// an account created after the log began; an upgraded file's log
	// starts with a snapshot of each account at its version then, and
	// the events before it are not in the log.
	first      uint64
	events     []eventSum
	agreements map[string]residency.Agreement
	consents   map[string]residency.ConsentRecord
	objections map[string]residency.ObjectionRecord
}

func newReplayed() *replayed {
	return &replayed{accounts: make(map[string]*accountLog), statuses: make(map[string]residency.DataCenterState)}
}

// add replays the entry at index.
func (r *replayed) add(index int64, entry []byte) error {
	c, err := residency.DecodeEntry(entry)
	if err != nil {
		return err
	}
	if st := c.DataCenter; st != nil {
		r.statuses[st.ID] = *st
		return nil
	}
	p, e := c.Placement, c.Event
	if p.AccountID == "" || e.Version != p.Version || e.AccountID != p.AccountID {
		return fmt.Errorf("entry %d: a change of account %q to version %d with an event of account %q, version %d", index, p.AccountID, p.Version, e.AccountID, e.Version)
	}
	a := r.accounts[p.AccountID]
	h := eventHash(e)
	switch {
	case a == nil:
		a = &accountLog{first: p.Version, events: []eventSum{h}}
		r.accounts[p.AccountID] = a
	case p.Version == a.placement.Version:
		// An upgrade's snapshot carries an account's latest change once
		// for each of its agreements, consents and objections.
		if a.events[len(a.events)-1] != h {
			return fmt.Errorf("entry %d: account %q's version %d again, with another event", index, p.AccountID, p.Version)
		}
	case p.Version == a.placement.Version+1:
		a.events = append(a.events, h)
	default:
		return fmt.Errorf("entry %d: account %q's change to version %d after version %d", index, p.AccountID, p.Version, a.placement.Version)
	}
	a.placement = p
	if ag := c.Agreement; ag != nil {
		a.agreements = put(a.agreements, ag.Reference, *ag)
	}
	if k := c.Consent; k != nil {
		a.consents = put(a.consents, k.Reference, *k)
	}
	if o := c.Objection; o != nil {
		a.objections = put(a.objections, o.Reference, *o)
	}
	return nil
}

func put[T any](m map[string]T, k string, v T) map[string]T {
	if m == nil {
		m = make(map[string]T)
	}
	m[k] = v
	return m
}

// eventSum is the SHA-256 of an event's JSON: the stored trail is the
// operator's to write, so a rewritten event must not be able to keep its
// sum, as it could a checksum's.
type eventSum [sha256.Size]byte

// eventHash sums an event's JSON, its time in UTC.
func eventHash(e residency.Event) eventSum {
	e.Time = utc(e.Time)
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // an Event always encodes
	}
	return sha256.Sum256(b)
}

// utc is t in UTC, the zero time as it is, so that == compares instants.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// storedAccount is what verify keeps of a stored account: its placement,
// the hashes of its trail's events (eventHash) up to the placement's
// version, the first of version from, and its records.
type storedAccount struct {
	placement  residency.Placement
	from       uint64
	events     []eventSum
	agreements []residency.Agreement
	consents   []residency.ConsentRecord
	objections []residency.ObjectionRecord
}

// readState reads the stored state: each account, with its trail, and the
// data centers' statuses. It returns how many of the log's entries the
// state is of: a PostgreSQL store is read in one snapshot, whose log size
// it gives, so that writers may go on meanwhile (its trails are read
// after it, a thousand accounts a query); a file is not written while it
// is read (its writer holds it), and its state is of the whole log.
func readState(ctx context.Context, ls residency.LogStore) (map[string]*storedAccount, int64, []residency.DataCenterState, error) {
	accounts := make(map[string]*storedAccount)
	trails, _ := ls.(residency.TrailStore)
	var later []string // accounts whose trails a TrailStore gives
	each := func(a residency.StoredAccount) error {
		if trails != nil {
			later = append(later, a.Placement.AccountID)
		}
		s, err := keep(a)
		accounts[a.Placement.AccountID] = s
		return err
	}
	var (
		n   int64
		dcs []residency.DataCenterState
		err error
	)
	if ps, ok := ls.(*postgres.Store); ok {
		var snap postgres.Snapshot
		snap, err = ps.Snapshot(ctx, each)
		n, dcs = snap.LogSize, snap.DataCenters
	} else if n, err = ls.LogSize(ctx); err == nil {
		if err = ls.Load(ctx, each); err == nil {
			dcs, err = ls.DataCenters(ctx)
		}
	}
	// Trails after the snapshot, outside its transaction: an account's
	// events up to its version then do not change.
	if err == nil && len(later) > 0 {
		each := func(id string, h []residency.Event) error {
			a := accounts[id]
			var err error
			a.from, a.events, err = trailHashes(id, h, a.placement.Version)
			return err
		}
		if ps, ok := ls.(*postgres.Store); ok {
			err = ps.Trails(ctx, later, each)
		} else {
			for _, id := range later {
				var h []residency.Event
				if h, err = trails.Trail(ctx, id); err == nil {
					err = each(id, h)
				}
				if err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		return nil, 0, nil, fmt.Errorf("stored state: %w", err)
	}
	return accounts, n, dcs, nil
}

// keep returns what verify keeps of a stored account.
func keep(a residency.StoredAccount) (*storedAccount, error) {
	p := a.Placement
	s := &storedAccount{placement: p, agreements: a.Agreements, consents: a.Consents, objections: a.Objections}
	var err error
	s.from, s.events, err = trailHashes(p.AccountID, a.History, p.Version)
	return s, err
}

// trailHashes returns the version of the first event of the account's
// trail and the hashes of its events up to version (later ones are of
// changes after the state was read).
func trailHashes(id string, trail []residency.Event, version uint64) (from uint64, hashes []eventSum, err error) {
	for i, e := range trail {
		switch {
		case i == 0:
			from = e.Version
		case e.Version != trail[i-1].Version+1:
			return 0, nil, fmt.Errorf("stored account %q's trail goes from version %d to %d", id, trail[i-1].Version, e.Version)
		}
		if e.Version > version {
			break
		}
		hashes = append(hashes, eventHash(e))
	}
	return from, hashes, nil
}

// checkState compares the stored state with what the log says: the same
// accounts, each as checkAccount checks it, and the same data center
// statuses.
func checkState(stored map[string]*storedAccount, dcs []residency.DataCenterState, want *replayed) error {
	ids := slices.Sorted(maps.Keys(stored))
	for _, id := range ids {
		w, ok := want.accounts[id]
		if !ok {
			return fmt.Errorf("stored account %q has no entry in the log", id)
		}
		if err := checkAccount(stored[id], w); err != nil {
			return err
		}
	}
	if len(stored) != len(want.accounts) {
		missing := slices.Sorted(func(yield func(string) bool) {
			for id := range want.accounts {
				if stored[id] == nil && !yield(id) {
					return
				}
			}
		})
		return fmt.Errorf("the log records account %q, the store does not hold it", missing[0])
	}
	if len(dcs) != len(want.statuses) {
		return fmt.Errorf("the store holds %d data center statuses, the log %d", len(dcs), len(want.statuses))
	}
	for _, st := range dcs {
		if w, ok := want.statuses[st.ID]; !ok || !w.Changed.Equal(st.Changed) || w.Status != st.Status {
			return fmt.Errorf("stored status of data center %s (%s) disagrees with the log (%s)", st.ID, st.Status, w.Status)
		}
	}
	return nil
}

// checkAccount compares a stored account with what the log says of it:
// its placement, its trail from the log's first entry of it up to its
// placement's version (the events before are not in an upgraded file's
// log), its agreements, consents and objections.
func checkAccount(s *storedAccount, w *accountLog) error {
	p := s.placement
	if w.placement != p {
		return fmt.Errorf("stored account %q disagrees with the log: stored version %d in %s (%s), the log's latest entry says version %d in %s (%s)",
			p.AccountID, p.Version, p.DataCenter, p.Region, w.placement.Version, w.placement.DataCenter, w.placement.Region)
	}
	events := s.events
	if skip := w.first - s.from; w.first >= s.from && skip <= uint64(len(events)) {
		events = events[skip:]
	} else {
		events = nil
	}
	if i := mismatch(events, w.events); i >= 0 {
		return fmt.Errorf("stored account %q's trail disagrees with the log at version %d", p.AccountID, w.first+uint64(i))
	}
	if err := checkRecords(p.AccountID, "agreement", s.agreements, w.agreements, func(r residency.Agreement) (string, residency.Agreement) {
		r.ExpiresAt, r.Granted, r.Revoked = utc(r.ExpiresAt), utc(r.Granted), utc(r.Revoked)
		return r.Reference, r
	}); err != nil {
		return err
	}
	if err := checkRecords(p.AccountID, "consent", s.consents, w.consents, func(r residency.ConsentRecord) (string, residency.ConsentRecord) {
		r.ExpiresAt, r.Granted, r.Revoked = utc(r.ExpiresAt), utc(r.Granted), utc(r.Revoked)
		return r.Reference, r
	}); err != nil {
		return err
	}
	return checkRecords(p.AccountID, "objection", s.objections, w.objections, func(r residency.ObjectionRecord) (string, residency.ObjectionRecord) {
		r.Raised, r.Withdrawn = utc(r.Raised), utc(r.Withdrawn)
		return r.Reference, r
	})
}

// mismatch returns the first index where a and b differ (len of the
// shorter when one is the other's prefix), or -1 when they are equal.
func mismatch(a, b []eventSum) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// checkRecords compares an account's stored records of one kind (an
// agreement, a consent or an objection) with the log's latest of each
// reference; key gives a record's reference, and the record with its
// times in UTC.
func checkRecords[T comparable](account, kind string, stored []T, logged map[string]T, key func(T) (string, T)) error {
	for _, s := range stored {
		ref, s := key(s)
		w, ok := logged[ref]
		if !ok {
			return fmt.Errorf("stored account %q's %s %q has no entry in the log", account, kind, ref)
		}
		if _, w := key(w); w != s {
			return fmt.Errorf("stored account %q's %s %q disagrees with the log's latest entry of it", account, kind, ref)
		}
	}
	if len(stored) != len(logged) {
		var missing []string
		for ref := range logged {
			if !slices.ContainsFunc(stored, func(s T) bool { r, _ := key(s); return r == ref }) {
				missing = append(missing, ref)
			}
		}
		slices.Sort(missing)
		return fmt.Errorf("the log records account %q's %s %q, the store does not hold it", account, kind, missing[0])
	}
	return nil
}
