package postgres

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// createFormat1 makes schema domicile of dsn as format 1 made it: its
// tables (schemaDDL1) and meta, and one account placed with its event, as
// format 1's Apply wrote them.
func createFormat1(t *testing.T, dsn string) {
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
	if _, err := tx.Exec(ctx, fmt.Sprintf(schemaDDL1, `"domicile"`)); err != nil {
		t.Fatal(err)
	}
	layout, err := (&Store{schema: "domicile"}).layout(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO domicile.meta (key, value) VALUES ('format', '1'), ('layout', $1)`, layout); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`INSERT INTO domicile.accounts (id, version, country, region, datacenter, provider, backup, rule, transfer, created_ns, updated_ns)
			VALUES ('old', 1, 'DE', 'EU', 'linode-eu', 'linode', '', 'EU member state', '', 0, 0)`,
		`INSERT INTO domicile.events (account, version, time_ns, kind, source, target, rule, reference, move_id)
			VALUES ('old', 1, 0, 'placed', '', 'linode-eu', 'EU member state', '', '')`,
	} {
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
