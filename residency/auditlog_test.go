package residency_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestEncodeEntry pins the entry encoding: JSON with the package's names,
// deterministic, read back by DecodeEntry.
func TestEncodeEntry(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC)
	p := residency.Placement{AccountID: "acme", Country: region.MustParseCountry("DE"), Region: region.EU, DataCenter: "linode-eu",
		Provider: provider.Linode, Backup: "aws-eu-west-1", Version: 2, Rule: "EU member state", Created: at, Updated: at}
	tests := []struct {
		name   string
		change residency.Change
		want   string
	}{
		{"placement with agreement", residency.Change{
			Placement: p,
			Event:     residency.Event{Time: at, Kind: residency.TransferGranted, AccountID: "acme", From: "EU", To: "US", Reference: "T-1", Version: 2},
			Agreement: &residency.Agreement{Transfer: residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-1"}, Granted: at},
		}, `{"placement":{"account_id":"acme","country":"DE","region":"EU","datacenter":"linode-eu","provider":"linode","backup":"aws-eu-west-1","version":2,"rule":"EU member state","created":"2026-11-28T09:00:00.123456789Z","updated":"2026-11-28T09:00:00.123456789Z"},` +
			`"event":{"time":"2026-11-28T09:00:00.123456789Z","kind":"transfer-granted","account_id":"acme","from":"EU","to":"US","reference":"T-1","version":2},` +
			`"agreement":{"account_id":"acme","to":"US","reference":"T-1","granted":"2026-11-28T09:00:00.123456789Z"}}`},
		{"data center status", residency.Change{DataCenter: &residency.DataCenterState{ID: "linode-us", Status: provider.Draining, Changed: at}},
			`{"datacenter":{"id":"linode-us","status":"draining","changed":"2026-11-28T09:00:00.123456789Z"}}`},
	}
	for _, tt := range tests {
		got, err := residency.EncodeEntry(tt.change)
		if err != nil {
			t.Fatalf("%s: EncodeEntry: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, string(got)); diff != "" {
			t.Errorf("%s: EncodeEntry mismatch (-want +got):\n%s", tt.name, diff)
		}
		back, err := residency.DecodeEntry(got)
		if err != nil {
			t.Fatalf("%s: DecodeEntry: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.change, back); diff != "" {
			t.Errorf("%s: DecodeEntry mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
	// A time JSON cannot hold: no entry, and a MemoryStore refuses the
	// whole unit.
	far := residency.Change{DataCenter: &residency.DataCenterState{ID: "linode-us", Status: provider.Draining, Changed: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if _, err := residency.EncodeEntry(far); err == nil {
		t.Error("EncodeEntry of a time in the year 10000 succeeded")
	}
	ms := residency.NewMemoryStore()
	if err := ms.Apply(context.Background(), []residency.Change{tests[1].change, far}); err == nil {
		t.Error("MemoryStore.Apply of a time in the year 10000 succeeded")
	}
	if n, err := ms.LogSize(context.Background()); err != nil || n != 0 {
		t.Errorf("LogSize after a refused unit = %d, %v; want 0", n, err)
	}
	if st, _ := ms.DataCenters(context.Background()); len(st) != 0 {
		t.Errorf("statuses after a refused unit: %v", st)
	}
	if _, err := residency.DecodeEntry([]byte(`{"placement":`)); !errors.Is(err, residency.ErrCorrupt) {
		t.Errorf("DecodeEntry of a cut entry: %v, want ErrCorrupt", err)
	}
}

// changeAll makes changes of every kind through r and returns the number
// of entries they are.
func changeAll(t *testing.T, r *residency.Router, prefix string) int64 {
	t.Helper()
	ctx := context.Background()
	place(t, r, prefix+"a", "DE")
	place(t, r, prefix+"b", "US")
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: prefix + "a", To: region.US, Reference: "T-" + prefix}); err != nil {
		t.Fatal(err)
	}
	m, err := r.BeginMove(ctx, prefix+"a", "aws-us-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeTransfer(ctx, prefix+"a", "T-"+prefix); err != nil {
		t.Fatal(err)
	}
	if err := r.Drain(ctx, "linode-us"); err != nil {
		t.Fatal(err)
	}
	if err := r.Activate(ctx, "linode-us"); err != nil {
		t.Fatal(err)
	}
	return 8
}

// routerEntries reads the Router's log.
func routerEntries(t *testing.T, r *residency.Router) [][]byte {
	t.Helper()
	var out [][]byte
	if err := r.LogEntries(context.Background(), 0, func(_ int64, e []byte) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRouterLog checks, for the file store and the MemoryStore, that every
// change is an entry in commit order, that the checkpoint is the tree of
// the entries, and that the Router's proofs pass tlog's own checks.
func TestRouterLog(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		opts   func(t *testing.T) []residency.Option
		reopen bool
	}{
		{"file", func(t *testing.T) []residency.Option {
			return []residency.Option{residency.WithPath(filepath.Join(t.TempDir(), "d.db"))}
		}, true},
		{"memory", func(*testing.T) []residency.Option {
			return []residency.Option{residency.WithStore(residency.NewMemoryStore())}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append(tc.opts(t), residency.WithLogOrigin("example.com/test"))
			r := open(t, opts...)
			empty, err := r.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := emptyLog(t, "example.com/test"); empty != want {
				t.Errorf("empty log's checkpoint = %v", empty)
			}
			n := changeAll(t, r, "x")
			entries := routerEntries(t, r)
			if int64(len(entries)) != n {
				t.Fatalf("%d entries after %d changes", len(entries), n)
			}
			// The entries are the account's history and the statuses, in
			// commit order.
			hist, err := r.History(ctx, "xa")
			if err != nil {
				t.Fatal(err)
			}
			var got []residency.Event
			var statuses []provider.Status
			for _, e := range entries {
				c, err := residency.DecodeEntry(e)
				if err != nil {
					t.Fatal(err)
				}
				if c.DataCenter != nil {
					statuses = append(statuses, c.DataCenter.Status)
				} else if c.Placement.AccountID == "xa" {
					got = append(got, c.Event)
				}
			}
			if diff := cmp.Diff(hist, got); diff != "" {
				t.Errorf("log entries of xa differ from its history (-history +log):\n%s", diff)
			}
			if diff := cmp.Diff([]provider.Status{provider.Draining, provider.Active}, statuses); diff != "" {
				t.Errorf("status entries (-want +got):\n%s", diff)
			}
			c, err := r.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want, err := auditlog.CheckLog(emptyLog(t, "example.com/test"), auditlog.Entries(entries), nil); err != nil || want != c {
				t.Errorf("Checkpoint = %v; the entries hash to %v (%v)", c, want, err)
			}
			// Every entry's proof, checked by tlog itself.
			for i, e := range entries {
				proof, err := r.ProveEntry(ctx, int64(i), c.Size)
				if err != nil {
					t.Fatal(err)
				}
				if err := tlog.CheckRecord(proof, c.Size, c.Hash, int64(i), tlog.RecordHash(e)); err != nil {
					t.Errorf("entry %d: tlog.CheckRecord: %v", i, err)
				}
				if err := tlog.CheckRecord(proof, c.Size, c.Hash, int64(i), tlog.RecordHash(append(e, ' '))); err == nil {
					t.Errorf("entry %d: tlog.CheckRecord accepts a changed entry", i)
				}
			}
			if tc.reopen {
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
				r = open(t, opts...)
				if again, err := r.Checkpoint(ctx); err != nil || again != c {
					t.Fatalf("Checkpoint after reopening = %v, %v; want %v", again, err, c)
				}
			}
			n += changeAll(t, r, "y")
			c2, err := r.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c2.Size != n {
				t.Fatalf("size after more changes = %d, want %d", c2.Size, n)
			}
			for old := int64(1); old <= c2.Size; old++ { // tlog.CheckTree needs a non-empty older tree
				co, err := auditlog.CheckLog(emptyLog(t, "example.com/test"), auditlog.Entries(routerEntries(t, r)[:old]), nil)
				if err != nil {
					t.Fatal(err)
				}
				proof, err := r.ProveExtension(ctx, old, c2.Size)
				if err != nil {
					t.Fatal(err)
				}
				if err := tlog.CheckTree(proof, c2.Size, c2.Hash, old, co.Hash); err != nil {
					t.Errorf("extension from %d: tlog.CheckTree: %v", old, err)
				}
			}
			// Out of range.
			for _, err := range []error{
				func() error { _, err := r.ProveEntry(ctx, c2.Size, c2.Size); return err }(),
				func() error { _, err := r.ProveEntry(ctx, 0, c2.Size+1); return err }(),
				func() error { _, err := r.ProveEntry(ctx, -1, c2.Size); return err }(),
				func() error { _, err := r.ProveExtension(ctx, 2, 1); return err }(),
				func() error { _, err := r.ProveExtension(ctx, 0, c2.Size+1); return err }(),
				r.LogEntries(ctx, -1, func(int64, []byte) error { return nil }),
			} {
				if !errors.Is(err, auditlog.ErrOutOfRange) {
					t.Errorf("out of range: %v, want ErrOutOfRange", err)
				}
			}
			if _, err := r.SignedCheckpoint(ctx); !errors.Is(err, residency.ErrNoSigner) {
				t.Errorf("SignedCheckpoint without a signer: %v, want ErrNoSigner", err)
			}
		})
	}
}

// TestSignedCheckpoint signs with the key of WithLogSigner, named after it.
func TestSignedCheckpoint(t *testing.T) {
	ctx := context.Background()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/domicile")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	r := open(t, residency.WithStore(residency.NewMemoryStore()), residency.WithLogSigner(signer), residency.WithLogOrigin("ignored"))
	place(t, r, "acme", "DE")
	signed, err := r.SignedCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := auditlog.OpenCheckpoint(signed, verifier)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || got.Origin != "example.com/domicile" || got.Size != 1 {
		t.Errorf("signed checkpoint %v, Checkpoint %v", got, want)
	}
}

// TestNoLog: a Router without a store has no log.
func TestNoLog(t *testing.T) {
	r := open(t)
	if _, err := r.Checkpoint(context.Background()); !errors.Is(err, residency.ErrNoLog) {
		t.Errorf("Checkpoint of a Router without a store: %v, want ErrNoLog", err)
	}
}

// TestMemoryStoreCopiesLog: NewMemoryStoreFrom copies the log with the
// state.
func TestMemoryStoreCopiesLog(t *testing.T) {
	ctx := context.Background()
	src := residency.NewMemoryStore()
	r := open(t, residency.WithStore(src))
	changeAll(t, r, "x")
	cp, err := residency.NewMemoryStoreFrom(ctx, src.Reopen())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(logEntries(t, src.Reopen()), logEntries(t, cp)); diff != "" {
		t.Errorf("copied log (-src +copy):\n%s", diff)
	}
	want := checkLog(t, src.Reopen(), auditlog.Checkpoint{})
	if got := checkLog(t, cp, auditlog.Checkpoint{}); got != want {
		t.Errorf("copy's checkpoint %v, source's %v", got, want)
	}
}

// TestFileStoreLogUpgrade opens files of formats 2 and 4: each gets a log
// that starts with a snapshot of its state, whose replay gives the stored
// accounts, and which later changes extend.
func TestFileStoreLogUpgrade(t *testing.T) {
	ctx := context.Background()
	// A file of format 4: a new store with its log bucket removed.
	v3 := filepath.Join(t.TempDir(), "v4.db")
	r := open(t, residency.WithPath(v3))
	changeAll(t, r, "x")
	r.Close()
	db, err := bolt.Open(v3, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("log")); err != nil {
			return err
		}
		if err := deleteTail(tx); err != nil {
			return err
		}
		return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("4"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	v2 := filepath.Join(t.TempDir(), "v2.db")
	unpackFixture(t, v2)
	for name, path := range map[string]string{"format 4": v3, "format 2": v2} {
		t.Run(name, func(t *testing.T) {
			if _, err := residency.OpenFileStoreReadOnly(ctx, path); !errors.Is(err, residency.ErrFormat) {
				t.Errorf("read-only open of an old format: %v, want ErrFormat", err)
			}
			s, err := residency.OpenFileStore(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			ls := s.(residency.LogStore)
			head := checkLog(t, ls, auditlog.Checkpoint{})
			replay := map[string]residency.Placement{}
			statuses := map[string]residency.DataCenterState{}
			for _, e := range logEntries(t, ls) {
				c, err := residency.DecodeEntry(e)
				if err != nil {
					t.Fatal(err)
				}
				if c.DataCenter != nil {
					statuses[c.DataCenter.ID] = *c.DataCenter
					continue
				}
				if c.Event.Version != c.Placement.Version {
					t.Errorf("snapshot entry of %s: event version %d, placement %d", c.Placement.AccountID, c.Event.Version, c.Placement.Version)
				}
				replay[c.Placement.AccountID] = c.Placement
			}
			stored := map[string]residency.Placement{}
			if err := s.Load(ctx, func(a residency.StoredAccount) error { stored[a.Placement.AccountID] = a.Placement; return nil }); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(stored, replay); diff != "" {
				t.Errorf("replayed snapshot differs from the stored accounts (-stored +log):\n%s", diff)
			}
			states, _ := s.DataCenters(ctx)
			if len(states) != len(statuses) {
				t.Errorf("%d statuses stored, %d in the log", len(states), len(statuses))
			}
			s.Close()
			r := open(t, residency.WithPath(path), residency.WithClock(fixtureClock()))
			place(t, r, "after-upgrade", "DE")
			r.Close()
			if got := checkFileLog(t, path, head); got.Size != head.Size+1 {
				t.Errorf("log after one more change: %d entries, want %d", got.Size, head.Size+1)
			}
		})
	}
}

// deleteTail removes the log's tail (format 7) from the meta bucket.
func deleteTail(tx *bolt.Tx) error {
	meta := tx.Bucket([]byte("meta"))
	var keys [][]byte
	c := meta.Cursor()
	for k, _ := c.Seek([]byte("tail")); k != nil && bytes.HasPrefix(k, []byte("tail")); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// TestSlowLogReaderDoesNotFailWrites reads the audit log with
// Router.LogEntries slowly (an auditor's export streaming to a slow
// client) while another goroutine imports accounts. The Router's
// documentation: reads take a snapshot and writes are applied one batch
// at a time, and a write fails with ErrUnavailable only when the store
// failed or did not answer. The file store's read transaction, held open
// for the whole of LogEntries, kept bbolt from growing its memory map: the
// commit waited for the reader, and the import got ErrUnavailable after
// the write timeout (from an adversarial trial). LogEntries now reads in
// pages, each transaction ended before fn sees it.
func TestSlowLogReaderDoesNotFailWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	// The write timeout only bounds how long the test waits for an
	// import that a reader blocks; it is not the import's time.
	r, err := residency.Open(ctx, residency.WithPath(path), residency.WithWriteTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	place(t, r, "first", "DE")

	reading := make(chan struct{})
	imported := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.LogEntries(ctx, 0, func(int64, []byte) error {
			close(reading)
			<-imported // a slow consumer of the first entry: until the import is over
			return nil
		})
	}()
	<-reading
	_, err = r.Import(ctx, rowsIn("imp-%06d", 20000)) // enough to grow the file
	close(imported)
	<-done
	if err != nil {
		t.Errorf("Import while another goroutine reads the log: %v; want it done (a reader must not fail writes)", err)
	}
}

// TestLogEntriesPages: the file store reads the log in pages of its own
// transactions; LogEntries from any index gives the same entries as one
// read from 0, across page boundaries, and no entry appended while it
// reads (it stops at the log's size at the call).
func TestLogEntriesPages(t *testing.T) {
	ctx := context.Background()
	r, err := residency.Open(ctx, residency.WithPath(filepath.Join(t.TempDir(), "store.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Import(ctx, rowsIn("acct-%05d", 2500)); err != nil {
		t.Fatal(err)
	}
	read := func(from int64, during func(i int64)) []string {
		var out []string
		err := r.LogEntries(ctx, from, func(i int64, e []byte) error {
			if want := from + int64(len(out)); i != want {
				t.Fatalf("LogEntries from %d: entry %d where %d belongs", from, i, want)
			}
			out = append(out, string(e))
			during(i)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	size := func() int64 {
		cp, err := r.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cp.Size
	}
	n := size()
	all := read(0, func(i int64) {
		if i == 1500 { // a write while the read is between pages
			place(t, r, "latecomer", "DE")
		}
	})
	if int64(len(all)) != n {
		t.Fatalf("LogEntries from 0 gave %d entries; the log held %d at the call", len(all), n)
	}
	if size() != n+1 {
		t.Fatalf("the log holds %d entries after one more write, want %d", size(), n+1)
	}
	// A context that ends stops the read at the end of its page.
	cctx, cancel := context.WithCancel(ctx)
	var last int64
	err = r.LogEntries(cctx, 0, func(i int64, _ []byte) error {
		if last = i; i == 1500 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || last >= 2048 {
		t.Errorf("LogEntries whose context ended at entry 1500: %v, read to entry %d; want context.Canceled by the end of that page (2047)", err, last)
	}
	for _, from := range []int64{1, 1023, 1024, 1025, 2047, 2048, n - 1, n} {
		got := read(from, func(int64) {})
		if diff := cmp.Diff(slices.Concat(all[from:], latest(t, r, n)), got); diff != "" {
			t.Errorf("LogEntries from %d (-want +got):\n%s", from, diff)
		}
	}
}

// latest returns the log's entries from index from on.
func latest(t *testing.T, r *residency.Router, from int64) []string {
	t.Helper()
	var out []string
	if err := r.LogEntries(context.Background(), from, func(_ int64, e []byte) error {
		out = append(out, string(e))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// slowLogReads is a LogStore whose ReadHashes, once armed, waits to read
// until the store has been closed (or, should Close wait for it, five
// seconds): a read of the log that Router.Close overtakes.
type slowLogReads struct {
	residency.LogStore
	armed   atomic.Bool
	entered chan struct{} // closed when an armed ReadHashes waits
	release chan struct{} // closed once the store is closed
	once    sync.Once
}

func (s *slowLogReads) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if s.armed.CompareAndSwap(true, false) {
		close(s.entered)
		select {
		case <-s.release:
		case <-time.After(5 * time.Second): // Close waited for this read
		}
	}
	return s.LogStore.ReadHashes(ctx, indexes)
}

func (s *slowLogReads) Close() error {
	err := s.LogStore.Close()
	s.once.Do(func() { close(s.release) })
	return err
}

// TestCheckpointThroughClose: "After Router.Close, every method returns
// ErrClosed", and writes still queued when Close comes return ErrClosed.
// The reads of the audit log that go to the store (Checkpoint, LogEntries,
// ProveEntry, ProveExtension; History on a TrailStore) take no part in
// Close: one in flight when Close closed the store failed with the store's
// own error (bbolt's "database not open", or "postgres: store is closed"),
// which matched no sentinel.
//
// Now such a read returns ErrClosed, as History does. Found by a
// randomized test with a reader through Close; this test makes the
// interleaving certain with a store whose ReadHashes waits for Close.
func TestCheckpointThroughClose(t *testing.T) {
	ctx := context.Background()
	fs, err := residency.OpenFileStore(ctx, filepath.Join(t.TempDir(), "domicile.db"))
	if err != nil {
		t.Fatal(err)
	}
	s := &slowLogReads{LogStore: fs.(residency.LogStore), entered: make(chan struct{}), release: make(chan struct{})}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	s.armed.Store(true)
	type result struct {
		c   auditlog.Checkpoint
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := r.Checkpoint(ctx)
		done <- result{c, err}
	}()
	<-s.entered
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil && !errors.Is(got.err, residency.ErrClosed) {
		t.Errorf("Checkpoint through Close: %v; want the checkpoint, or an error matching ErrClosed", got.err)
	}
}

// entryErrors is an error type of fn's own that is not comparable (a
// struct value holding a slice), as callers may define.
type entryErrors struct{ errs []error }

func (e entryErrors) Error() string { return errors.Join(e.errs...).Error() }

// TestLogEntriesFnErrorNotComparable: LogEntries "keeps fn's own error".
// It returns the error fn returned, as it is; a comparison of the store's
// error with fn's by == panicked ("comparing uncomparable type") when fn's
// error was a value of an uncomparable type. Found by a review.
func TestLogEntriesFnErrorNotComparable(t *testing.T) {
	ctx := context.Background()
	r, err := residency.Open(ctx, residency.WithPath(filepath.Join(t.TempDir(), "domicile.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	mine := entryErrors{errs: []error{errors.New("consumer full")}}
	var got error
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("LogEntries with fn returning an uncomparable error panicked: %v; want fn's error back", p)
			}
		}()
		got = r.LogEntries(ctx, 0, func(int64, []byte) error { return mine })
	}()
	var e entryErrors
	if !errors.As(got, &e) || len(e.errs) != 1 {
		t.Errorf("LogEntries = %v; want fn's own error %v", got, mine)
	}
}
