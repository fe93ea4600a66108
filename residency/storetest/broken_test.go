package storetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/storetest"
)

// The suite must fail stores that break the contract. Each broken store
// below wraps a MemoryStore and breaks one promise; TestSuiteFailsBrokenStores
// runs the suite on it in a child process (the test binary itself, running
// TestBrokenStoreProcess) and checks that the subtest of that promise fails
// with the message expected.

// brokenStores are the broken stores, by name; the subtest that must fail,
// and a fragment of its message.
var brokenStores = []struct {
	name, subtest, message string
	open                   storetest.Opener
}{
	{"ignores versions", "Versions/ExistingAccount", `account "acct", stored at version 3, at version 3) succeeded`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &renumbering{m} })},
	{"applies a unit change by change", "Atomic/RefusedUnitWritesNothing/stale_change_last", `a refused unit: Load: account IDs mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &oneByOne{m} })},
	{"conflict without the account", "Versions/NewAccount", `want an error that names account "new"`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &anonymousConflict{m} })},
	{"plain conflict", "Versions/ExistingAccount", `want an error matching residency.ErrConflict and residency.ErrStaleVersion for account "acct"`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &plainConflict{m} })},
	{"conflict with the version written", "Atomic/RefusedUnitWritesNothing/stale_change_middle", `ConflictError.Version 1, want 0`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &versionWritten{m} })},
	{"loads in reverse order", "Order/Load", `Load: account IDs mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &reversed{m} })},
	{"loads accounts sorted", "Order/LoadAccounts", `LoadAccounts(["c" "a" "ab" "b" "a b"]), in the order given: account IDs mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &sortedIDs{m} })},
	{"ignores fn's error", "Order/StopsAtError", `Load with fn failing at the second account = <nil>, want fn's error`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &ignoresFn{m} })},
	{"keeps microseconds", "RoundTrip/Times", `account "time year 9999" mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &timeMapper{m, roundMicro, nil} })},
	{"reads local times", "RoundTrip/EveryEventKind", `account "life": Placement.Created 2026-11-29 03:17:15.123456789 +0100 CET is in CET, want UTC`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &timeMapper{m, nil, inCET} })},
	{"zero time as epoch", "RoundTrip/ZeroTimes", `account "zero" mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &timeMapper{m, zeroAsEpoch, nil} })},
	{"keeps the first state of a data center", "RoundTrip/DataCenters", `DataCenters mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &firstState{MemoryStore: m} })},
	{"ignores the context", "CancelledContext", `with a cancelled context = <nil>, want an error matching context.Canceled`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &ignoresContext{m} })},
	{"still open after Close", "Closed", `Apply(new account "after close") after Close succeeded`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &neverCloses{m} })},
	{"drops consents", "RoundTrip/Consents", `account "a" mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &dropsRecords{m} })},
	{"drops objections", "RoundTrip/Objections", `account "a" mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &dropsRecords{m} })},
	{"hides deleted accounts", "RoundTrip/DeletedAccount", `Load: account IDs mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &hidesDeleted{m} })},
	{"forgets on reopen", "Reopen", `after Close and reopen: Load: account IDs mismatch`,
		func(t *testing.T) (residency.Store, func() (residency.Store, error)) {
			return residency.NewMemoryStore(), func() (residency.Store, error) { return residency.NewMemoryStore(), nil }
		}},
	{"keeps the caller's agreements", "NoAliasing/Apply", `the caller overwrote what it gave Apply: Load: account "life" mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &aliasing{MemoryStore: m} })},
	{"shares what it read", "NoAliasing/Reads", `the caller overwrote what Load, LoadAccounts and DataCenters gave it: Load: account "imported" mismatch`,
		wrapped(func(m *residency.MemoryStore) residency.Store { return &sharing{MemoryStore: m} })},
}

// wrapped opens a MemoryStore wrapped by wrap, and reopens it wrapped too.
func wrapped(wrap func(*residency.MemoryStore) residency.Store) storetest.Opener {
	return func(t *testing.T) (residency.Store, func() (residency.Store, error)) {
		m := residency.NewMemoryStore()
		return wrap(m), func() (residency.Store, error) { return wrap(m.Reopen()), nil }
	}
}

const brokenEnv = "STORETEST_BROKEN_STORE"

// TestBrokenStoreProcess runs the suite on the broken store that
// TestSuiteFailsBrokenStores names, in a child process; it does nothing
// in a test run of its own.
func TestBrokenStoreProcess(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		return // not a child of TestSuiteFailsBrokenStores
	}
	for _, b := range slices.Concat(brokenStores, brokenLogs) {
		if b.name == name {
			storetest.Run(t, b.open)
			return
		}
	}
	t.Fatalf("no broken store %q", name)
}

func TestSuiteFailsBrokenStores(t *testing.T) {
	for _, b := range slices.Concat(brokenStores, brokenLogs) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			run := "^TestBrokenStoreProcess$"
			for part := range strings.SplitSeq(b.subtest, "/") {
				run += "/^" + regexp.QuoteMeta(part) + "$"
			}
			cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+b.name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite on a store that %s: %v, want it to fail\n%s", b.name, err, out)
			}
			if want := "--- FAIL: TestBrokenStoreProcess/" + b.subtest; !strings.Contains(string(out), want) {
				t.Errorf("the suite on a store that %s: no %q in its output:\n%s", b.name, want, out)
			}
			if !strings.Contains(string(out), b.message) {
				t.Errorf("the suite on a store that %s: no %q in its output:\n%s", b.name, b.message, out)
			}
		})
	}
}

// renumbering gives every change the version that follows the stored one,
// as a store that does not check versions would.
type renumbering struct{ *residency.MemoryStore }

func (s *renumbering) Apply(ctx context.Context, changes []residency.Change) error {
	changes = slices.Clone(changes)
	versions := map[string]uint64{}
	for i := range changes {
		c := &changes[i]
		if c.DataCenter != nil {
			continue
		}
		id := c.Placement.AccountID
		if _, ok := versions[id]; !ok {
			s.LoadAccounts(ctx, []string{id}, func(a residency.StoredAccount) error {
				versions[id] = a.Placement.Version
				return nil
			})
		}
		versions[id]++
		c.Placement.Version, c.Event.Version = versions[id], versions[id]
	}
	return s.MemoryStore.Apply(ctx, changes)
}

// oneByOne applies each change of a unit on its own.
type oneByOne struct{ *residency.MemoryStore }

func (s *oneByOne) Apply(ctx context.Context, changes []residency.Change) error {
	for _, c := range changes {
		if err := s.MemoryStore.Apply(ctx, []residency.Change{c}); err != nil {
			return err
		}
	}
	return nil
}

// anonymousConflict refuses conflicts without saying which account.
type anonymousConflict struct{ *residency.MemoryStore }

func (s *anonymousConflict) Apply(ctx context.Context, changes []residency.Change) error {
	err := s.MemoryStore.Apply(ctx, changes)
	if ce := (*residency.ConflictError)(nil); errors.As(err, &ce) {
		c := *ce
		c.AccountID = ""
		return &c
	}
	return err
}

// plainConflict refuses conflicts with ErrConflict, not a ConflictError.
type plainConflict struct{ *residency.MemoryStore }

func (s *plainConflict) Apply(ctx context.Context, changes []residency.Change) error {
	err := s.MemoryStore.Apply(ctx, changes)
	if errors.Is(err, residency.ErrConflict) {
		return fmt.Errorf("%w: %v", residency.ErrConflict, err)
	}
	return err
}

// versionWritten says the version the change writes, not the one before.
type versionWritten struct{ *residency.MemoryStore }

func (s *versionWritten) Apply(ctx context.Context, changes []residency.Change) error {
	err := s.MemoryStore.Apply(ctx, changes)
	if ce := (*residency.ConflictError)(nil); errors.As(err, &ce) {
		c := *ce
		c.Version++
		return &c
	}
	return err
}

// reversed loads accounts in reverse ID order.
type reversed struct{ *residency.MemoryStore }

func (s *reversed) Load(ctx context.Context, fn func(residency.StoredAccount) error) error {
	var all []residency.StoredAccount
	if err := s.MemoryStore.Load(ctx, func(a residency.StoredAccount) error { all = append(all, a); return nil }); err != nil {
		return err
	}
	for _, a := range slices.Backward(all) {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

// sortedIDs loads accounts in ID order rather than in the order asked.
type sortedIDs struct{ *residency.MemoryStore }

func (s *sortedIDs) LoadAccounts(ctx context.Context, ids []string, fn func(residency.StoredAccount) error) error {
	return s.MemoryStore.LoadAccounts(ctx, slices.Sorted(slices.Values(ids)), fn)
}

// ignoresFn goes on after fn fails.
type ignoresFn struct{ *residency.MemoryStore }

func (s *ignoresFn) Load(ctx context.Context, fn func(residency.StoredAccount) error) error {
	return s.MemoryStore.Load(ctx, func(a residency.StoredAccount) error { fn(a); return nil })
}

func (s *ignoresFn) LoadAccounts(ctx context.Context, ids []string, fn func(residency.StoredAccount) error) error {
	return s.MemoryStore.LoadAccounts(ctx, ids, func(a residency.StoredAccount) error { fn(a); return nil })
}

// timeMapper changes the times it writes with write and those it reads
// with read, when set.
type timeMapper struct {
	*residency.MemoryStore
	write, read func(time.Time) time.Time
}

func roundMicro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }
func inCET(t time.Time) time.Time      { return t.In(time.FixedZone("CET", 3600)) }
func zeroAsEpoch(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t
}

func (s *timeMapper) Apply(ctx context.Context, changes []residency.Change) error {
	if s.write != nil {
		changes = slices.Clone(changes)
		for i := range changes {
			c := &changes[i]
			mapPlacement(&c.Placement, s.write)
			c.Event.Time = s.write(c.Event.Time)
			if c.Agreement != nil {
				ag := *c.Agreement
				mapAgreement(&ag, s.write)
				c.Agreement = &ag
			}
			if c.DataCenter != nil {
				st := *c.DataCenter
				st.Changed = s.write(st.Changed)
				c.DataCenter = &st
			}
		}
	}
	return s.MemoryStore.Apply(ctx, changes)
}

func (s *timeMapper) Load(ctx context.Context, fn func(residency.StoredAccount) error) error {
	return s.MemoryStore.Load(ctx, s.mapRead(fn))
}

func (s *timeMapper) LoadAccounts(ctx context.Context, ids []string, fn func(residency.StoredAccount) error) error {
	return s.MemoryStore.LoadAccounts(ctx, ids, s.mapRead(fn))
}

func (s *timeMapper) mapRead(fn func(residency.StoredAccount) error) func(residency.StoredAccount) error {
	if s.read == nil {
		return fn
	}
	return func(a residency.StoredAccount) error {
		mapPlacement(&a.Placement, s.read)
		for i := range a.History {
			a.History[i].Time = s.read(a.History[i].Time)
		}
		for i := range a.Agreements {
			mapAgreement(&a.Agreements[i], s.read)
		}
		return fn(a)
	}
}

func mapPlacement(p *residency.Placement, f func(time.Time) time.Time) {
	p.Created, p.Updated, p.Move.Began = f(p.Created), f(p.Updated), f(p.Move.Began)
}

func mapAgreement(a *residency.Agreement, f func(time.Time) time.Time) {
	a.ExpiresAt, a.Granted, a.Revoked = f(a.ExpiresAt), f(a.Granted), f(a.Revoked)
}

// firstState keeps the first state written of each data center.
type firstState struct {
	*residency.MemoryStore
	seen map[string]bool
}

func (s *firstState) Apply(ctx context.Context, changes []residency.Change) error {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	var kept []residency.Change
	for _, c := range changes {
		if c.DataCenter != nil {
			if s.seen[c.DataCenter.ID] {
				continue
			}
			s.seen[c.DataCenter.ID] = true
		}
		kept = append(kept, c)
	}
	return s.MemoryStore.Apply(ctx, kept)
}

// ignoresContext applies whatever the context.
type ignoresContext struct{ *residency.MemoryStore }

func (s *ignoresContext) Apply(_ context.Context, changes []residency.Change) error {
	return s.MemoryStore.Apply(context.Background(), changes)
}

// neverCloses stays open after Close.
type neverCloses struct{ *residency.MemoryStore }

func (s *neverCloses) Close() error { return nil }

// aliasing reads agreements through the pointers Apply was given.
type aliasing struct {
	*residency.MemoryStore
	given map[[2]string]*residency.Agreement
}

func (s *aliasing) Apply(ctx context.Context, changes []residency.Change) error {
	if s.given == nil {
		s.given = map[[2]string]*residency.Agreement{}
	}
	if err := s.MemoryStore.Apply(ctx, changes); err != nil {
		return err
	}
	for _, c := range changes {
		if ag := c.Agreement; ag != nil {
			s.given[[2]string{ag.AccountID, ag.Reference}] = ag
		}
	}
	return nil
}

func (s *aliasing) Load(ctx context.Context, fn func(residency.StoredAccount) error) error {
	return s.MemoryStore.Load(ctx, func(a residency.StoredAccount) error {
		for i, ag := range a.Agreements {
			if p := s.given[[2]string{ag.AccountID, ag.Reference}]; p != nil {
				a.Agreements[i] = *p
			}
		}
		return fn(a)
	})
}

// sharing gives every Load the accounts of the first, slices shared.
type sharing struct {
	*residency.MemoryStore
	cache []residency.StoredAccount
}

func (s *sharing) Load(ctx context.Context, fn func(residency.StoredAccount) error) error {
	if s.cache == nil {
		if err := s.MemoryStore.Load(ctx, func(a residency.StoredAccount) error { s.cache = append(s.cache, a); return nil }); err != nil {
			return err
		}
	}
	for _, a := range s.cache {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

// dropsRecords keeps accounts and agreements but no consent or objection.
type dropsRecords struct{ *residency.MemoryStore }

func (s *dropsRecords) Apply(ctx context.Context, changes []residency.Change) error {
	changes = slices.Clone(changes)
	for i := range changes {
		changes[i].Consent, changes[i].Objection = nil, nil
	}
	return s.MemoryStore.Apply(ctx, changes)
}

// hidesDeleted leaves deleted accounts (no data center) out of Load.
type hidesDeleted struct{ *residency.MemoryStore }

func (s *hidesDeleted) Load(ctx context.Context, fn func(residency.StoredAccount) error) error {
	return s.MemoryStore.Load(ctx, func(a residency.StoredAccount) error {
		if a.Placement.DataCenter == "" {
			return nil
		}
		return fn(a)
	})
}

// The broken log stores keep the state in a MemoryStore and the audit log
// in a log of their own (ownLog), which each breaks in one way; an honest
// ownLog passes the suite (TestOwnLog), so that each is caught for its
// break alone.

// memLog is the log of an ownLog: its entries and their stored hashes. It
// survives reopening, as the MemoryStore's data does.
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
	hashes  auditlog.MemoryHashes
}

// ownLog is a residency.LogStore whose state is a MemoryStore's and whose
// log is its own: after each Apply it appends the entries of the changes
// pick chooses (by default those of an accepted unit), encoded by encode
// (by default residency.EncodeEntry).
type ownLog struct {
	*residency.MemoryStore
	log    *memLog
	pick   func(changes []residency.Change, err error) []residency.Change
	encode func(residency.Change) ([]byte, error)
}

// withOwnLog opens a MemoryStore with a log of its own, set up by wrap,
// and reopens it set up again, on the same state and log.
func withOwnLog(wrap func(*ownLog) residency.Store) storetest.Opener {
	return func(t *testing.T) (residency.Store, func() (residency.Store, error)) {
		m, l := residency.NewMemoryStore(), &memLog{}
		return wrap(&ownLog{MemoryStore: m, log: l}), func() (residency.Store, error) {
			return wrap(&ownLog{MemoryStore: m.Reopen(), log: l}), nil
		}
	}
}

func (s *ownLog) Apply(ctx context.Context, changes []residency.Change) error {
	err := s.MemoryStore.Apply(ctx, changes)
	logged := changes
	if err != nil {
		logged = nil
	}
	if s.pick != nil {
		logged = s.pick(changes, err)
	}
	encode := residency.EncodeEntry
	if s.encode != nil {
		encode = s.encode
	}
	entries := make([][]byte, len(logged))
	for i, c := range logged {
		e, err := encode(c)
		if err != nil {
			return err
		}
		entries[i] = e
	}
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	if _, err := s.log.hashes.Append(entries...); err != nil {
		panic(err)
	}
	s.log.entries = append(s.log.entries, entries...)
	return err
}

// open fails once the store is closed, as the MemoryStore's own log does.
func (s *ownLog) open(ctx context.Context) error {
	_, err := s.MemoryStore.LogSize(ctx)
	return err
}

// snapshot returns the log's entries, shared.
func (s *ownLog) snapshot() [][]byte {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return s.log.entries[:len(s.log.entries):len(s.log.entries)]
}

func (s *ownLog) LogSize(ctx context.Context) (int64, error) {
	if err := s.open(ctx); err != nil {
		return 0, err
	}
	return int64(len(s.snapshot())), nil
}

func (s *ownLog) LogEntries(ctx context.Context, from int64, fn func(int64, []byte) error) error {
	if err := s.open(ctx); err != nil {
		return err
	}
	log := s.snapshot()
	for i := from; i < int64(len(log)); i++ {
		if err := fn(i, bytes.Clone(log[i])); err != nil {
			return err
		}
	}
	return nil
}

func (s *ownLog) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := s.open(ctx); err != nil {
		return nil, err
	}
	return s.log.hashes.ReadHashes(indexes)
}

// TestOwnLog runs the suite on an honest ownLog, the base of the broken
// log stores.
func TestOwnLog(t *testing.T) {
	storetest.Run(t, withOwnLog(func(s *ownLog) residency.Store { return s }))
}

// brokenLogs are the broken log stores, as brokenStores.
var brokenLogs = []struct {
	name, subtest, message string
	open                   storetest.Opener
}{
	{"logs a refused unit", "Log/Refused", `a refused unit: nothing of it in the log: LogSize = 7, want 2`,
		withOwnLog(func(s *ownLog) residency.Store {
			s.pick = func(cs []residency.Change, err error) []residency.Change {
				if err != nil && !errors.Is(err, residency.ErrConflict) {
					return nil
				}
				return cs
			}
			return s
		})},
	{"logs an Apply with an ended context", "Log/Refused", `Apply with a cancelled context: nothing in the log: LogSize = 4, want 2`,
		withOwnLog(func(s *ownLog) residency.Store {
			s.pick = func(cs []residency.Change, err error) []residency.Change {
				if err != nil && !errors.Is(err, context.Canceled) {
					return nil
				}
				return cs
			}
			return s
		})},
	{"leaves data center states out", "Log/Changes", `units of every kind of change: LogSize = 18, want 21`,
		withOwnLog(func(s *ownLog) residency.Store {
			s.pick = func(cs []residency.Change, err error) []residency.Change {
				if err != nil {
					return nil
				}
				return slices.DeleteFunc(slices.Clone(cs), func(c residency.Change) bool { return c.DataCenter != nil })
			}
			return s
		})},
	{"logs an account's last change of a unit", "Log/Changes", `units of every kind of change: LogSize = 10, want 21`,
		withOwnLog(func(s *ownLog) residency.Store {
			s.pick = func(cs []residency.Change, err error) []residency.Change {
				if err != nil {
					return nil
				}
				var out []residency.Change
				for i, c := range cs {
					later := slices.ContainsFunc(cs[i+1:], func(d residency.Change) bool {
						return c.DataCenter == nil && d.DataCenter == nil && d.Placement.AccountID == c.Placement.AccountID
					})
					if !later {
						out = append(out, c)
					}
				}
				return out
			}
			return s
		})},
	{"logs a unit in account order", "Log/Changes", `LogEntries(0): entry 0 is not the change committed`,
		withOwnLog(func(s *ownLog) residency.Store {
			s.pick = func(cs []residency.Change, err error) []residency.Change {
				if err != nil {
					return nil
				}
				return slices.SortedStableFunc(slices.Values(cs), func(a, b residency.Change) int {
					return strings.Compare(a.Placement.AccountID, b.Placement.AccountID)
				})
			}
			return s
		})},
	{"writes entries of its own form", "Log/Changes", `entry 0 decodes to the change committed but is not its EncodeEntry, byte for byte`,
		withOwnLog(func(s *ownLog) residency.Store {
			s.encode = func(c residency.Change) ([]byte, error) { return json.MarshalIndent(c, "", "\t") }
			return s
		})},
	{"rewrites an old entry", "Log/Changes", `LogEntries(0): entry 0 is not the change committed`,
		withOwnLog(func(s *ownLog) residency.Store { return &rewritesOld{s} })},
	{"stores a wrong hash", "Log/Changes", `ReadHashes: stored hash 2 (level 1, node 0) is`,
		withOwnLog(func(s *ownLog) residency.Store { return &wrongHash{s} })},
	{"reads zero hashes beyond the log", "Log/Changes", `a hash no entry of the 0 committed adds, succeeded`,
		withOwnLog(func(s *ownLog) residency.Store { return &zeroBeyond{s} })},
	{"reads the log from the start", "Log/Entries", `LogEntries(1) gave index 0 to its entry number 1, want 1`,
		withOwnLog(func(s *ownLog) residency.Store { return &fromStart{s} })},
	{"ignores fn's error in LogEntries", "Log/Entries", `LogEntries(1) with fn failing at the second entry = <nil>, want fn's error`,
		withOwnLog(func(s *ownLog) residency.Store { return &logIgnoresFn{s} })},
	{"shares its entries", "Log/Entries", `the caller overwrote the entries LogEntries gave it: LogEntries(0): entry 0 does not decode`,
		withOwnLog(func(s *ownLog) residency.Store { return &sharesEntries{s} })},
	{"forgets its log on reopen", "Log/Changes", `after Close and reopen: LogSize = 0, want`,
		func(t *testing.T) (residency.Store, func() (residency.Store, error)) {
			m := residency.NewMemoryStore()
			return &ownLog{MemoryStore: m, log: &memLog{}}, func() (residency.Store, error) {
				return &ownLog{MemoryStore: m.Reopen(), log: &memLog{}}, nil
			}
		}},
	{"reads its log after Close", "Closed", `LogSize after Close succeeded`,
		withOwnLog(func(s *ownLog) residency.Store { return &logNeverCloses{s} })},
}

