package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/residency"
)

// The audit log of a [residency.LogStore]. Every subtest checks it with the
// state (checkOpen calls checkLog), so that each kind of unit the suite
// writes, accepts or refuses is checked against the log too; the Log
// subtests below add what only the log has.

// checkLog compares the audit log of the store, when it is a
// [residency.LogStore], with the changes the model accepted: LogSize; the
// entries read from index 0, from the middle and from the end; every stored
// hash and the tree hash against tlog's over the entries; and a stored hash
// beyond the log, which must fail.
func (f *fixture) checkLog(when string) {
	f.t.Helper()
	ls, ok := f.store.(residency.LogStore)
	if !ok {
		return
	}
	if err := f.want.encodeErr; err != nil {
		f.t.Fatal(err)
	}
	ctx := context.Background()
	want := f.want.log
	n, err := ls.LogSize(ctx)
	switch {
	case err != nil:
		f.t.Errorf("%s: LogSize: %v", when, err)
	case n != int64(len(want)):
		f.t.Errorf("%s: LogSize = %d, want %d, one entry per change committed", when, n, len(want))
	}
	f.compareLog(when, ls, 0, want)
	if len(want) > 1 {
		f.compareLog(when, ls, int64(len(want)/2), want)
	}
	f.compareLog(when, ls, int64(len(want)), want)
	f.checkHashes(when, ls, want)
}

// readLog reads the log from index from, keeping every entry fn is given.
func readLog(ctx context.Context, ls residency.LogStore, from int64) (indexes []int64, entries [][]byte, err error) {
	err = ls.LogEntries(ctx, from, func(i int64, e []byte) error {
		indexes = append(indexes, i)
		entries = append(entries, e)
		return nil
	})
	return indexes, entries, err
}

// compareLog compares the entries LogEntries gives from index from with
// want[from:]: their indexes, their number, and each entry bytewise.
func (f *fixture) compareLog(when string, ls residency.LogStore, from int64, want [][]byte) {
	f.t.Helper()
	what := fmt.Sprintf("%s: LogEntries(%d)", when, from)
	indexes, got, err := readLog(context.Background(), ls, from)
	if err != nil {
		f.t.Errorf("%s: %v", what, err)
		return
	}
	want = want[from:]
	for k, i := range indexes {
		if i != from+int64(k) {
			f.t.Errorf("%s gave index %d to its entry number %d, want %d: indexes count from 0 in commit order", what, i, k+1, from+int64(k))
			return
		}
	}
	if len(got) != len(want) {
		f.t.Errorf("%s gave %d entries, want %d, one per change committed from entry %d on", what, len(got), len(want), from)
	}
	bad := 0
	for k := range min(len(got), len(want)) {
		if bytes.Equal(got[k], want[k]) {
			continue
		}
		if bad++; bad <= maxReported {
			f.t.Errorf("%s: entry %d %s", what, from+int64(k), entryDiff(want[k], got[k]))
		}
	}
	if bad > maxReported {
		f.t.Errorf("%s: %d more entries mismatch", what, bad-maxReported)
	}
}

// entryDiff says how the entry got differs from want, the EncodeEntry of
// the change committed.
func entryDiff(want, got []byte) string {
	wc, err := residency.DecodeEntry(want)
	if err != nil {
		return fmt.Sprintf("cannot be checked: the fixture's entry does not decode: %v", err)
	}
	gc, err := residency.DecodeEntry(got)
	if err != nil {
		return fmt.Sprintf("does not decode (%v); want EncodeEntry of the change committed:\n got %q\nwant %s", err, got, want)
	}
	if diff := cmp.Diff(wc, gc); diff != "" {
		return "is not the change committed (-want +got):\n" + diff
	}
	return fmt.Sprintf("decodes to the change committed but is not its EncodeEntry, byte for byte:\n got %s\nwant %s", got, want)
}

