package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

// One function per promise of Run's list.

func testEmpty(t *testing.T, open Opener) {
	f := newFixture(t, open)
	f.check("a new store")
}

func testEveryEventKind(t *testing.T, open Opener) {
	f := newFixture(t, open)
	// One change per Apply, as a lone writer commits them.
	for _, c := range life("life", at, at.AddDate(0, 1, 0)) {
		f.apply(fmt.Sprintf("account %q version %d (%s)", c.Placement.AccountID, c.Placement.Version, c.Event.Kind), c)
	}
	f.apply(`imported account "imported"`, imported("imported", at))
	kinds := map[residency.EventKind]bool{}
	for _, a := range f.want.accounts() {
		for _, e := range a.History {
			kinds[e.Kind] = true
		}
	}
	for _, k := range []residency.EventKind{residency.Placed, residency.Imported, residency.MoveBegun, residency.MoveCompleted,
		residency.MoveAborted, residency.TransferGranted, residency.TransferRevoked} {
		if !kinds[k] {
			t.Fatalf("storetest: the fixture lacks an event of kind %s", k)
		}
	}
	f.check("an account through every kind of event, one change per Apply")
}

func testPlacements(t *testing.T, open Opener) {
	f := newFixture(t, open)
	var unit []residency.Change
	for i, r := range region.All() {
		// Every field set, with a move in progress to another region that
		// an agreement allows.
		full := placed("full "+r.String(), at.Add(time.Duration(i)*time.Nanosecond))
		p := &full.Placement
		p.Region, p.Country, p.Rule = r, region.MustParseCountry([]string{"US", "FR", "GB", "JP"}[i]), "rule "+r.String()
		p.DataCenter, p.Provider, p.Backup, p.Transfer = "dc "+r.String(), provider.Websupport, "backup "+r.String(), "T "+r.String()
		p.Updated = at.Add(time.Hour)
		p.Move = residency.Move{ID: "move " + r.String(), AccountID: p.AccountID, From: p.DataCenter, To: "target",
			ToRegion: region.All()[(i+1)%4], Transfer: "T move", Began: at.Add(time.Minute)}
		full.Event.From, full.Event.Reference, full.Event.MoveID = "from", "reference", "move id"
		// Only what a placement must have: no country, backup, transfer
		// or move.
		bare := placed("bare "+r.String(), at)
		bare.Placement.Region, bare.Placement.Country, bare.Placement.Backup = r, region.Country{}, ""
		unit = append(unit, full, bare)
	}
	f.apply("placements of every region, with every field and with the fewest", unit...)
	f.check("placements with every field")
}

func testText(t *testing.T, open Opener) {
	f := newFixture(t, open)
	for _, id := range awkwardIDs() {
		if err := residency.ValidAccountID(id); err != nil {
			t.Fatalf("storetest: fixture: %v", err)
		}
		c := placed(id, at)
		c.Placement.Rule, c.Event.Rule = longText("rule "), longText("rule ")
		c.Placement.DataCenter, c.Event.To = "dc ü語𝄞", "dc ü語𝄞"
		f.apply(fmt.Sprintf("account %q", id), c)
		ref := longText("ref " + id)
		grant := next(c, residency.TransferGranted, at, func(p *residency.Placement, e *residency.Event) {
			e.From, e.To, e.Reference = "EU", "US", ref
		})
		grant.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: id, To: region.US, Reference: ref}, Granted: at}
		move := next(grant, residency.MoveBegun, at, func(p *residency.Placement, e *residency.Event) {
			mid := longText("move " + id)
			p.Move = residency.Move{ID: mid, AccountID: id, From: p.DataCenter, To: "aws-us-west-1", ToRegion: region.US, Transfer: ref, Began: at}
			e.From, e.To, e.Reference, e.MoveID = p.DataCenter, "aws-us-west-1", ref, mid
		})
		f.apply(fmt.Sprintf("account %q: a 255-byte agreement reference and move ID", id), grant, move)
	}
	f.check("account IDs, references and move IDs of awkward UTF-8, up to 255 bytes")
}