// rewritesOld gives entry 0 rewritten, a data center status changed, once
// the log holds more than one entry; its stored hashes stay.
type rewritesOld struct{ *ownLog }

func (s *rewritesOld) LogEntries(ctx context.Context, from int64, fn func(int64, []byte) error) error {
	n, err := s.LogSize(ctx)
	if err != nil {
		return err
	}
	return s.ownLog.LogEntries(ctx, from, func(i int64, e []byte) error {
		if i == 0 && n > 1 {
			c, err := residency.DecodeEntry(e)
			if err != nil {
				return err
			}
			c.Placement.DataCenter += "-elsewhere"
			if e, err = residency.EncodeEntry(c); err != nil {
				return err
			}
		}
		return fn(i, e)
	})
}

// wrongHash reads stored hash 2 with a bit flipped.
type wrongHash struct{ *ownLog }

func (s *wrongHash) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	hs, err := s.ownLog.ReadHashes(ctx, indexes)
	for i, x := range indexes {
		if x == 2 && err == nil {
			hs[i][0] ^= 1
		}
	}
	return hs, err
}

// zeroBeyond reads zero hashes where none is stored.
type zeroBeyond struct{ *ownLog }

func (s *zeroBeyond) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	n, err := s.LogSize(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < tlog.StoredHashCount(n) {
			h, err := s.ownLog.ReadHashes(ctx, []int64{x})
			if err != nil {
				return nil, err
			}
			out[i] = h[0]
		}
	}
	return out, nil
}

// fromStart reads the log from entry 0, whatever from.
type fromStart struct{ *ownLog }

func (s *fromStart) LogEntries(ctx context.Context, _ int64, fn func(int64, []byte) error) error {
	return s.ownLog.LogEntries(ctx, 0, fn)
}

// logIgnoresFn goes on after fn fails.
type logIgnoresFn struct{ *ownLog }

func (s *logIgnoresFn) LogEntries(ctx context.Context, from int64, fn func(int64, []byte) error) error {
	return s.ownLog.LogEntries(ctx, from, func(i int64, e []byte) error { fn(i, e); return nil })
}

// sharesEntries gives fn the entries it keeps.
type sharesEntries struct{ *ownLog }

func (s *sharesEntries) LogEntries(ctx context.Context, from int64, fn func(int64, []byte) error) error {
	if err := s.open(ctx); err != nil {
		return err
	}
	log := s.snapshot()
	for i := from; i < int64(len(log)); i++ {
		if err := fn(i, log[i]); err != nil {
			return err
		}
	}
	return nil
}

// logNeverCloses reads its log after Close.
type logNeverCloses struct{ *ownLog }

func (s *logNeverCloses) LogSize(ctx context.Context) (int64, error) {
	return int64(len(s.snapshot())), nil
}