// checkHashes compares every stored hash of the log's tree, asked for
// newest first (so that the answer's order is checked too), and the tree
// hash, with tlog's over the entries committed.
func (f *fixture) checkHashes(when string, ls residency.LogStore, entries [][]byte) {
	f.t.Helper()
	ctx := context.Background()
	var mem auditlog.MemoryHashes
	if _, err := mem.Append(entries...); err != nil {
		f.t.Fatalf("storetest: hashing the fixture's log: %v", err)
	}
	n := int64(len(entries))
	count := tlog.StoredHashCount(n)
	if count > 0 {
		indexes := make([]int64, count)
		for i := range indexes {
			indexes[i] = count - 1 - int64(i)
		}
		want, err := mem.ReadHashes(indexes)
		if err != nil {
			f.t.Fatalf("storetest: the fixture's hashes: %v", err)
		}
		got, err := ls.ReadHashes(ctx, indexes)
		switch {
		case err != nil:
			f.t.Errorf("%s: ReadHashes(the %d stored hashes of %d entries): %v", when, count, n, err)
		case len(got) != len(want):
			f.t.Errorf("%s: ReadHashes(the %d stored hashes of %d entries) gave %d hashes", when, count, n, len(got))
		default:
			bad := 0
			for k := range want {
				if got[k] == want[k] {
					continue
				}
				if bad++; bad <= maxReported {
					level, node := tlog.SplitStoredHashIndex(indexes[k])
					f.t.Errorf("%s: ReadHashes: stored hash %d (level %d, node %d) is %v, want %v, tlog's over the entries committed",
						when, indexes[k], level, node, got[k], want[k])
				}
			}
			if bad > maxReported {
				f.t.Errorf("%s: ReadHashes: %d more stored hashes mismatch", when, bad-maxReported)
			}
		}
	}
	wantRoot, err := tlog.TreeHash(n, &mem)
	if err != nil {
		f.t.Fatalf("storetest: the fixture's tree hash: %v", err)
	}
	gotRoot, err := tlog.TreeHash(n, residency.HashReader(ctx, ls))
	switch {
	case err != nil:
		f.t.Errorf("%s: tlog.TreeHash(%d) over the stored hashes: %v", when, n, err)
	case gotRoot != wantRoot:
		f.t.Errorf("%s: tlog.TreeHash(%d) over the stored hashes is %v, want %v, the tree hash of the entries committed", when, n, gotRoot, wantRoot)
	}
	if _, err := ls.ReadHashes(ctx, []int64{count}); err == nil {
		f.t.Errorf("%s: ReadHashes(%d), a hash no entry of the %d committed adds, succeeded; want an error", when, count, n)
	}
}

// logFixture is a fixture whose store must be a [residency.LogStore]; the
// subtest is skipped for a store that keeps no log.
func logFixture(t *testing.T, open Opener) (*fixture, func() residency.LogStore) {
	t.Helper()
	f := newFixture(t, open)
	if _, ok := f.store.(residency.LogStore); !ok {
		t.Skipf("the store (%T) is not a residency.LogStore: it keeps no audit log", f.store)
	}
	// The fixture's store changes when it is reopened.
	return f, func() residency.LogStore { return f.store.(residency.LogStore) }
}

func testLogChanges(t *testing.T, open Opener) {
	f, _ := logFixture(t, open)
	f.checkOpen("an empty log")
	a, b := placed("a", at), placed("b", at.Add(time.Nanosecond))
	f.apply(`new accounts "b" and "a", in that order, in one unit`, b, a)
	f.apply(`account "c" through every kind of event, in one unit`, life("c", at, at.AddDate(1, 0, 0))...)
	f.apply(`account "d" placed alone`, placed("d", at))
	f.apply(`data center states, one set twice, beside account "a"`, dataCenter("linode-eu", provider.Draining, at, 1),
		next(a, residency.MoveBegun, at, func(p *residency.Placement, e *residency.Event) {
			p.Move = residency.Move{ID: "m", AccountID: "a", From: p.DataCenter, To: "linode-eu-2", ToRegion: p.Region, Began: at}
			e.From, e.To, e.MoveID = p.DataCenter, "linode-eu-2", "m"
		}),
		dataCenter("linode-eu", provider.Active, at.Add(time.Second), 2), dataCenter("aws-eu-west-1", provider.Offline, at, 1))
	k := consented(b, "C-1", "support-247", at, time.Time{}, time.Time{})
	o := objected(k, "O-1", "twilio", at, time.Time{})
	f.apply(`account "b": a consent and an objection`, k, o)
	end := at.Add(time.Hour)
	k2 := consented(o, "C-1", "support-247", at, time.Time{}, end)
	o2 := objected(k2, "O-1", "twilio", at, end)
	f.apply(`account "b" deleted`, k2, o2, deleted(o2, end, "trial expired"))
	f.check("units of every kind of change")
	f.apply(`account "e" placed after reopening`, placed("e", end))
	f.check("a change appended after reopening")
}

