package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// createFormat1 makes schema domicile of dsn as format 1 made it: its
// tables (schemaDDL1) and meta, and one account placed with its event, as
// format 1's Apply wrote them.
func createFormat1(t *testing.T, dsn string) {
	createFormat(t, dsn, schemaDDL1, `('format', '1'), ('layout', $1)`,
		`INSERT INTO domicile.accounts (id, version, country, region, datacenter, provider, backup, rule, transfer, created_ns, updated_ns)
			VALUES ('old', 1, 'DE', 'EU', 'linode-eu', 'linode', '', 'EU member state', '', 0, 0)`,
		`INSERT INTO domicile.events (account, version, time_ns, kind, source, target, rule, reference, move_id)
			VALUES ('old', 1, 0, 'placed', '', 'linode-eu', 'EU member state', '', '')`,
	)
}

// createFormat makes schema domicile of dsn, in one transaction, with ddl
// (a format's tables, schema %[1]s), its meta rows (the VALUES of an
// INSERT into meta, $1 the tables' layout) and rows.
func createFormat(t *testing.T, dsn, ddl, meta string, rows ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, fmt.Sprintf(ddl, `"domicile"`)); err != nil {
		t.Fatal(err)
	}
	layout, err := (&Store{schema: "domicile"}).layout(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO domicile.meta (key, value) VALUES `+meta, layout); err != nil {
		t.Fatal(err)
	}
	for _, sql := range rows {
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// meta reads schema domicile's format and layout.
func meta(t *testing.T, dsn string) (format, layout string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT (SELECT value FROM domicile.meta WHERE key = 'format'), (SELECT value FROM domicile.meta WHERE key = 'layout')`).Scan(&format, &layout); err != nil {
		t.Fatal(err)
	}
	return format, layout
}

// TestUpgradeFormat1 opens a schema of format 1, from several stores at
// once: the schema becomes the current format, with the layout of a schema created
// afresh, its account is kept, and consents and objections are then kept
// across reopening.
func TestUpgradeFormat1(t *testing.T) {
	ctx := context.Background()
	fresh := pgtest.Database(t)
	s, err := Open(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, freshLayout := meta(t, fresh)

	dsn := pgtest.Database(t)
	createFormat1(t, dsn)
	if f, l := meta(t, dsn); f != "1" || l == freshLayout {
		t.Fatalf("format 1 as created: format %q, layout the same as format 2's: %v", f, l == freshLayout)
	}
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d of a format 1 schema: %v", i, err)
		}
		stores[i].Close()
	}
	f, l := meta(t, dsn)
	if f != strconv.Itoa(format) {
		t.Errorf("format after the upgrade %q, want %d", f, format)
	}
	if diff := cmp.Diff(freshLayout, l); diff != "" {
		t.Errorf("layout after the upgrade mismatch (-fresh +upgraded):\n%s", diff)
	}

	open := func() *residency.Router {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		r, err := residency.Open(ctx, residency.WithStore(s))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	if p, err := r.Lookup("old"); err != nil || p.DataCenter != "linode-eu" || p.Version != 1 {
		t.Fatalf("Lookup of format 1's account after the upgrade = %+v, %v", p, err)
	}
	if err := r.GrantAccess(ctx, residency.Consent{AccountID: "old", SubProcessor: "support-247", Reference: "C-1"}); err != nil {
		t.Fatalf("GrantAccess after the upgrade: %v", err)
	}
	if err := r.Object(ctx, residency.Objection{AccountID: "old", SubProcessor: "twilio", Reference: "O-1"}); err != nil {
		t.Fatalf("Object after the upgrade: %v", err)
	}
	consents, err := r.Consents("old")
	if err != nil {
		t.Fatal(err)
	}
	objections, err := r.Objections("old")
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	r = open()
	defer r.Close()
	gotConsents, err := r.Consents("old")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(consents, gotConsents); diff != "" || len(consents) != 1 {
		t.Errorf("consents after reopening mismatch (-want +got):\n%s", diff)
	}
	gotObjections, err := r.Objections("old")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(objections, gotObjections); diff != "" || len(objections) != 1 {
		t.Errorf("objections after reopening mismatch (-want +got):\n%s", diff)
	}
	if err := r.MayAccess("old", "support-247"); err != nil {
		t.Errorf("MayAccess under the consent after reopening = %v", err)
	}
}

// createFormat3 makes schema domicile of dsn as format 3 made it: its
// tables (format 3's schemaDDL was schemaDDL1, upgrade2DDL and logDDL) and
// meta, with no account.
func createFormat3(t *testing.T, dsn string) {
	createFormat(t, dsn, schemaDDL1+upgrade2DDL+logDDL, `('format', '3'), ('layout', $1), ('logstart', '0')`)
}

