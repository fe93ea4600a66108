package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// TestRoundTrip writes accounts with every field set, moves, agreements,
// consents, objections (later records replacing earlier ones, within a
// unit and across units), data center statuses and times at the ends of the range with
// nanoseconds, and reads them back exactly through Load, LoadAccounts,
// Snapshot, DataCenters and Changes.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)

	first := time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)                     // the zero time plus 1 ns
	last := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)      // the latest the Router may meet
	before1970 := time.Date(1969, 7, 20, 20, 17, 40, 987654321, time.UTC) // negative Unix time
	local := time.Date(2026, 3, 1, 12, 0, 0, 5, time.FixedZone("X", 3600))

	a1 := placed("acme", "linode-eu", first)
	a2 := next(a1, residency.TransferGranted, last, func(p *residency.Placement, e *residency.Event) {
		e.From, e.To, e.Reference = "EU", "US", "T-1"
	})
	a2.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-1", ExpiresAt: last}, Granted: before1970}
	a3 := next(a2, residency.MoveBegun, local, func(p *residency.Placement, e *residency.Event) {
		p.Move = residency.Move{ID: "m-1", AccountID: "acme", From: "linode-eu", To: "aws-us-west-1", ToRegion: region.US, Transfer: "T-1", Began: local}
		e.From, e.To, e.MoveID, e.Reference = "linode-eu", "aws-us-west-1", "m-1", "T-1"
	})
	a4 := next(a3, residency.TransferGranted, at, func(p *residency.Placement, e *residency.Event) { e.Reference = "T-0" })
	a4.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: "acme", To: region.UK, Reference: "T-0"}, Granted: at, Revoked: at.Add(time.Nanosecond)}
	b1 := placed("b\u00e9ta", "websupport-eu", at)
	b1.Placement.Country = region.Country{}
	b1.Placement.Backup, b1.Placement.Rule, b1.Event.Rule = "", "customer's choice", "customer's choice"
	b2 := next(b1, residency.MoveBegun, at, nil)
	b2.Placement.Move = residency.Move{ID: "m-2", AccountID: "b\u00e9ta", From: "websupport-eu", To: "linode-eu", ToRegion: region.EU}
	b3 := next(b2, residency.MoveCompleted, at, func(p *residency.Placement, e *residency.Event) {
		p.DataCenter, p.Move = "linode-eu", residency.Move{}
	})
	dc1 := residency.Change{DataCenter: &residency.DataCenterState{ID: "linode-eu", Status: provider.Draining, Changed: before1970, Version: 1}}
	dc2 := residency.Change{DataCenter: &residency.DataCenterState{ID: "linode-eu", Status: provider.Offline, Changed: last, Version: 2}}
	dc3 := residency.Change{DataCenter: &residency.DataCenterState{ID: "aws-eu-west-1", Status: provider.Active, Changed: first, Version: 1}}

	consent := func(c residency.Change, kind residency.EventKind, k residency.ConsentRecord) residency.Change {
		n := next(c, kind, k.Granted, func(p *residency.Placement, e *residency.Event) { e.To, e.Reference = k.SubProcessor, k.Reference })
		n.Consent = &k
		return n
	}
	objection := func(c residency.Change, kind residency.EventKind, o residency.ObjectionRecord) residency.Change {
		n := next(c, kind, o.Raised, func(p *residency.Placement, e *residency.Event) { e.To, e.Reference = o.SubProcessor, o.Reference })
		n.Objection = &o
		return n
	}
	c2 := residency.ConsentRecord{Consent: residency.Consent{AccountID: "acme", SubProcessor: "support-247", Reference: "C-2", ExpiresAt: last}, Granted: before1970}
	a5 := consent(a4, residency.AccessGranted, c2)
	a6 := consent(a5, residency.AccessGranted, residency.ConsentRecord{Consent: residency.Consent{AccountID: "acme", SubProcessor: "support-eu", Reference: "C-1"}, Granted: local})
	c2.Revoked = at
	a7 := consent(a6, residency.AccessRevoked, c2) // replaces a5's C-2 in the same unit
	o1 := residency.ObjectionRecord{Objection: residency.Objection{AccountID: "b\u00e9ta", SubProcessor: "twilio", Reference: "O-1"}, Raised: first}
	b4 := objection(b3, residency.Objected, o1)
	b5 := objection(b4, residency.Objected, residency.ObjectionRecord{Objection: residency.Objection{AccountID: "b\u00e9ta", SubProcessor: "sendgrid", Reference: "O-0"}, Raised: local})
	o1.Withdrawn = last
	b6 := objection(b5, residency.ObjectionWithdrawn, o1) // replaces b4's O-1 in a later unit
	a8 := consent(a7, residency.AccessGranted, residency.ConsentRecord{Consent: residency.Consent{AccountID: "acme", SubProcessor: "support-eu", Reference: "C-1"}, Granted: at, Revoked: at.Add(time.Nanosecond)})

	units := [][]residency.Change{{a1}, {a2, b1, dc1}, {a3, b2, b3}, {dc2, a4, dc3}, {a5, b4, a6, a7, b5}, {b6, a8}}
	var all []residency.Change
	for _, u := range units {
		if err := s.Apply(ctx, u); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		all = append(all, u...)
	}

	trail := func(cs ...residency.Change) (es []residency.Event) {
		for _, c := range cs {
			es = append(es, c.Event)
		}
		return es
	}
	acme := residency.StoredAccount{Placement: a8.Placement, History: trail(a1, a2, a3, a4, a5, a6, a7, a8),
		Agreements: []residency.Agreement{*a4.Agreement, *a2.Agreement}, // by reference: T-0, T-1
		Consents:   []residency.ConsentRecord{*a8.Consent, *a7.Consent}} // C-1, C-2
	beta := residency.StoredAccount{Placement: b6.Placement, History: trail(b1, b2, b3, b4, b5, b6),
		Objections: []residency.ObjectionRecord{*b5.Objection, *b6.Objection}} // O-0, O-1
	want := []residency.StoredAccount{acme, beta}
	if diff := cmp.Diff(want, load(t, s)); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}

	var got []residency.StoredAccount
	if err := s.LoadAccounts(ctx, []string{"b\u00e9ta", "missing", "acme", "b\u00e9ta"}, func(a residency.StoredAccount) error {
		got = append(got, a)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// In the order given, skipping the missing one, béta twice.
	if diff := cmp.Diff([]residency.StoredAccount{beta, acme, beta}, withTrails(t, s, got)); diff != "" {
		t.Errorf("LoadAccounts mismatch (-want +got):\n%s", diff)
	}

	wantDCs := []residency.DataCenterState{*dc3.DataCenter, *dc2.DataCenter}
	dcs, err := s.DataCenters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantDCs, dcs); diff != "" {
		t.Errorf("DataCenters mismatch (-want +got):\n%s", diff)
	}

	got = nil
	snap, err := s.Snapshot(ctx, func(a residency.StoredAccount) error { got = append(got, a); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, withTrails(t, s, got)); diff != "" {
		t.Errorf("Snapshot accounts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDCs, snap.DataCenters); diff != "" {
		t.Errorf("Snapshot data centers mismatch (-want +got):\n%s", diff)
	}
	if snap.Position != uint64(len(all)) {
		t.Errorf("Snapshot position %d, want %d", snap.Position, len(all))
	}
	if head, err := s.Head(ctx); err != nil || head != uint64(len(all)) {
		t.Errorf("Head() = %d, %v; want %d", head, err, len(all))
	}

	pos, cs := changes(t, s, 0)
	if diff := cmp.Diff(all, cs); diff != "" {
		t.Errorf("Changes mismatch (-want +got):\n%s", diff)
	}
	for i, p := range pos {
		if p != uint64(i+1) {
			t.Fatalf("Changes positions %v, want 1..%d", pos, len(all))
		}
	}
	if _, cs := changes(t, s, 7); len(cs) != len(all)-7 || !cmp.Equal(all[7:], cs) {
		t.Errorf("Changes(7) = %d changes, want the last %d", len(cs), len(all)-7)
	}

	// A second store on the database reads the same.
	s2 := openStore(t, dsn)
	if diff := cmp.Diff(want, load(t, s2)); diff != "" {
		t.Errorf("Load from a second store mismatch (-want +got):\n%s", diff)
	}
}

// TestApplyConflict refuses stale and ahead versions: the whole unit,
// with an error matching ErrConflict, writing nothing, not even the log.
func TestApplyConflict(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t))
	a1 := placed("a", "linode-eu", at)
	a2 := next(a1, residency.MoveBegun, at, nil)
	a3 := next(a2, residency.MoveAborted, at, nil)
	a4 := next(a3, residency.MoveBegun, at, nil)
	if err := s.Apply(ctx, []residency.Change{a1, a2}); err != nil {
		t.Fatal(err)
	}
	b1 := placed("b", "linode-eu", at)
	b2 := next(b1, residency.MoveBegun, at, nil)
	b3 := next(b2, residency.MoveAborted, at, nil)
	dc := residency.Change{DataCenter: &residency.DataCenterState{ID: "linode-eu", Status: provider.Draining, Changed: at, Version: 1}}
	ag := a3
	ag.Agreement = &residency.Agreement{Transfer: residency.Transfer{AccountID: "a", To: region.US, Reference: "T"}, Granted: at}

	before := load(t, s)
	for _, tc := range []struct {
		name string
		unit []residency.Change
	}{
		{"stale: version taken", []residency.Change{a2}},
		{"new account that exists", []residency.Change{a1}},
		{"ahead of the store", []residency.Change{a4}},
		{"stale after fresh changes", []residency.Change{b1, dc, ag, a2}},
		{"fresh after a stale change", []residency.Change{a1, b1}},
		{"gap inside the unit", []residency.Change{b1, b3}},
		{"repeat inside the unit", []residency.Change{b1, b2, b2}},
		{"new account at version 2", []residency.Change{b2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Apply(ctx, tc.unit)
			if !errors.Is(err, residency.ErrConflict) {
				t.Fatalf("Apply = %v, want ErrConflict", err)
			}
			if diff := cmp.Diff(before, load(t, s)); diff != "" {
				t.Errorf("store changed (-before +after):\n%s", diff)
			}
			if dcs, err := s.DataCenters(ctx); err != nil || len(dcs) != 0 {
				t.Errorf("DataCenters = %v, %v; want none", dcs, err)
			}
			if head, err := s.Head(ctx); err != nil || head != 2 {
				t.Errorf("Head = %d, %v; want 2", head, err)
			}
			if _, cs := changes(t, s, 2); len(cs) != 0 {
				t.Errorf("log grew by %d changes", len(cs))
			}
		})
	}

	pos, err := s.Append(ctx, []residency.Change{b1, ag, b2, dc, b3, a4}, 0)
	if err != nil || pos != 8 {
		t.Fatalf("Append of a fresh unit = %d, %v; want 8, nil", pos, err)
	}
}

