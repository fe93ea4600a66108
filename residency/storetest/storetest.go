package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Opener opens the store under test for one subtest of [Run]. It returns
// a store on new, empty storage of its own (a new file, a new database
// schema), and reopen, which opens another store on that same storage.
//
// The suite calls reopen only once it has closed the store it opened
// last, and may call it several times. It closes every store it opens; the
// Opener removes the storage itself, with t.Cleanup, if it needs to. The
// Opener reports its own failures with t.Fatal.
type Opener func(t *testing.T) (s residency.Store, reopen func() (residency.Store, error))

// Run checks that the stores open opens keep every promise of the
// [residency.Store] contract that the Router relies on, in one subtest per
// promise. Messages name the account or data center and what was expected.
//
// The promises, as the Store documentation states them:
//
//   - Every record reads back exactly as written: placements with all
//     their fields, every event, agreements, consents, objections and data
//     center states, with
//     account IDs and references of up to 255 bytes of any valid UTF-8
//     without control characters, compared bytewise (no normalisation, no
//     case folding, no trimming).
//   - Times read back as the same instant to the nanosecond, in UTC, from
//     year 1 to year 9999; the zero time reads back as the zero time. The
//     Router gives stores only UTC times, without monotonic readings.
//   - Load yields accounts in bytewise account ID order; a StoredAccount's
//     History is oldest first, its Agreements, Consents and Objections in
//     bytewise reference order, one per reference (the last written);
//     DataCenters returns one state per data center, the last written, in
//     ID order.
//   - A deleted account (a placement without data center) is kept like any
//     other, with its trail and records, and its version goes on when the
//     ID is placed afresh.
//   - A change to a new account has version 1, and in one Apply several
//     changes of one account follow each other (n+1, n+2, ...); any other
//     version refuses the whole unit with an error matching
//     [residency.ErrConflict] that names the account, and nothing of the
//     unit is written: no account, event, agreement or data center state.
//   - Apply with a context already ended writes nothing and returns an
//     error matching the context's error.
//   - After Close, every other method fails, and writes nothing; another
//     store opened on the same storage reads everything applied before.
//   - A store keeps no reference to what Apply is given, and gives fn and
//     the caller of DataCenters values of their own.
//
// A store that is a [residency.LogStore] must also keep the audit log as
// that documentation states it, checked after every unit every subtest
// writes, and on reopening:
//
//   - The log holds one entry per change committed, in commit order (the
//     changes of a unit in the order given): entry i is, byte for byte,
//     [residency.EncodeEntry] of the i-th change, as Apply was given it.
//     A refused unit, or Apply with an ended context, appends nothing.
//   - LogSize is the number of entries; LogEntries from any index gives
//     the entries from there on with their indexes, none past the end,
//     stops at fn's first error, and gives fn entries of its own.
//   - ReadHashes gives, in the order asked, the stored hashes tlog computes
//     over the entries ([tlog.StoredHashes]), so that [tlog.TreeHash] over
//     them is the entries' tree hash, and fails for an index that no
//     committed entry added. After Close, the three fail.
//
// A store that is a [residency.TrailStore] gives no History in Load and
// LoadAccounts, and gives each account's trail through Trail instead: the
// suite checks the trail of every account it reads that way (an account
// the store does not hold has an empty one).
func Run(t *testing.T, open Opener) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open) })
	t.Run("RoundTrip", func(t *testing.T) {
		t.Run("EveryEventKind", func(t *testing.T) { testEveryEventKind(t, open) })
		t.Run("Placements", func(t *testing.T) { testPlacements(t, open) })
		t.Run("Text", func(t *testing.T) { testText(t, open) })
		t.Run("Times", func(t *testing.T) { testTimes(t, open) })
		t.Run("ZeroTimes", func(t *testing.T) { testZeroTimes(t, open) })
		t.Run("LongHistory", func(t *testing.T) { testLongHistory(t, open) })
		t.Run("Agreements", func(t *testing.T) { testAgreements(t, open) })
		t.Run("DataCenters", func(t *testing.T) { testDataCenters(t, open) })
		t.Run("DataCenterVersions", func(t *testing.T) { testDataCenterVersions(t, open) })
		t.Run("Consents", func(t *testing.T) { testConsents(t, open) })
		t.Run("Objections", func(t *testing.T) { testObjections(t, open) })
		t.Run("DeletedAccount", func(t *testing.T) { testDeleted(t, open) })
	})
	t.Run("Order", func(t *testing.T) {
		t.Run("Load", func(t *testing.T) { testLoadOrder(t, open) })
		t.Run("LoadAccounts", func(t *testing.T) { testLoadAccounts(t, open) })
		t.Run("StopsAtError", func(t *testing.T) { testStopsAtError(t, open) })
	})
	t.Run("Versions", func(t *testing.T) {
		t.Run("NewAccount", func(t *testing.T) { testNewAccountVersions(t, open) })
		t.Run("ExistingAccount", func(t *testing.T) { testExistingAccountVersions(t, open) })
		t.Run("SequenceInOneUnit", func(t *testing.T) { testSequenceInOneUnit(t, open) })
	})
	t.Run("Atomic", func(t *testing.T) {
		t.Run("ManyAccounts", func(t *testing.T) { testManyAccounts(t, open) })
		t.Run("RefusedUnitWritesNothing", func(t *testing.T) { testRefusedUnit(t, open) })
		t.Run("InvalidChangeWritesNothing", func(t *testing.T) { testInvalidChange(t, open) })
	})
	t.Run("Reopen", func(t *testing.T) { testReopen(t, open) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, open) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelled(t, open) })
	t.Run("NoAliasing", func(t *testing.T) {
		t.Run("Apply", func(t *testing.T) { testApplyAliasing(t, open) })
		t.Run("Reads", func(t *testing.T) { testReadAliasing(t, open) })
	})
	t.Run("Log", func(t *testing.T) {
		t.Run("Changes", func(t *testing.T) { testLogChanges(t, open) })
		t.Run("Refused", func(t *testing.T) { testLogRefused(t, open) })
		t.Run("Entries", func(t *testing.T) { testLogEntries(t, open) })
	})
}

