package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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
	for _, b := range brokenStores {
		if b.name == name {
			storetest.Run(t, b.open)
			return
		}
	}
	t.Fatalf("no broken store %q", name)
}

func TestSuiteFailsBrokenStores(t *testing.T) {
	for _, b := range brokenStores {
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