// TestApplyRefusesBadChanges refuses changes no Router makes, as errors
// that are not conflicts, and writes nothing.
func TestApplyRefusesBadChanges(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t))
	ok := placed("a", "linode-eu", at)
	for _, tc := range []struct {
		name string
		edit func(*residency.Change)
	}{
		{"no account", func(c *residency.Change) { c.Placement.AccountID, c.Event.AccountID = "", "" }},
		// A placement at version 0 is a stale write (a ConflictError),
		// which the conformance suite checks.
		{"event of another version", func(c *residency.Change) { c.Event.Version = 2 }},
		{"event of another account", func(c *residency.Change) { c.Event.AccountID = "b" }},
		{"no region", func(c *residency.Change) { c.Placement.Region = 0 }},
		{"consent without reference", func(c *residency.Change) {
			c.Consent = &residency.ConsentRecord{Consent: residency.Consent{AccountID: "a", SubProcessor: "support-247"}, Granted: at}
		}},
		{"consent without sub-processor", func(c *residency.Change) {
			c.Consent = &residency.ConsentRecord{Consent: residency.Consent{AccountID: "a", Reference: "C-1"}, Granted: at}
		}},
		{"objection without account", func(c *residency.Change) {
			c.Objection = &residency.ObjectionRecord{Objection: residency.Objection{SubProcessor: "twilio", Reference: "O-1"}, Raised: at}
		}},
		{"data center without status", func(c *residency.Change) { *c = residency.Change{DataCenter: &residency.DataCenterState{ID: "x"}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := s.Apply(ctx, []residency.Change{c})
			if err == nil || errors.Is(err, residency.ErrConflict) {
				t.Fatalf("Apply = %v, want an error that is not ErrConflict", err)
			}
			if got := load(t, s); len(got) != 0 {
				t.Errorf("store holds %d accounts", len(got))
			}
		})
	}
	if err := s.Apply(ctx, nil); err != nil {
		t.Errorf("Apply(nil) = %v", err)
	}
}