func testTimes(t *testing.T, open Opener) {
	f := newFixture(t, open)
	for _, tt := range extremeTimes {
		// Every time field of an account and of a data center state at tt,
		// in one unit per time, so that a failure names the time.
		id := "time " + tt.name
		unit := append(life(id, tt.t, tt.t), dataCenter("dc "+tt.name, provider.Draining, tt.t, 1))
		err := f.store.Apply(context.Background(), unit)
		if err != nil {
			t.Errorf("Apply(account %q and data center %q with every time at %s): %v, want success", id, "dc "+tt.name, tt.t.Format(time.RFC3339Nano), err)
			continue
		}
		f.want.apply(unit)
	}
	f.check("times from year 1 to 9999 in every time field")
}

func testZeroTimes(t *testing.T, open Opener) {
	f := newFixture(t, open)
	f.apply(`account "zero" and data center "dc zero" with every time zero`,
		append(life("zero", time.Time{}, time.Time{}), dataCenter("dc zero", provider.Offline, time.Time{}, 1))...)
	f.check("zero times in every time field")
}

func testLongHistory(t *testing.T, open Opener) {
	f := newFixture(t, open)
	const first, later, units = 600, 100, 4
	c := placed("long", at)
	unit := []residency.Change{c}
	for i := 1; i < first; i++ {
		c = next(c, residency.MoveBegun, at.Add(time.Duration(i)), func(p *residency.Placement, e *residency.Event) {
			e.MoveID = fmt.Sprintf("m-%d", i)
		})
		unit = append(unit, c)
	}
	f.apply(fmt.Sprintf("versions 1 to %d of one account", first), unit...)
	for range units {
		unit = unit[:0]
		for range later {
			c = next(c, residency.MoveAborted, c.Event.Time.Add(time.Second), nil)
			unit = append(unit, c)
		}
		f.apply(fmt.Sprintf("versions %d to %d of one account", unit[0].Placement.Version, c.Placement.Version), unit...)
	}
	f.check(fmt.Sprintf("one account with %d events", c.Placement.Version))
}

func testAgreements(t *testing.T, open Opener) {
	f := newFixture(t, open)
	// Accounts whose IDs are prefixes of one another, so that a store that
	// keys agreements by account ID and reference must keep them apart.
	for _, id := range []string{"a", "a b", "ab"} {
		c := placed(id, at)
		unit := []residency.Change{c}
		for i, ref := range []string{"T-2", "T-10", "T-1", "t-1", longText("T-")} {
			c = next(c, residency.TransferGranted, at, func(p *residency.Placement, e *residency.Event) {
				e.From, e.To, e.Reference = "EU", "UK", ref
			})
			expires := []time.Time{{}, at.AddDate(1, 0, 0), at.AddDate(100, 0, 0), at, at.Add(1)}[i] // extreme ones: Times
			c.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: id, To: region.UK, Reference: ref, ExpiresAt: expires}, Granted: at}
			unit = append(unit, c)
		}
		f.apply(fmt.Sprintf("account %q with five agreements", id), unit...)
		revoke := next(c, residency.TransferRevoked, at.Add(time.Hour), func(p *residency.Placement, e *residency.Event) {
			e.From, e.To, e.Reference = "EU", "UK", "T-10"
		})
		revoke.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: id, To: region.UK, Reference: "T-10", ExpiresAt: at.AddDate(1, 0, 0)},
			Granted: at, Revoked: at.Add(time.Hour)}
		f.apply(fmt.Sprintf("account %q: agreement %q revoked", id, "T-10"), revoke)
	}
	f.check("agreements granted and revoked, one per reference, in reference order")
}

func testDataCenters(t *testing.T, open Opener) {
	f := newFixture(t, open)
	f.apply("three data center states", dataCenter("linode-eu", provider.Draining, at, 1), dataCenter("aws-eu-west-1", provider.Offline, at, 1),
		dataCenter("dc ü語𝄞", provider.Active, at, 1))
	f.checkOpen("three data center states")
	f.apply("a data center set twice in one unit", dataCenter("linode-eu", provider.Offline, at.Add(time.Second), 2),
		dataCenter("linode-eu", provider.Active, at.Add(2*time.Second), 3))
	f.apply("a data center state beside an account", placed("acme", at), dataCenter("aws-eu-west-1", provider.Active, at.Add(time.Minute), 2))
	f.check("data center states set and changed, the last one kept")
}