// fixture is one subtest's store and what it should hold.
type fixture struct {
	t      *testing.T
	store  residency.Store
	reopen func() (residency.Store, error)
	open   bool
	want   model
}

func newFixture(t *testing.T, open Opener) *fixture {
	t.Helper()
	s, reopen := open(t)
	if s == nil || reopen == nil {
		t.Fatal("storetest: the Opener returned a nil store or reopen function")
	}
	f := &fixture{t: t, store: s, reopen: reopen, open: true, want: newModel()}
	t.Cleanup(func() {
		if f.open {
			f.store.Close()
		}
	})
	return f
}

// apply applies the changes as one unit, which must succeed, and records
// them in the model.
func (f *fixture) apply(what string, changes ...residency.Change) {
	f.t.Helper()
	if err := f.store.Apply(context.Background(), changes); err != nil {
		f.t.Fatalf("Apply(%s): %v, want success", what, err)
	}
	f.want.apply(changes)
}

// conflict is the refusal of a unit that the suite expects: account is
// stored at version stored, and the unit's change expected version
// expected (one less than the version it writes). When inUnit, the version
// in the way is one that an earlier change of the same unit gave the
// account, and only the account is checked.
type conflict struct {
	account          string
	dataCenter       string // instead of account: a stale data center status
	stored, expected uint64
	// inUnit: the unit's own changes do not follow each other; only the
	// account or data center is checked.
	inUnit bool
}

