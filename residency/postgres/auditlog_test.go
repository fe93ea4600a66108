package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/auditlog"
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

// TestLogUpgrade opens a schema of format 2 whose changes were trimmed:
// its log starts after the trim mark, and grows from there.
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
	// Back to format 2, trimmed to position 2, as its Trim left it.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`DROP TABLE domicile.loghashes`,
		`ALTER TABLE domicile.head DROP COLUMN statuses`,
		`ALTER TABLE domicile.datacenters DROP COLUMN prev`,
		`DELETE FROM domicile.meta WHERE key = 'logstart'`,
		`DELETE FROM domicile.changes WHERE pos <= 2`,
		`UPDATE domicile.head SET trimmed = 2`,
		`UPDATE domicile.meta SET value = '2' WHERE key = 'format'`,
		`UPDATE domicile.meta SET value = (SELECT coalesce(string_agg(c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
			|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, E'\n' ORDER BY c.relname, a.attnum), '')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
			WHERE n.nspname = 'domicile' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped) WHERE key = 'layout'`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s = openStore(t, dsn)
	wantLog(t, s, all[2:])
	c := placed("u4", "linode-eu", at)
	if err := s.Apply(ctx, []residency.Change{c}); err != nil {
		t.Fatal(err)
	}
	wantLog(t, s, append(all[2:], c))
	var format string
	if err := conn.QueryRow(ctx, `SELECT value FROM domicile.meta WHERE key = 'format'`).Scan(&format); err != nil || format != "4" {
		t.Errorf("format after the upgrade = %q, %v; want 4", format, err)
	}
	// It opens again without another upgrade.
	wantLog(t, openStore(t, dsn), append(all[2:], c))
}