// TestUpgradeWhileFormat3RoutersRun: Routers of format 3 still running go
// on placing while an Open of format 4 upgrades their tables, as the
// README promises ("instances of the older version still running go on
// placing and moving"), and the upgrade completes.
//
// Format 3's apply statement (testdata/format3-apply.sql) takes its
// tables' locks one after another in the order it names them: events,
// accounts, agreements, consents, objections, datacenters, then head. The
// upgrade to format 4 altered head, then datacenters. A write holding
// datacenters and waiting for head, while the upgrade held head and
// waited for datacenters, was a deadlock, which PostgreSQL ended after
// deadlock_timeout by failing one of the two: in a rolling upgrade trial
// (one Router of format 3 placing while twenty of format 4 opened at once)
// the old Router's Place failed with ErrStoreFailed, "deadlock detected
// (SQLSTATE 40P01)", one run in two. The writer here stops where that one
// stopped: holding the locks its statement takes before head's, it runs
// the statement once the upgrade waits for a lock.
//
// Format 3's Load reads head, then datacenters, in one snapshot: the
// upgrade must not deadlock with it either (so it cannot take datacenters
// exclusively first).
func TestUpgradeWhileFormat3RoutersRun(t *testing.T) {
	apply, err := os.ReadFile("testdata/format3-apply.sql")
	if err != nil {
		t.Fatal(err)
	}
	const (
		events   = `[{"account":"w","version":1,"time":"2026-11-28T09:00:00Z","time_ns":0,"kind":"placed","source":"","target":"linode-eu","rule":"EU member state","reference":"","move_id":""}]`
		accounts = `[{"id":"w","version":1,"country":"DE","region":"EU","datacenter":"linode-eu","provider":"linode","backup":"aws-eu-west-1","rule":"EU member state","transfer":"","created":"2026-11-28T09:00:00Z","created_ns":0,"updated":"2026-11-28T09:00:00Z","updated_ns":0}]`
		changes  = `[{"Placement":{"account_id":"w","country":"DE","region":"EU","datacenter":"linode-eu","provider":"linode","backup":"aws-eu-west-1","version":1,"rule":"EU member state","transfer":"","created":"2026-11-28T09:00:00Z","updated":"2026-11-28T09:00:00Z"},"Event":{"time":"2026-11-28T09:00:00Z","kind":"placed","account_id":"w","from":"","to":"linode-eu","rule":"EU member state","reference":"","move_id":"","version":1}}]`
	)
	for _, tc := range []struct {
		name string
		// before holds the locks format 3 held when it stopped, in tx;
		// after is the rest of its work.
		before, after func(ctx context.Context, tx pgx.Tx) error
		accounts      int
	}{{
		name: "format 3's Apply",
		before: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `LOCK TABLE domicile.events, domicile.accounts, domicile.agreements, domicile.consents, domicile.objections, domicile.datacenters IN ROW EXCLUSIVE MODE`)
			return err
		},
		after: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, string(apply), events, accounts, nil, nil, changes, int64(1), "domicile", nil, nil)
			return err
		},
		accounts: 1,
	}, {
		name: "format 3's Load",
		before: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `SELECT pos FROM domicile.head`)
			return err
		},
		after: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `SELECT id, status, changed, changed_ns FROM domicile.datacenters ORDER BY id`)
			return err
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.Database(t)
			createFormat3(t, dsn)
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if err := tc.before(ctx, tx); err != nil {
				t.Fatal(err)
			}
			opened := make(chan error, 1)
			go func() {
				s, err := Open(ctx, dsn)
				if err == nil {
					s.Close()
				}
				opened <- err
			}()
			waitForLock(t, dsn)
			if err := tc.after(ctx, tx); err != nil {
				t.Errorf("format 3's work while the tables are upgraded: %v", err)
			} else if err := tx.Commit(ctx); err != nil {
				t.Errorf("format 3's commit while the tables are upgraded: %v", err)
			}
			if err := <-opened; err != nil {
				t.Fatalf("Open upgrading format 3 while a Router of format 3 works: %v", err)
			}
			if f, _ := meta(t, dsn); f != strconv.Itoa(format) {
				t.Errorf("format after the upgrade %q, want %d", f, format)
			}
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM domicile.accounts`).Scan(&n); err != nil || n != tc.accounts {
				t.Errorf("accounts after the upgrade: %d, %v; want %d", n, err, tc.accounts)
			}
		})
	}
}

// waitForLock waits until a session of dsn's database waits for a lock.
// It asks on a connection of its own: a session reads pg_stat_activity
// once a transaction.
func waitForLock(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(30 * time.Second); ; {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("gave up waiting for the upgrade to wait for a lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUpgradeFormat1RefusesTrim: since format 3 the changes are the audit
// log, never trimmed (the README: "the changes table is never trimmed any
// more"). A Router of format 1 still running after the upgrade kept its
// Store's Trim, which removed changes from the log: in a rolling upgrade
// trial with a real format 1 binary, audit checkpoint then called the
// store damaged ("the log has position 7 where entry 0 (position 1)
// belongs"). Format 1's Trim statement (testdata/format1-trim.sql) must
// fail after the upgrade, saying why, and change nothing.
func TestUpgradeFormat1RefusesTrim(t *testing.T) {
	ctx := context.Background()
	trim, err := os.ReadFile("testdata/format1-trim.sql")
	if err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.Database(t)
	createFormat1(t, dsn)
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, id := range []string{"a", "b"} {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, string(trim), int64(1)<<62)
	if err == nil || !strings.Contains(err.Error(), "Trim") {
		t.Errorf("format 1's Trim after the upgrade = %v, want an error that names Trim", err)
	}
	type log struct{ Pos, Trimmed, Changes int64 }
	var got log
	if err := conn.QueryRow(ctx, `SELECT pos, trimmed, (SELECT count(*) FROM domicile.changes) FROM domicile.head`).Scan(&got.Pos, &got.Trimmed, &got.Changes); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(log{Pos: 2, Trimmed: 0, Changes: 2}, got); diff != "" {
		t.Errorf("the log after format 1's Trim mismatch (-want +got):\n%s", diff)
	}
}