// refuse applies the changes as one unit, which must be refused as a
// stale write, as want says.
func (f *fixture) refuse(what string, want conflict, changes ...residency.Change) {
	f.t.Helper()
	err := f.store.Apply(context.Background(), changes)
	if want.dataCenter != "" {
		f.refuseStatus(what, want, err)
		return
	}
	var ce *residency.ConflictError
	switch {
	case err == nil:
		f.t.Errorf("Apply(%s) succeeded, want a *residency.ConflictError for account %q", what, want.account)
		return
	case !errors.Is(err, residency.ErrConflict) || !errors.Is(err, residency.ErrStaleVersion):
		f.t.Errorf("Apply(%s) = %v, want an error matching residency.ErrConflict and residency.ErrStaleVersion for account %q", what, err, want.account)
		return
	case !errors.As(err, &ce):
		f.t.Errorf("Apply(%s) = %v, want a *residency.ConflictError for account %q", what, err, want.account)
		return
	case !strings.Contains(err.Error(), want.account):
		f.t.Errorf("Apply(%s) = %v, want an error that names account %q", what, err, want.account)
	}
	if ce.AccountID != want.account || !ce.Stale {
		f.t.Errorf("Apply(%s) = %#v, want AccountID %q and Stale", what, ce, want.account)
	}
	if want.inUnit {
		return
	}
	if ce.Version != want.expected {
		f.t.Errorf("Apply(%s): ConflictError.Version %d, want %d, the version before the change's", what, ce.Version, want.expected)
	}
	wantID := want.account
	if want.stored == 0 {
		wantID = "" // the zero Placement: nothing stored
	}
	if ce.Stored.Version != want.stored || ce.Stored.AccountID != wantID {
		f.t.Errorf("Apply(%s): ConflictError.Stored is account %q at version %d, want account %q at version %d",
			what, ce.Stored.AccountID, ce.Stored.Version, wantID, want.stored)
	}
}

// refuseStatus checks err, the error of a unit refused for a stale data
// center status.
func (f *fixture) refuseStatus(what string, want conflict, err error) {
	f.t.Helper()
	var ce *residency.ConflictError
	switch {
	case !errors.Is(err, residency.ErrConflict) || !errors.Is(err, residency.ErrStaleVersion):
		f.t.Errorf("Apply(%s) = %v, want an error matching residency.ErrConflict and residency.ErrStaleVersion for data center %q", what, err, want.dataCenter)
		return
	case !errors.As(err, &ce):
		f.t.Errorf("Apply(%s) = %v, want a *residency.ConflictError for data center %q", what, err, want.dataCenter)
		return
	case !strings.Contains(err.Error(), want.dataCenter):
		f.t.Errorf("Apply(%s) = %v, want an error that names data center %q", what, err, want.dataCenter)
	}
	if ce.DataCenter != want.dataCenter || ce.AccountID != "" || !ce.Stale {
		f.t.Errorf("Apply(%s) = %#v, want DataCenter %q, no AccountID, and Stale", what, ce, want.dataCenter)
	}
	if !want.inUnit && (ce.Version != want.expected || ce.Stored.Version != want.stored) {
		f.t.Errorf("Apply(%s): ConflictError.Version %d and Stored.Version %d, want %d and %d", what, ce.Version, ce.Stored.Version, want.expected, want.stored)
	}
}

// cycle closes the store and opens another on the same storage.
func (f *fixture) cycle() {
	f.t.Helper()
	f.close()
	s, err := f.reopen()
	if err != nil {
		f.t.Fatalf("reopening the store after Close: %v", err)
	}
	f.store, f.open = s, true
}

func (f *fixture) close() {
	f.t.Helper()
	f.open = false
	if err := f.store.Close(); err != nil {
		f.t.Errorf("Close: %v", err)
	}
}

// check compares what the store holds with the model, through Load,
// LoadAccounts and DataCenters, then again on a reopened store.
func (f *fixture) check(when string) {
	f.t.Helper()
	f.checkOpen(when)
	f.cycle()
	f.checkOpen(when + ", after Close and reopen")
}