// TestManyAccountsLoad loads more accounts than one page holds, in ID
// order, with the right trails.
func TestManyAccountsLoad(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t))
	const n = 25000
	var unit []residency.Change
	for i := range n {
		c := placed(fmt.Sprintf("acct-%06d", i), "linode-eu", at)
		unit = append(unit, c)
		if i%3 == 0 {
			unit = append(unit, next(c, residency.MoveBegun, at, nil))
		}
		if len(unit) >= 2000 {
			if err := s.Apply(ctx, unit); err != nil {
				t.Fatal(err)
			}
			unit = unit[:0]
		}
	}
	if err := s.Apply(ctx, unit); err != nil {
		t.Fatal(err)
	}
	got := load(t, s)
	if len(got) != n {
		t.Fatalf("Load gave %d accounts, want %d", len(got), n)
	}
	// fn's error stops Load, in the second page, and is Load's.
	stop := errors.New("stop")
	calls := 0
	err := s.Load(ctx, func(residency.StoredAccount) error {
		if calls++; calls == 15000 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 15000 {
		t.Errorf("Load with fn failing at 15000: %v after %d calls", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	err = s.Load(cctx, func(residency.StoredAccount) error {
		if calls++; calls == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Load cancelled: %v after %d calls", err, calls)
	}
	for i, a := range got {
		id := fmt.Sprintf("acct-%06d", i)
		wantV := uint64(1)
		if i%3 == 0 {
			wantV = 2
		}
		if a.Placement.AccountID != id || a.Placement.Version != wantV {
			t.Fatalf("account %d: %s at version %d; want %s at %d", i, a.Placement.AccountID, a.Placement.Version, id, wantV)
		}
		if i%1000 == 0 {
			if h, err := s.Trail(ctx, id); err != nil || len(h) != int(wantV) {
				t.Fatalf("Trail(%s) = %d events, %v; want %d", id, len(h), err, wantV)
			}
		}
	}
}

// TestApplyAfterConnectionsTerminated terminates every connection of the
// database, as a restart does: the next Apply goes through on a new
// connection, and nothing is lost or applied twice.
func TestApplyAfterConnectionsTerminated(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)
	var want []residency.Change
	for i := range 3 {
		// Several pooled connections, used just now (not pinged again).
		var wg sync.WaitGroup
		for j := range 4 {
			c := placed(fmt.Sprintf("r%d-%d", i, j), "linode-eu", at)
			want = append(want, c)
			wg.Go(func() {
				if err := s.Apply(ctx, []residency.Change{c}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		terminate(t, dsn)
	}
	c := placed("after", "linode-eu", at)
	want = append(want, c)
	if err := s.Apply(ctx, []residency.Change{c}); err != nil {
		t.Fatalf("Apply after the connections were terminated: %v", err)
	}
	got := load(t, s)
	if len(got) != len(want) {
		t.Fatalf("Load: %d accounts, want %d", len(got), len(want))
	}
	if _, cs := changes(t, s, 0); len(cs) != len(want) {
		t.Errorf("log: %d changes, want %d", len(cs), len(want))
	}
}

// dcChange is the change that sets a data center's status at version v.
func dcChange(id string, s provider.Status, v uint64) residency.Change {
	return residency.Change{DataCenter: &residency.DataCenterState{ID: id, Status: s, Changed: at, Version: v}}
}

// TestAppendStatuses: a unit decided on fewer data center status changes
// than the log holds is refused whole, as stale; Apply does not check.
func TestAppendStatuses(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t))
	mustAppend := func(what string, statuses uint64, unit ...residency.Change) {
		t.Helper()
		if _, err := s.Append(ctx, unit, statuses); err != nil {
			t.Fatalf("Append(%s, %d) = %v", what, statuses, err)
		}
	}
	refused := func(what string, statuses uint64, want residency.ConflictError, unit ...residency.Change) {
		t.Helper()
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Append(ctx, unit, statuses)
		var ce *residency.ConflictError
		if !errors.Is(err, residency.ErrStaleVersion) || !errors.As(err, &ce) {
			t.Fatalf("Append(%s, %d) = %v, want a stale *residency.ConflictError", what, statuses, err)
		}
		ce.Reason = ""
		if diff := cmp.Diff(&want, ce); diff != "" {
			t.Errorf("Append(%s, %d): ConflictError (-want +got):\n%s", what, statuses, diff)
		}
		if after, err := s.Head(ctx); err != nil || after != head {
			t.Errorf("Append(%s, %d): head %d, %v; want %d, nothing written", what, statuses, after, err, head)
		}
	}
	mustAppend("a placement", 0, placed("a", "linode-eu", at))
	mustAppend("linode-eu draining", 0, dcChange("linode-eu", provider.Draining, 1))
	refused("a placement decided before the drain", 0, residency.ConflictError{Stale: true}, placed("b", "linode-eu", at))
	mustAppend("a placement decided after it", 1, placed("b", "linode-eu", at))
	if err := s.Apply(ctx, []residency.Change{placed("c", "linode-eu", at)}); err != nil {
		t.Fatalf("Apply, which does not check statuses: %v", err)
	}
	refused("linode-eu at version 1 again", 1, residency.ConflictError{DataCenter: "linode-eu", Version: 0, Stored: residency.Placement{Version: 1}, Stale: true},
		dcChange("linode-eu", provider.Active, 1))
	refused("a new data center at version 2", 1, residency.ConflictError{DataCenter: "linode-us", Version: 1, Stale: true},
		placed("d", "linode-eu", at), dcChange("linode-us", provider.Draining, 2))
	mustAppend("linode-eu at versions 2 and 3", 1, dcChange("linode-eu", provider.Active, 2), dcChange("linode-eu", provider.Offline, 3))
	mustAppend("a placement decided on all three", 3, placed("d", "linode-eu", at))
	dcs, err := s.DataCenters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []residency.DataCenterState{*dcChange("linode-eu", provider.Offline, 3).DataCenter}
	if diff := cmp.Diff(want, dcs); diff != "" {
		t.Errorf("DataCenters (-want +got):\n%s", diff)
	}
}

// TestUpgradeFormat3Statuses: format 3 versioned statuses without
// counting them in the head; the upgrade counts those already stored.
func TestUpgradeFormat3Statuses(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)
	if err := s.Apply(ctx, []residency.Change{dcChange("linode-eu", provider.Draining, 1), dcChange("linode-eu", provider.Active, 2),
		dcChange("linode-us", provider.Draining, 1)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, q := range []string{
		`ALTER TABLE domicile.head DROP COLUMN statuses`,
		`ALTER TABLE domicile.datacenters DROP COLUMN prev`,
		`UPDATE domicile.meta SET value = '3' WHERE key = 'format'`,
		`UPDATE domicile.meta SET value = (SELECT coalesce(string_agg(c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
			|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, E'\n' ORDER BY c.relname, a.attnum), '')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
			WHERE n.nspname = 'domicile' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped) WHERE key = 'layout'`,
	} {
		exec(t, dsn, q)
	}
	s = openStore(t, dsn)
	if _, err := s.Append(ctx, []residency.Change{placed("a", "linode-eu", at)}, 2); !errors.Is(err, residency.ErrStaleVersion) {
		t.Errorf("Append decided on 2 of 3 status changes = %v, want ErrStaleVersion", err)
	}
	if _, err := s.Append(ctx, []residency.Change{placed("a", "linode-eu", at)}, 3); err != nil {
		t.Errorf("Append decided on all 3 status changes = %v", err)
	}
}

// format3Apply is format 3's apply statement (testdata/format3-apply.sql),
// as a Router of format 3 still running after the upgrade to format 4
// sends it, and the arguments that give it a unit of one change: the
// account's row and event (JSON, or nil), the data center's status (the
// row format 3 wrote: its count of changes n, without prev), and the
// change as format 3 logged it.
func format3Apply(t *testing.T, conn *pgx.Conn, account, event, status any, change string) error {
	t.Helper()
	sql, err := os.ReadFile("testdata/format3-apply.sql")
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(context.Background(), string(sql), event, account, nil, status, "["+change+"]", int64(1), "domicile", nil, nil)
	return err
}

// TestFormat3WriterRefused: a Router of format 3 still running after the
// upgrade to format 4 cannot write a data center's status (which it would
// not count in the head, so that every Router of format 4 would decide on
// a count the log no longer holds): its statement fails whole, with the
// error the README names (a null value in column "prev" of relation
// "datacenters", SQLSTATE 23502), which that Router's Drain and Activate
// return as ErrStoreFailed.
func TestFormat3WriterRefused(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)
	if err := s.Apply(ctx, []residency.Change{dcChange("linode-eu", provider.Draining, 1)}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, id := range []string{"linode-eu", "linode-us"} {
		err = format3Apply(t, conn, nil, nil,
			`[{"id":"`+id+`","status":"active","changed":"2026-11-28T09:00:00Z","changed_ns":0,"n":1}]`,
			`{"DataCenter":{"id":"`+id+`","status":"active","changed":"2026-11-28T09:00:00Z"}}`)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23502" || pe.TableName != "datacenters" || pe.ColumnName != "prev" {
			t.Fatalf("format 3's status write of %s = %v, want a not-null violation on datacenters.prev", id, err)
		}
	}
	dcs, err := s.DataCenters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]residency.DataCenterState{*dcChange("linode-eu", provider.Draining, 1).DataCenter}, dcs); diff != "" {
		t.Errorf("DataCenters after the refused write (-want +got):\n%s", diff)
	}
	if head, err := s.Head(ctx); err != nil || head != 1 {
		t.Errorf("Head = %d, %v; want 1", head, err)
	}
	// And format 4's own writes go on.
	if _, err := s.Append(ctx, []residency.Change{dcChange("linode-eu", provider.Active, 2)}, 1); err != nil {
		t.Fatal(err)
	}
}

// TestFormat3PlacementAfterDrain: a Router of format 3 still running
// after the upgrade goes on placing, and its writes do not say on which
// statuses they were decided: one it decided before another Router's
// Drain is committed after the drain, into the drained data center. The
// README says so, and that a Router of format 4 finds it after Sync (as
// examples/migrate's evacuation does).
func TestFormat3PlacementAfterDrain(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	r := routertest.OnPostgres(t, dsn, nil)
	if err := r.Drain(ctx, "linode-eu"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := format3Apply(t, conn,
		`[{"id":"old","version":1,"country":"DE","region":"EU","datacenter":"linode-eu","provider":"linode","backup":"aws-eu-west-1","rule":"EU member state","transfer":"","created":"2026-11-28T09:00:00Z","created_ns":0,"updated":"2026-11-28T09:00:00Z","updated_ns":0}]`,
		`[{"account":"old","version":1,"time":"2026-11-28T09:00:00Z","time_ns":0,"kind":"placed","source":"","target":"linode-eu","rule":"EU member state","reference":"","move_id":""}]`,
		nil,
		`{"Placement":{"account_id":"old","country":"DE","region":"EU","datacenter":"linode-eu","provider":"linode","backup":"aws-eu-west-1","version":1,"rule":"EU member state","transfer":"","created":"2026-11-28T09:00:00Z","updated":"2026-11-28T09:00:00Z"},"Event":{"time":"2026-11-28T09:00:00Z","kind":"placed","account_id":"old","from":"","to":"linode-eu","rule":"EU member state","reference":"","move_id":"","version":1}}`,
	); err != nil {
		t.Fatalf("format 3's placement into a drained data center: %v", err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := r.Lookup("old"); err != nil || p.DataCenter != "linode-eu" {
		t.Fatalf("Lookup(old) after Sync = %+v, %v; want it on linode-eu", p, err)
	}
	plan, err := r.PlanEvacuation(ctx, "linode-eu")
	if err != nil {
		t.Fatal(err)
	}
	var planned []string
	for _, m := range plan.Moves {
		planned = append(planned, m.AccountID)
	}
	if diff := cmp.Diff([]string{"old"}, planned); diff != "" {
		t.Errorf("PlanEvacuation after Sync: accounts mismatch (-want +got):\n%s", diff)
	}
}

// TestReadsAfterConnectionsTerminated: a database restart (here: every
// connection of the database terminated, as TestApplyAfterConnectionsTerminated
// does) leaves the pool's idle connections dead. Apply notices, resets the
// pool and runs its statement again on a new connection, so writes go on;
// the design promises that "after a lost connection or a database restart,
// each Router reconnects by itself". The reads a Router on this Store makes
// from the database (Router.History through Trail, Router.Checkpoint through
// LogSize and ReadHashes, Router.LogEntries) failed, once per dead pooled
// connection, with "FATAL: terminating connection due to administrator
// command (SQLSTATE 57P01)", an error that matched no sentinel, although
// the server was up and answered.
//
// Now the reads, too, run their statement again on a new connection when
// it never ran. Found by a randomized test of two Routers while every
// connection was terminated again and again: about one read in eight
// failed.
func TestReadsAfterConnectionsTerminated(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	r := routertest.OnPostgres(t, dsn, nil)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	// Fill the pool with idle connections.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := r.History(ctx, "acme"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	terminate(t, dsn)

	for i := range 8 {
		if _, err := r.History(ctx, "acme"); err != nil {
			t.Errorf("History #%d after the connections were terminated: %v", i+1, err)
		}
		if _, err := r.Checkpoint(ctx); err != nil {
			t.Errorf("Checkpoint #%d after the connections were terminated: %v", i+1, err)
		}
	}
	// Writes go on, as TestApplyAfterConnectionsTerminated shows.
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "initech", Country: "US"}); err != nil {
		t.Errorf("Place after the connections were terminated: %v", err)
	}
}

// terminate terminates every connection to dsn's database and waits until
// the server has ended them.
func terminate(t testing.TB, dsn string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pgtest.AdminDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var pids []int32
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	if pids, err = pgx.CollectRows(rows, pgx.RowTo[int32]); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) AS pid", pids); err != nil {
		t.Fatal(err)
	}
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)", pids).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// retryable is an error of fn's own that pgx would call safe to retry: what
// a callback that writes each change to another database through pgx
// returns when its own connection was closed.
type retryable struct{}

func (retryable) Error() string     { return "consumer: connection closed" }
func (retryable) SafeToRetry() bool { return true }

// TestChangesFnErrorNotRetried: readSome runs a page again only when it
// handed its caller no row. Changes counts a row only once fn accepted it,
// so a row fn refused counts as not handed.
// fn is called once, with position 1, and Changes returns fn's error as it
// is; since fn's error looked like one of a connection that never ran its
// statement, the store dropped its pool, handed the same change to fn a
// second time, and the error matched residency.ErrUnavailable. Found by a
// review.
func TestChangesFnErrorNotRetried(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t))
	if err := s.Apply(ctx, []residency.Change{placed("acme", "linode-eu", at), placed("initech", "linode-eu", at)}); err != nil {
		t.Fatal(err)
	}
	var calls []uint64
	_, err := s.Changes(ctx, 0, func(pos uint64, _ residency.Change) error {
		calls = append(calls, pos)
		return retryable{}
	})
	if diff := cmp.Diff([]uint64{1}, calls); diff != "" {
		t.Errorf("positions fn was called with (-want +got):\n%s", diff)
	}
	if !errors.Is(err, retryable{}) || errors.Is(err, residency.ErrUnavailable) {
		t.Errorf("Changes = %v; want fn's own error, not matching ErrUnavailable", err)
	}
}

// TestLogEntriesFnErrorKept: LogEntries hands fn's own error back as it
// is, even one that looks like a connection's that never ran its
// statement (it was wrapped in residency.ErrUnavailable). Found by a
// review.
func TestLogEntriesFnErrorKept(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t))
	if err := s.Apply(ctx, []residency.Change{placed("acme", "linode-eu", at)}); err != nil {
		t.Fatal(err)
	}
	err := s.LogEntries(ctx, 0, func(int64, []byte) error { return retryable{} })
	if err != (retryable{}) {
		t.Errorf("LogEntries = %v; want fn's own error, as it is", err)
	}
}