// testDataCenterVersions: a data center's status is versioned as an
// account is: a change whose version does not follow the stored one is
// refused, and with it its whole unit.
func testDataCenterVersions(t *testing.T, open Opener) {
	f := newFixture(t, open)
	f.apply("linode-eu at version 1", dataCenter("linode-eu", provider.Draining, at, 1))
	f.refuse("linode-eu at version 1 again", conflict{dataCenter: "linode-eu", stored: 1, expected: 0},
		dataCenter("linode-eu", provider.Active, at, 1))
	f.refuse("linode-eu at version 3", conflict{dataCenter: "linode-eu", stored: 1, expected: 2},
		dataCenter("linode-eu", provider.Active, at, 3))
	f.refuse("a new data center at version 2", conflict{dataCenter: "linode-us", stored: 0, expected: 1},
		dataCenter("linode-us", provider.Draining, at, 2))
	f.refuse("a new data center at version 0", conflict{dataCenter: "linode-us", stored: 0, expected: 0, inUnit: true},
		dataCenter("linode-us", provider.Draining, at, 0))
	f.refuse("an account beside a stale data center", conflict{dataCenter: "linode-eu", stored: 1, expected: 0},
		placed("acme", at), dataCenter("linode-eu", provider.Active, at, 1), placed("globex", at))
	f.refuse("versions 2 and 4 of linode-eu in one unit", conflict{dataCenter: "linode-eu", inUnit: true},
		dataCenter("linode-eu", provider.Active, at, 2), dataCenter("linode-eu", provider.Draining, at, 4))
	f.check("nothing of the refused units")
	f.apply("linode-eu at versions 2 and 3 in one unit", dataCenter("linode-eu", provider.Active, at, 2),
		dataCenter("linode-eu", provider.Offline, at.Add(time.Second), 3))
	f.checkOpen("linode-eu at version 3")
}

func testLoadOrder(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ids := awkwardIDs()
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, id := range ids[:len(ids)/2] {
		f.apply(fmt.Sprintf("account %q", id), life(id, at, time.Time{})...)
	}
	var unit []residency.Change
	for _, id := range ids[len(ids)/2:] {
		unit = append(unit, life(id, at, time.Time{})...)
	}
	f.apply("the other accounts in one unit", unit...)
	f.check("accounts written in random order") // Load compares the order
}

func testLoadAccounts(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ids := []string{"c", "a", "b", "a b", "ab"}
	for _, id := range ids {
		f.apply(fmt.Sprintf("account %q", id), life(id, at, time.Time{})...)
	}
	want := f.want.accounts()
	byID := map[string]residency.StoredAccount{}
	for _, a := range want {
		byID[a.Placement.AccountID] = a
	}
	for _, tt := range []struct {
		name string
		ids  []string
	}{
		{"none", nil},
		{"only missing ones", []string{"d", "", "a ", "A"}},
		{"one", []string{"b"}},
		{"in the order given", []string{"c", "a", "ab", "b", "a b"}},
		{"missing ones skipped", []string{"zz", "b", "missing", "a", "aa", "c", "a b c"}},
	} {
		var wantSome []residency.StoredAccount
		for _, id := range tt.ids {
			if a, ok := byID[id]; ok {
				wantSome = append(wantSome, a)
			}
		}
		var got []residency.StoredAccount
		err := f.store.LoadAccounts(context.Background(), tt.ids, func(a residency.StoredAccount) error {
			got = append(got, a)
			return nil
		})
		if err != nil {
			t.Errorf("LoadAccounts(%q): %v", tt.ids, err)
		}
		f.compare(fmt.Sprintf("LoadAccounts(%q), %s", tt.ids, tt.name), wantSome, got)
	}
}

