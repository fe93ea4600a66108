package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// entriesOf reads the whole log of ls.
func entriesOf(t testing.TB, ls residency.LogStore) [][]byte {
	t.Helper()
	var out [][]byte
	err := ls.LogEntries(context.Background(), 0, func(i int64, e []byte) error {
		if i != int64(len(out)) {
			t.Fatalf("entry %d after %d entries", i, len(out))
		}
		out = append(out, slices.Clone(e))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantLog checks that the log of s holds exactly the entries of changes,
// and that its stored hashes and head are those of the entries.
func wantLog(t testing.TB, s residency.LogStore, changes []residency.Change) {
	t.Helper()
	ctx := context.Background()
	var want [][]byte
	var m auditlog.MemoryHashes
	for _, c := range changes {
		e, err := residency.EncodeEntry(c)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	if _, err := m.Append(want...); err != nil && len(want) > 0 {
		t.Fatal(err)
	}
	n, err := s.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(want)) {
		t.Fatalf("LogSize = %d, want %d", n, len(want))
	}
	if diff := cmp.Diff(want, entriesOf(t, s)); diff != "" {
		t.Fatalf("entries (-want +got):\n%s", diff)
	}
	head, err := auditlog.NewCheckpoint("o", n, residency.HashReader(ctx, s))
	if err != nil {
		t.Fatal(err)
	}
	wantHead, err := m.Checkpoint("o")
	if err != nil {
		t.Fatal(err)
	}
	if head != wantHead {
		t.Fatalf("head %v, want %v", head, wantHead)
	}
	empty, _ := (&auditlog.MemoryHashes{}).Checkpoint("o")
	if _, err := auditlog.CheckLog(empty, auditlog.Entries(want), residency.HashReader(ctx, s)); err != nil {
		t.Fatalf("CheckLog against the stored hashes: %v", err)
	}
}

// TestLog appends from two Stores on one database, as two processes do,
// and reads the log from both while they write: every change is an entry,
// in commit order, and the hashes either computes are the same.
func TestLog(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	wantLog(t, a, nil)
	var mu sync.Mutex
	var applied []residency.Change // in commit order: Append's positions
	byPos := map[uint64]residency.Change{}
	var wg sync.WaitGroup
	for w, s := range []*postgres.Store{a, b} {
		wg.Go(func() {
			for i := range 20 {
				c := placed(fmt.Sprintf("w%d-%d", w, i), "linode-eu", at.Add(time.Duration(i)*time.Second))
				pos, err := s.Append(ctx, []residency.Change{c}, 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				byPos[pos] = c
				mu.Unlock()
				if i%5 == 0 {
					if _, err := s.LogSize(ctx); err != nil { // extends the hashes meanwhile
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for p := uint64(1); p <= uint64(len(byPos)); p++ {
		applied = append(applied, byPos[p])
	}
	wantLog(t, a, applied)
	wantLog(t, b, applied)
}

// TestLogUpgradeWithoutAccounts: the snapshot of a trimmed schema without
// accounts still holds the data centers' statuses, and the log starts
// after the changes (an early return on an empty page of accounts once
// skipped both, leaving the snapshot's rows beyond the head).
func TestLogUpgradeWithoutAccounts(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)
	drains := []residency.Change{dcChange("linode-eu", provider.Draining, 1), dcChange("websupport-eu", provider.Draining, 1)}
	for _, c := range drains {
		if err := s.Apply(ctx, []residency.Change{c}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for _, q := range routertest.TrimmedFormat2(2) {
		exec(t, dsn, q)
	}
	s = openStore(t, dsn)
	wantLog(t, s, drains)
	head, err := s.Head(ctx)
	if err != nil || head != 4 {
		t.Errorf("Head after the upgrade = %d, %v; want 4 (two changes, then their snapshot)", head, err)
	}
}

// TestLogUpgrade opens a schema of format 2 whose changes were trimmed:
// its log starts with a snapshot of each account's latest change (here
// each account's only one, of which the trim removed two), and grows
// from there; the changes before the trim mark stay trimmed.
func TestLogUpgrade(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)
	var all []residency.Change
	for i := range 4 {
		c := placed(fmt.Sprint("u", i), "linode-eu", at)
		all = append(all, c)
		if err := s.Apply(ctx, []residency.Change{c}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for _, q := range routertest.TrimmedFormat2(2) {
		exec(t, dsn, q)
	}
	s = openStore(t, dsn)
	wantLog(t, s, all)
	c := placed("u4", "linode-eu", at)
	if err := s.Apply(ctx, []residency.Change{c}); err != nil {
		t.Fatal(err)
	}
	wantLog(t, s, append(all, c))
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var format string
	if err := conn.QueryRow(ctx, `SELECT value FROM domicile.meta WHERE key = 'format'`).Scan(&format); err != nil || format != "4" {
		t.Errorf("format after the upgrade = %q, %v; want 4", format, err)
	}
	// It opens again without another upgrade.
	wantLog(t, openStore(t, dsn), append(all, c))
}