// checkOpen compares what the open store holds with the model, and the
// audit log of a [residency.LogStore] with the changes accepted.
func (f *fixture) checkOpen(when string) {
	f.t.Helper()
	ctx := context.Background()
	want := f.want.accounts()

	var got []residency.StoredAccount
	if err := f.store.Load(ctx, func(a residency.StoredAccount) error {
		got = append(got, a)
		return nil
	}); err != nil {
		f.t.Errorf("%s: Load: %v", when, err)
	}
	f.compare(when+": Load", want, got)

	// LoadAccounts: every account, in reverse order, with missing ones
	// between them.
	ids := make([]string, 0, 2*len(want)+1)
	var wantSome []residency.StoredAccount
	ids = append(ids, "missing")
	for _, a := range slices.Backward(want) {
		ids = append(ids, a.Placement.AccountID, a.Placement.AccountID+" missing")
		wantSome = append(wantSome, a)
	}
	got = nil
	if err := f.store.LoadAccounts(ctx, ids, func(a residency.StoredAccount) error {
		got = append(got, a)
		return nil
	}); err != nil {
		f.t.Errorf("%s: LoadAccounts: %v", when, err)
	}
	f.compare(when+": LoadAccounts of every account in reverse order, and missing ones", wantSome, got)
	if ts, ok := f.store.(residency.TrailStore); ok {
		if h, err := ts.Trail(ctx, "missing"); err != nil || len(h) > 0 {
			f.t.Errorf("%s: Trail of an account the store does not hold = %d events, %v; want none, nil", when, len(h), err)
		}
	}

	states, err := f.store.DataCenters(ctx)
	if err != nil {
		f.t.Errorf("%s: DataCenters: %v", when, err)
	}
	if diff := cmp.Diff(f.want.dataCenters(), states, cmpopts.EquateEmpty()); diff != "" {
		f.t.Errorf("%s: DataCenters mismatch (-want +got):\n%s", when, diff)
	}
	for _, s := range states {
		if loc := s.Changed.Location(); loc != time.UTC {
			f.t.Errorf("%s: DataCenters: data center %q: Changed %v is in %v, want UTC", when, s.ID, s.Changed, loc)
		}
	}
	f.checkLog(when)
}

// compare reports the differences between the accounts wanted and those
// a read gave: first the account IDs, in order, then each account.
func (f *fixture) compare(what string, want, got []residency.StoredAccount) {
	f.t.Helper()
	wantIDs, gotIDs := accountIDs(want), accountIDs(got)
	if diff := cmp.Diff(wantIDs, gotIDs, cmpopts.EquateEmpty()); diff != "" {
		f.t.Errorf("%s: account IDs mismatch (-want +got):\n%s", what, diff)
	}
	byID := make(map[string]residency.StoredAccount, len(got))
	for _, a := range got {
		byID[a.Placement.AccountID] = f.withTrail(what, a)
	}
	bad := 0
	for _, w := range want {
		id := w.Placement.AccountID
		g, ok := byID[id]
		if !ok {
			continue // reported above
		}
		diff := cmp.Diff(w, g, cmpopts.EquateEmpty())
		wrong := notUTC(g)
		if diff == "" && len(wrong) == 0 {
			continue
		}
		if bad++; bad > maxReported {
			continue
		}
		if diff != "" {
			f.t.Errorf("%s: account %q mismatch (-want +got):\n%s", what, id, diff)
		}
		for _, field := range wrong {
			f.t.Errorf("%s: account %q: %s, want UTC", what, id, field)
		}
	}
	if bad > maxReported {
		f.t.Errorf("%s: %d more accounts mismatch", what, bad-maxReported)
	}
}

// withTrail returns a with its History read by Trail, when the store is a
// [residency.TrailStore], whose reads must have left it empty.
func (f *fixture) withTrail(what string, a residency.StoredAccount) residency.StoredAccount {
	f.t.Helper()
	ts, ok := f.store.(residency.TrailStore)
	if !ok {
		return a
	}
	id := a.Placement.AccountID
	if len(a.History) > 0 {
		f.t.Errorf("%s: account %q: a TrailStore gave %d events of History, want none (Trail reads them)", what, id, len(a.History))
	}
	h, err := ts.Trail(context.Background(), id)
	if err != nil {
		f.t.Errorf("%s: Trail(%q): %v", what, id, err)
	}
	a.History = h
	return a
}

// maxReported is how many mismatched accounts one read reports in full.
const maxReported = 10

func accountIDs(as []residency.StoredAccount) []string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.Placement.AccountID
	}
	return ids
}