func testStopsAtError(t *testing.T, open Opener) {
	f := newFixture(t, open)
	for _, id := range []string{"a", "b", "c"} {
		f.apply(fmt.Sprintf("account %q", id), placed(id, at))
	}
	stop := errors.New("storetest: fn's error")
	reads := []struct {
		name string
		read func(fn func(residency.StoredAccount) error) error
	}{
		{"Load", func(fn func(residency.StoredAccount) error) error { return f.store.Load(context.Background(), fn) }},
		{"LoadAccounts", func(fn func(residency.StoredAccount) error) error {
			return f.store.LoadAccounts(context.Background(), []string{"c", "b", "a"}, fn)
		}},
	}
	for _, r := range reads {
		calls := 0
		err := r.read(func(residency.StoredAccount) error {
			if calls++; calls == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Errorf("%s with fn failing at the second account = %v, want fn's error", r.name, err)
		}
		if calls != 2 {
			t.Errorf("%s called fn %d times after fn failed at the second of three accounts, want 2", r.name, calls)
		}
	}
}

func testNewAccountVersions(t *testing.T, open Opener) {
	f := newFixture(t, open)
	f.apply(`account "existing"`, placed("existing", at))
	for _, v := range []uint64{0, 2, 7} {
		c := placed("new", at)
		c.Placement.Version, c.Event.Version = v, v
		f.refuse(fmt.Sprintf("new account %q at version %d", "new", v), conflict{account: "new", expected: v - 1}, c)
		// The same beside a valid change: the whole unit is refused.
		f.refuse(fmt.Sprintf("account %q at version 2 and new account %q at version %d", "existing", "new", v), conflict{account: "new", expected: v - 1},
			next(placed("existing", at), residency.MoveBegun, at, nil), c)
	}
	f.check("new accounts at versions other than 1 refused")
}

func testExistingAccountVersions(t *testing.T, open Opener) {
	f := newFixture(t, open)
	changes := life("acct", at, time.Time{})
	f.apply(`account "acct" at versions 1 to 3`, changes[:3]...)
	for _, v := range []uint64{1, 2, 3, 5, 9} {
		c := changes[3]
		c.Placement.Version, c.Event.Version = v, v
		f.refuse(fmt.Sprintf("account %q, stored at version 3, at version %d", "acct", v), conflict{account: "acct", stored: 3, expected: v - 1}, c)
	}
	f.checkOpen(`stale and early versions of account "acct" refused`)
	f.apply(`account "acct" at version 4`, changes[3])
	f.check(`account "acct" at version 4 after refusals`)
}

func testSequenceInOneUnit(t *testing.T, open Opener) {
	f := newFixture(t, open)
	changes := life("acct", at, time.Time{})
	f.apply(`account "acct" at versions 1, 2 and 3 in one unit`, changes[:3]...)
	f.apply(`account "acct" at versions 4 to the last in one unit`, changes[3:]...)
	// Two changes of one account in one unit at the same version: the
	// second conflicts with the first.
	twice := placed("twice", at)
	f.refuse(`new account "twice" at version 1, twice in one unit`, conflict{account: "twice", inUnit: true}, twice, twice)
	// A gap inside the unit.
	gap := life("gap", at, time.Time{})
	f.refuse(`new account "gap" at versions 1, 2 and 4 in one unit`, conflict{account: "gap", inUnit: true}, gap[0], gap[1], gap[3])
	f.check("changes of one account in sequence in one unit")
}

func testManyAccounts(t *testing.T, open Opener) {
	f := newFixture(t, open)
	const n = 500
	var unit []residency.Change
	for i := range n {
		c := placed(fmt.Sprintf("acct-%04d", i), at.Add(time.Duration(i)))
		unit = append(unit, c)
		if i%10 == 0 {
			g := next(c, residency.TransferGranted, at, func(p *residency.Placement, e *residency.Event) {
				e.From, e.To, e.Reference = "EU", "US", "T"
			})
			g.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: c.Placement.AccountID, To: region.US, Reference: "T"}, Granted: at}
			unit = append(unit, g)
		}
	}
	unit = append(unit, dataCenter("linode-eu", provider.Draining, at, 1))
	f.apply(fmt.Sprintf("%d new accounts, %d agreements and a data center state in one unit", n, n/10), unit...)
	f.check(fmt.Sprintf("%d accounts written in one unit", n))
}

