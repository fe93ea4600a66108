package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openStore opens a Store on dsn and closes it after the test.
func openStore(t testing.TB, dsn string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// exec runs SQL on dsn as the test's own connection.
func exec(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// at is a time with nanoseconds, as the Router's clock gives them.
var at = time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC)

// placed is the change that places a new account.
func placed(id string, dc string, t time.Time) residency.Change {
	p := residency.Placement{AccountID: id, Country: region.MustParseCountry("DE"), Region: region.EU,
		DataCenter: dc, Provider: provider.Linode, Backup: "aws-eu-west-1", Version: 1, Rule: "EU member state",
		Created: t, Updated: t}
	return residency.Change{Placement: p, Event: residency.Event{Time: t, Kind: residency.Placed, AccountID: id, To: dc, Rule: p.Rule, Version: 1}}
}

// next is the change that follows c on the same account: p changed by
// edit, one version later, with an event of kind.
func next(c residency.Change, kind residency.EventKind, t time.Time, edit func(*residency.Placement, *residency.Event)) residency.Change {
	p := c.Placement
	p.Version++
	p.Updated = t
	e := residency.Event{Time: t, Kind: kind, AccountID: p.AccountID, Version: p.Version}
	if edit != nil {
		edit(&p, &e)
	}
	return residency.Change{Placement: p, Event: e}
}

// load returns everything the store holds.
func load(t testing.TB, s *postgres.Store) []residency.StoredAccount {
	t.Helper()
	var out []residency.StoredAccount
	if err := s.Load(context.Background(), func(a residency.StoredAccount) error {
		out = append(out, a)
		return nil
	}); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return withTrails(t, s, out)
}

// withTrails fills in the History of accounts read by Load, LoadAccounts
// or Snapshot, which leave it empty, with Trail.
func withTrails(t testing.TB, s *postgres.Store, accounts []residency.StoredAccount) []residency.StoredAccount {
	t.Helper()
	for i := range accounts {
		a := &accounts[i]
		if len(a.History) > 0 {
			t.Errorf("account %q read with %d events of History, want none (Trail reads them)", a.Placement.AccountID, len(a.History))
		}
		h, err := s.Trail(context.Background(), a.Placement.AccountID)
		if err != nil {
			t.Fatalf("Trail(%q): %v", a.Placement.AccountID, err)
		}
		a.History = h
	}
	return accounts
}

// changes returns the log after a position.
func changes(t testing.TB, s *postgres.Store, after uint64) ([]uint64, []residency.Change) {
	t.Helper()
	var pos []uint64
	var cs []residency.Change
	last, err := s.Changes(context.Background(), after, func(p uint64, c residency.Change) error {
		pos = append(pos, p)
		cs = append(cs, c)
		return nil
	})
	if err != nil {
		t.Fatalf("Changes(%d): %v", after, err)
	}
	if want := after + uint64(len(pos)); last != want {
		t.Errorf("Changes(%d) returned last %d, want %d", after, last, want)
	}
	return pos, cs
}