// notUTC describes the times of a that are not in UTC.
func notUTC(a residency.StoredAccount) []string {
	var out []string
	check := func(field string, t time.Time) {
		if loc := t.Location(); loc != time.UTC {
			out = append(out, fmt.Sprintf("%s %v is in %v", field, t, loc))
		}
	}
	p := &a.Placement
	check("Placement.Created", p.Created)
	check("Placement.Updated", p.Updated)
	check("Placement.Move.Began", p.Move.Began)
	for _, e := range a.History {
		check(fmt.Sprintf("event %d: Time", e.Version), e.Time)
	}
	for _, ag := range a.Agreements {
		check(fmt.Sprintf("agreement %q: ExpiresAt", ag.Reference), ag.ExpiresAt)
		check(fmt.Sprintf("agreement %q: Granted", ag.Reference), ag.Granted)
		check(fmt.Sprintf("agreement %q: Revoked", ag.Reference), ag.Revoked)
	}
	for _, c := range a.Consents {
		check(fmt.Sprintf("consent %q: ExpiresAt", c.Reference), c.ExpiresAt)
		check(fmt.Sprintf("consent %q: Granted", c.Reference), c.Granted)
		check(fmt.Sprintf("consent %q: Revoked", c.Reference), c.Revoked)
	}
	for _, o := range a.Objections {
		check(fmt.Sprintf("objection %q: Raised", o.Reference), o.Raised)
		check(fmt.Sprintf("objection %q: Withdrawn", o.Reference), o.Withdrawn)
	}
	return out
}

// model is what a store should hold after the changes it accepted.
type model struct {
	byID map[string]*residency.StoredAccount
	dcs  map[string]residency.DataCenterState
	// log is the audit log a [residency.LogStore] should hold: the
	// residency.EncodeEntry of every change accepted, in order, encoded
	// when it was accepted (before the caller could change it);
	// encodeErr is the first change the fixture could not encode.
	log       [][]byte
	encodeErr error
}

func newModel() model {
	return model{byID: make(map[string]*residency.StoredAccount), dcs: make(map[string]residency.DataCenterState)}
}

// apply records an accepted unit, as the contract says a store keeps it.
func (m *model) apply(changes []residency.Change) {
	for _, c := range changes {
		e, err := residency.EncodeEntry(c)
		if err != nil && m.encodeErr == nil {
			m.encodeErr = fmt.Errorf("storetest: fixture: EncodeEntry(change %d of the log): %w", len(m.log), err)
		}
		m.log = append(m.log, e)
		if c.DataCenter != nil {
			m.dcs[c.DataCenter.ID] = *c.DataCenter
			continue
		}
		a := m.byID[c.Placement.AccountID]
		if a == nil {
			a = new(residency.StoredAccount)
			m.byID[c.Placement.AccountID] = a
		}
		a.Placement = c.Placement
		a.History = append(a.History, c.Event)
		if ag := c.Agreement; ag != nil {
			a.Agreements = putByReference(a.Agreements, *ag, func(x residency.Agreement) string { return x.Reference })
		}
		if cr := c.Consent; cr != nil {
			a.Consents = putByReference(a.Consents, *cr, func(x residency.ConsentRecord) string { return x.Reference })
		}
		if o := c.Objection; o != nil {
			a.Objections = putByReference(a.Objections, *o, func(x residency.ObjectionRecord) string { return x.Reference })
		}
	}
}

// accounts returns copies of the accounts, in account ID order.
func (m model) accounts() []residency.StoredAccount {
	out := make([]residency.StoredAccount, 0, len(m.byID))
	for _, a := range m.byID {
		out = append(out, residency.StoredAccount{Placement: a.Placement, History: slices.Clone(a.History), Agreements: slices.Clone(a.Agreements),
			Consents: slices.Clone(a.Consents), Objections: slices.Clone(a.Objections)})
	}
	slices.SortFunc(out, func(x, y residency.StoredAccount) int {
		return strings.Compare(x.Placement.AccountID, y.Placement.AccountID)
	})
	return out
}

// dataCenters returns the data center states, in ID order.
func (m model) dataCenters() []residency.DataCenterState {
	out := make([]residency.DataCenterState, 0, len(m.dcs))
	for _, s := range m.dcs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y residency.DataCenterState) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// putByReference puts v in place of the record of the same reference in
// list, which is in reference order, or inserts it there.
func putByReference[T any](list []T, v T, ref func(T) string) []T {
	i, found := slices.BinarySearchFunc(list, ref(v), func(x T, r string) int { return strings.Compare(ref(x), r) })
	if found {
		list[i] = v
		return list
	}
	return slices.Insert(list, i, v)
}