func testLogRefused(t *testing.T, open Opener) {
	f, _ := logFixture(t, open)
	a := placed("a", at)
	f.apply(`account "a" and a data center state`, a, dataCenter("linode-eu", provider.Draining, at, 1))
	// A unit with a stale change in its middle, new accounts and data
	// center states around it.
	f.refuse(`a unit of 5 changes, the third stale`, conflict{account: "a", stored: 1, expected: 0},
		placed("new-1", at), dataCenter("linode-eu", provider.Active, at, 2), placed("a", at), placed("new-2", at), dataCenter("linode-uk", provider.Offline, at, 1))
	f.checkOpen("a refused unit: nothing of it in the log")
	f.refuse(`new account "twice" at version 1, twice in one unit`, conflict{account: "twice", inUnit: true}, placed("twice", at), placed("twice", at))
	f.checkOpen("a unit refused for a conflict within it: nothing of it in the log")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.store.Apply(ctx, []residency.Change{placed("new-3", at), dataCenter("aws-eu-west-1", provider.Offline, at, 1)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply(new account %q and a data center state) with a cancelled context = %v, want an error matching context.Canceled", "new-3", err)
	}
	f.checkOpen("Apply with a cancelled context: nothing in the log")
	f.apply(`account "a" at version 2, after the refusals`, next(a, residency.MoveAborted, at, nil), placed("new-1", at))
	f.check("a unit accepted after refusals: its entries follow the last accepted, without a gap")
}

func testLogEntries(t *testing.T, open Opener) {
	f, ls := logFixture(t, open)
	ctx := context.Background()
	f.apply("every kind of record", richState()...)
	f.apply(`account "x"`, placed("x", at))
	f.apply(`account "y" and a data center state`, placed("y", at), dataCenter("linode-uk", provider.Draining, at, 1))
	n := int64(len(f.want.log))
	for from := int64(0); from <= n; from++ {
		f.compareLog("every index", ls(), from, f.want.log)
	}
	if indexes, _, err := readLog(ctx, ls(), n+5); err != nil || len(indexes) > 0 {
		t.Errorf("LogEntries(%d) of a log of %d entries gave entries %d and error %v, want none and no error", n+5, n, indexes, err)
	}

	// fn's error stops the read.
	stop := errors.New("storetest: fn's error")
	calls := 0
	err := ls().LogEntries(ctx, 1, func(int64, []byte) error {
		if calls++; calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("LogEntries(1) with fn failing at the second entry = %v, want fn's error", err)
	}
	if calls != 2 {
		t.Errorf("LogEntries(1) called fn %d times after fn failed at the second entry, want 2", calls)
	}

	// Each entry is fn's own: overwriting them changes nothing stored, nor
	// an entry fn was given earlier.
	_, kept, err := readLog(ctx, ls(), 0)
	if err != nil {
		t.Fatalf("LogEntries(0): %v", err)
	}
	err = ls().LogEntries(ctx, 0, func(_ int64, e []byte) error {
		for i := range e {
			e[i] = 'x'
		}
		return nil
	})
	if err != nil {
		t.Fatalf("LogEntries(0): %v", err)
	}
	f.compareLog("the caller overwrote the entries LogEntries gave it", ls(), 0, f.want.log)
	if diff := cmp.Diff(f.want.log, kept); diff != "" {
		t.Errorf("entries an earlier LogEntries gave changed when a later one's fn overwrote its own (-want +got):\n%s", diff)
	}
	f.check("entries read and overwritten by the caller")
}
