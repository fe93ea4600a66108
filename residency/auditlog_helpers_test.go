package residency_test

import (
	"context"
	"slices"
	"testing"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/residency"
)

// logEntries reads every entry of a log store.
func logEntries(t testing.TB, ls residency.LogStore) [][]byte {
	t.Helper()
	var out [][]byte
	err := ls.LogEntries(context.Background(), 0, func(i int64, e []byte) error {
		if i != int64(len(out)) {
			t.Fatalf("LogEntries gave entry %d after %d entries", i, len(out))
		}
		out = append(out, slices.Clone(e))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkFileLog opens the store file at path read-only and checks its whole
// log against kept, an earlier checkpoint of it, and its stored hashes; it
// returns the checkpoint of the log as it is.
func checkFileLog(t testing.TB, path string, kept auditlog.Checkpoint) auditlog.Checkpoint {
	t.Helper()
	ctx := context.Background()
	ls, err := residency.OpenFileStoreReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	return checkLog(t, ls, kept)
}

// checkLog checks the log of ls against kept and its stored hashes.
func checkLog(t testing.TB, ls residency.LogStore, kept auditlog.Checkpoint) auditlog.Checkpoint {
	t.Helper()
	ctx := context.Background()
	if kept.Origin == "" {
		kept = emptyLog(t, residency.DefaultLogOrigin)
	}
	got, err := auditlog.CheckLog(kept, auditlog.Entries(logEntries(t, ls)), residency.HashReader(ctx, ls))
	if err != nil {
		t.Fatalf("CheckLog: %v", err)
	}
	n, err := ls.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head, err := auditlog.NewCheckpoint(kept.Origin, n, residency.HashReader(ctx, ls))
	if err != nil {
		t.Fatal(err)
	}
	if head != got {
		t.Fatalf("the log's entries hash to %v, its stored head is %v", got, head)
	}
	return got
}

// emptyLog is the checkpoint of an empty log.
func emptyLog(t testing.TB, origin string) auditlog.Checkpoint {
	t.Helper()
	var m auditlog.MemoryHashes
	c, err := m.Checkpoint(origin)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// storedEvents counts the events of every account stored in the file at
// path: one log entry each, where no data center status was changed.
func storedEvents(t testing.TB, path string) int64 {
	t.Helper()
	ls, err := residency.OpenFileStoreReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	n := int64(0)
	err = ls.Load(context.Background(), func(a residency.StoredAccount) error {
		n += int64(len(a.History))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
