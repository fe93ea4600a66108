package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestHashesStoredByTheWriter: the stores that append store the hashes of
// their entries themselves, with nobody reading the log, also when two of
// them interleave; so a changes row rewritten afterwards no longer matches
// its stored hashes.
func TestHashesStoredByTheWriter(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	var changes []residency.Change
	for i := range 30 {
		s, n := a, 1+i%3 // a writes units of 1 to 3 changes, b single ones between
		if i%4 == 3 {
			s, n = b, 1
		}
		var unit []residency.Change
		for j := range n {
			unit = append(unit, placed(fmt.Sprintf("acct-%d-%d", i, j), "linode-eu", at))
		}
		if err := s.Apply(ctx, unit); err != nil {
			t.Fatal(err)
		}
		changes = append(changes, unit...)
	}
	// Close stores what is queued; nothing read the log.
	a.Close()
	b.Close()
	want := tlog.StoredHashCount(int64(len(changes)))
	if got := scalar[int64](t, dsn, "SELECT count(*) FROM domicile.loghashes"); got != want {
		t.Fatalf("table loghashes holds %d hashes after %d entries were appended, want %d", got, len(changes), want)
	}
	s := openStore(t, dsn)
	wantLog(t, s, changes) // the hashes stored are tlog's over the entries

	// An entry rewritten after its commit: its stored hashes tell.
	exec(t, dsn, `UPDATE domicile.changes SET change = replace(change::text, 'linode-eu', 'linode-us')::json WHERE pos = 7`)
	empty, _ := (&auditlog.MemoryHashes{}).Checkpoint("o")
	var entries [][]byte
	if err := s.LogEntries(ctx, 0, func(_ int64, e []byte) error { entries = append(entries, e); return nil }); err != nil {
		t.Fatal(err)
	}
	_, err := auditlog.CheckLog(empty, auditlog.Entries(entries), residency.HashReader(ctx, s))
	var ee *auditlog.EntryError
	if !errors.As(err, &ee) || ee.Index != 6 {
		t.Errorf("CheckLog after changes row 7 was rewritten = %v, want an *auditlog.EntryError for entry 6", err)
	}
}