func testRefusedUnit(t *testing.T, open Opener) {
	for _, where := range []string{"first", "middle", "last"} {
		t.Run("stale change "+where, func(t *testing.T) {
			f := newFixture(t, open)
			// The state before: accounts at version 1, a data center state.
			var before []residency.Change
			for i := range 6 {
				before = append(before, placed(fmt.Sprintf("old-%d", i), at))
			}
			before = append(before, dataCenter("linode-eu", provider.Draining, at, 1))
			f.apply("the state before", before...)
			// The unit: new accounts, next versions of the old ones with
			// agreements and whole histories, data center states, and one
			// stale change.
			var unit []residency.Change
			for i := range 100 {
				unit = append(unit, placed(fmt.Sprintf("new-%03d", i), at))
			}
			for i := range 5 {
				c := next(before[i], residency.TransferGranted, at, func(p *residency.Placement, e *residency.Event) {
					e.From, e.To, e.Reference = "EU", "US", "T"
				})
				c.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: c.Placement.AccountID, To: region.US, Reference: "T"}, Granted: at}
				unit = append(unit, c, next(c, residency.MoveBegun, at, func(p *residency.Placement, e *residency.Event) {
					p.Move = residency.Move{ID: "m", AccountID: p.AccountID, From: p.DataCenter, To: "linode-us", ToRegion: region.US, Transfer: "T", Began: at}
				}))
			}
			unit = append(unit, life("whole life", at, time.Time{})...)
			unit = append(unit, dataCenter("linode-eu", provider.Active, at, 2), dataCenter("aws-eu-west-1", provider.Offline, at, 1))
			stale := placed("old-5", at) // stored at version 1, and not changed by the unit
			switch where {
			case "first":
				unit = append([]residency.Change{stale}, unit...)
			case "middle":
				unit = append(unit[:len(unit)/2:len(unit)/2], append([]residency.Change{stale}, unit[len(unit)/2:]...)...)
			case "last":
				unit = append(unit, stale)
			}
			f.refuse(fmt.Sprintf("%d changes, the %s of them stale", len(unit), where), conflict{account: "old-5", stored: 1, expected: 0}, unit...)
			f.check("a refused unit") // nothing of it: the model is the state before
		})
	}
}

// testInvalidChange: a unit holding one change that no Router makes is
// refused whole with an error matching residency.ErrInvalidChange, and
// leaves the store as it was (residency.Change.Check).
func testInvalidChange(t *testing.T, open Opener) {
	for name, spoil := range map[string]func(c *residency.Change){
		"no event":                 func(c *residency.Change) { c.Event = residency.Event{} },
		"empty account ID":         func(c *residency.Change) { c.Placement.AccountID, c.Event.AccountID = "", "" },
		"account ID with a NUL":    func(c *residency.Change) { c.Placement.AccountID, c.Event.AccountID = "a\x00b", "a\x00b" },
		"region out of range":      func(c *residency.Change) { c.Placement.Region = region.Region(200) },
		"event of another account": func(c *residency.Change) { c.Event.AccountID = "other" },
		"empty agreement":          func(c *residency.Change) { c.Agreement = &residency.Agreement{} },
		"agreement of another account": func(c *residency.Change) {
			c.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: "other", To: region.US, Reference: "T"}}
		},
		"consent without sub-processor": func(c *residency.Change) {
			c.Consent = &residency.ConsentRecord{Consent: residency.Consent{AccountID: c.Placement.AccountID, Reference: "C"}}
		},
		"objection without reference": func(c *residency.Change) {
			c.Objection = &residency.ObjectionRecord{Objection: residency.Objection{AccountID: c.Placement.AccountID, SubProcessor: "twilio"}}
		},
		"data center without ID": func(c *residency.Change) { *c = dataCenter("", provider.Draining, at, 1) },
		"move to a region out of range": func(c *residency.Change) {
			c.Placement.Move = residency.Move{ID: "m", AccountID: c.Placement.AccountID, From: "linode-eu", To: "linode-us", ToRegion: region.Region(200), Began: at}
		},
		"objection without sub-processor": func(c *residency.Change) {
			c.Objection = &residency.ObjectionRecord{Objection: residency.Objection{AccountID: c.Placement.AccountID, Reference: "O"}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open)
			f.apply("the state before", placed("old", at))
			bad := placed("new", at)
			spoil(&bad)
			// The first change is stale too ("old" is stored at version
			// 1): the invalid one is refused as such all the same.
			err := f.store.Apply(context.Background(), []residency.Change{placed("old", at), bad})
			if !errors.Is(err, residency.ErrInvalidChange) {
				t.Errorf("Apply of a unit with a change with %s = %v, want an error matching residency.ErrInvalidChange", name, err)
			}
			f.check("a unit refused for an invalid change")
		})
	}
}

func testReopen(t *testing.T, open Opener) {
	f := newFixture(t, open)
	f.apply("every kind of record", richState()...)
	f.check("every kind of record")
	// Versions go on from the stored ones after reopening.
	var unit []residency.Change
	for _, a := range f.want.accounts() {
		unit = append(unit, next(residency.Change{Placement: a.Placement}, residency.MoveAborted, at.Add(time.Hour), func(p *residency.Placement, e *residency.Event) {
			p.Move = residency.Move{}
		}))
	}
	f.apply("the next version of every account, after reopening", unit...)
	f.check("changes written after reopening")
	f.cycle()
	f.cycle()
	f.checkOpen("reopened twice more")
}

func testClosed(t *testing.T, open Opener) {
	f := newFixture(t, open)
	f.apply("every kind of record", richState()...)
	f.close()
	ctx := context.Background()
	unit := []residency.Change{placed("after close", at), dataCenter("linode-uk", provider.Draining, at, 1)}
	if err := f.store.Apply(ctx, unit); err == nil {
		t.Errorf("Apply(new account %q) after Close succeeded, want an error", "after close")
	}
	fn := func(a residency.StoredAccount) error { return nil }
	if err := f.store.Load(ctx, fn); err == nil {
		t.Error("Load after Close succeeded, want an error")
	}
	if err := f.store.LoadAccounts(ctx, []string{"life", "imported"}, fn); err == nil {
		t.Error("LoadAccounts after Close succeeded, want an error")
	}
	if _, err := f.store.DataCenters(ctx); err == nil {
		t.Error("DataCenters after Close succeeded, want an error")
	}
	if ts, ok := f.store.(residency.TrailStore); ok {
		if _, err := ts.Trail(ctx, "life"); err == nil {
			t.Error("Trail after Close succeeded, want an error")
		}
	}
	if ls, ok := f.store.(residency.LogStore); ok {
		if _, err := ls.LogSize(ctx); err == nil {
			t.Error("LogSize after Close succeeded, want an error")
		}
		if err := ls.LogEntries(ctx, 0, func(int64, []byte) error { return nil }); err == nil {
			t.Error("LogEntries after Close succeeded, want an error")
		}
		if _, err := ls.ReadHashes(ctx, []int64{0}); err == nil {
			t.Error("ReadHashes after Close succeeded, want an error")
		}
	}
	s, err := f.reopen()
	if err != nil {
		t.Fatalf("reopening the store after Close: %v", err)
	}
	f.store, f.open = s, true
	f.check("Apply after Close") // nothing of it
}

func testCancelled(t *testing.T, open Opener) {
	f := newFixture(t, open)
	f.apply(`account "old"`, placed("old", at))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	unit := []residency.Change{placed("new", at), next(placed("old", at), residency.MoveBegun, at, nil), dataCenter("linode-eu", provider.Draining, at, 1)}
	err := f.store.Apply(ctx, unit)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply(new account %q, account %q at version 2) with a cancelled context = %v, want an error matching context.Canceled", "new", "old", err)
	}
	f.check("Apply with a cancelled context") // nothing of it
}

func testApplyAliasing(t *testing.T, open Opener) {
	f := newFixture(t, open)
	unit := richState()
	f.apply("every kind of record", unit...)
	// Overwrite what the store was given: the changes, and the agreements
	// and data center states they point to.
	for i := range unit {
		c := &unit[i]
		if c.Agreement != nil {
			*c.Agreement = residency.Agreement{Transfer: residency.Transfer{Reference: "overwritten"}}
		}
		if c.DataCenter != nil {
			*c.DataCenter = residency.DataCenterState{ID: c.DataCenter.ID, Status: "overwritten"}
		}
		*c = residency.Change{Placement: residency.Placement{AccountID: c.Placement.AccountID, Rule: "overwritten"}}
	}
	f.checkOpen("the caller overwrote what it gave Apply")
}

func testReadAliasing(t *testing.T, open Opener) {
	f := newFixture(t, open)
	f.apply("every kind of record", richState()...)
	ctx := context.Background()
	scribble := func(a residency.StoredAccount) error {
		for i := range a.History {
			a.History[i] = residency.Event{Kind: "overwritten"}
		}
		for i := range a.Agreements {
			a.Agreements[i] = residency.Agreement{Transfer: residency.Transfer{Reference: "overwritten"}}
		}
		return nil
	}
	if err := f.store.Load(ctx, scribble); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := f.store.LoadAccounts(ctx, []string{"life", "imported"}, scribble); err != nil {
		t.Fatalf("LoadAccounts: %v", err)
	}
	states, err := f.store.DataCenters(ctx)
	if err != nil {
		t.Fatalf("DataCenters: %v", err)
	}
	for i := range states {
		states[i].Status = "overwritten"
	}
	f.checkOpen("the caller overwrote what Load, LoadAccounts and DataCenters gave it")
}
