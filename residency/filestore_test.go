package residency_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

func TestFileStoreReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "domicile.db")
	clk := newClock()
	r, err := residency.Open(ctx, residency.WithPath(path), residency.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"DE", "GB", "US", "JP", "BR", "FR"} {
		place(t, r, fmt.Sprintf("acct-%d", i), c)
		clk.Add(time.Second)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "chooser", Country: "US", Region: region.APAC}); err != nil {
		t.Fatal(err)
	}
	// acct-0: an agreed move to the US, completed; acct-5: a move left open;
	// acct-2: a move aborted; acct-1: an agreement revoked.
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acct-0", To: region.US, Reference: "T-0", ExpiresAt: clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	m, err := r.BeginMove(ctx, "acct-0", "aws-us-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	p5, _ := r.Lookup("acct-5")
	open5, err := r.BeginMove(ctx, "acct-5", otherDC(t, r, p5))
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := r.Lookup("acct-2")
	m2, err := r.BeginMove(ctx, "acct-2", otherDC(t, r, p2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AbortMove(ctx, m2.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acct-1", To: region.EU, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeTransfer(ctx, "acct-1", "T-1"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("store file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}

	r, err = residency.Open(ctx, residency.WithPath(path), residency.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if diff := cmp.Diff(before, snapshot(t, r)); diff != "" {
		t.Errorf("state after reopen mismatch (-before +after):\n%s", diff)
	}
	if rep, err := r.Verify(ctx); err != nil || !rep.OK() {
		t.Errorf("Verify after reopen: %+v, %v", rep.Violations, err)
	}
	// The open move survived and completes; versions go on.
	p, err := r.CompleteMove(ctx, open5.ID)
	if err != nil || p.DataCenter != open5.To || p.Version != 3 {
		t.Errorf("CompleteMove after reopen = %+v, %v", p, err)
	}
	// Agreements are back: acct-1's is revoked, so it cannot move to the EU.
	if _, err := r.BeginMove(ctx, "acct-1", "linode-eu"); !errors.Is(err, residency.ErrCrossRegion) {
		t.Errorf("BeginMove under a revoked agreement after reopen: %v", err)
	}
}

func TestFileStoreConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "domicile.db")
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				id := fmt.Sprintf("acct-%d", i%30) // goroutines collide on accounts
				p, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: []string{"DE", "US", "SG"}[i%3]})
				if err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
				if m, err := r.BeginMove(ctx, id, otherDC(t, r, p)); err == nil {
					if _, err := r.CompleteMove(ctx, m.ID); err != nil {
						t.Errorf("CompleteMove: %v", err)
					}
				} else if !errors.Is(err, residency.ErrMoveInProgress) && !errors.Is(err, residency.ErrConflict) {
					t.Errorf("BeginMove: %v", err)
				}
			}
		})
	}
	wg.Wait()
	before := snapshot(t, r)
	r.Close()
	r, err = residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if diff := cmp.Diff(before, snapshot(t, r)); diff != "" {
		t.Errorf("state after reopen mismatch (-before +after):\n%s", diff)
	}
	if len(before.Placements) != 30 {
		t.Errorf("%d accounts, want 30", len(before.Placements))
	}
}

func TestFileStoreLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "domicile.db")
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	_, err = residency.Open(ctx, residency.WithPath(path))
	if !errors.Is(err, residency.ErrLocked) {
		t.Fatalf("second Open error = %v; want ErrLocked", err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("second Open took %v", waited)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := residency.Open(short, residency.WithPath(path)); !errors.Is(err, residency.ErrLocked) {
		t.Errorf("Open with a short deadline: %v; want ErrLocked", err)
	}
	if waited := time.Since(start); waited > 700*time.Millisecond {
		t.Errorf("Open with a 50ms deadline took %v", waited)
	}
	// The first Router still works.
	place(t, r, "a", "DE")
}

func TestFileStoreRefusesBadFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A real store, then damaged copies of it.
	good := filepath.Join(dir, "good.db")
	r, err := residency.Open(ctx, residency.WithPath(good))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		place(t, r, fmt.Sprintf("account-%04d", i), "DE")
	}
	r.Close()
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), data...)
	for i := 4096 * 2; i < len(flipped); i += 97 {
		flipped[i] ^= 0x5a
	}
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*31 + i>>8)
	}

	otherBolt := filepath.Join(dir, "other.db")
	db, err := bolt.Open(otherBolt, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("something")); return err })
	db.Close()
	future := filepath.Join(dir, "future.db")
	copyFile(t, good, future)
	db, err = bolt.Open(future, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("10")) })
	db.Close()

	tests := []struct {
		name, path string
		want       error
	}{
		{"garbage", write("garbage.db", garbage), residency.ErrCorrupt},
		{"short garbage", write("short.db", []byte("not a database")), residency.ErrCorrupt},
		{"truncated store", write("truncated.db", data[:len(data)/3]), residency.ErrCorrupt},
		{"store with damaged pages", write("flipped.db", flipped), residency.ErrCorrupt},
		{"another bbolt file", otherBolt, residency.ErrCorrupt},
		{"a newer format", future, residency.ErrFormat},
	}
	for _, tt := range tests {
		r, err := residency.Open(ctx, residency.WithPath(tt.path))
		if !errors.Is(err, tt.want) {
			if r != nil {
				r.Close()
			}
			t.Errorf("%s: Open error = %v; want %v", tt.name, err, tt.want)
		}
	}
	// Cut at every page: the store is refused, or (the cut pages were
	// unused) opens with every account.
	for size := 4096; size < len(data); size += 4096 {
		r, err := residency.Open(ctx, residency.WithPath(write(fmt.Sprintf("cut-%d.db", size), data[:size])))
		if err != nil {
			if !errors.Is(err, residency.ErrCorrupt) {
				t.Errorf("cut at %d of %d bytes: Open error = %v; want ErrCorrupt", size, len(data), err)
			}
			continue
		}
		if n := len(collect(r.AccountsInRegion(region.EU))); n != 500 {
			t.Errorf("cut at %d of %d bytes: opened with %d accounts, want 500", size, len(data), n)
		}
		r.Close()
	}
	if _, err := residency.Open(ctx, residency.WithPath(filepath.Join(dir, "no", "such", "dir.db"))); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// unpackFixture writes the format-2 fixture, kept gzipped in
// testdata/v2.db.gz (1.5 KB rather than 64 KB), to path.
func unpackFixture(t *testing.T, path string) {
	t.Helper()
	gunzipFixture(t, "v2.db.gz", path)
}

// gunzipFixture writes the store file kept gzipped in testdata/name to
// path.
func gunzipFixture(t *testing.T, name, path string) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// fixtureClock is the clock of testdata/v2.db.gz and of the state built the
// same way: each reading is one second and one nanosecond later.
func fixtureClock() func() time.Time {
	var mu sync.Mutex
	now := time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second + time.Nanosecond)
		return now
	}
}

// fixtureChanges makes the changes of testdata/mkv2, which wrote
// testdata/v2.db.gz: keep the two in step.
func fixtureChanges(t testing.TB, r *residency.Router) {
	t.Helper()
	ctx := context.Background()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range []string{"DE", "GB", "US", "JP", "FR", "SG", "IT", "CA"} {
		_, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprintf("acct-%d", i), Country: c})
		check(err)
	}
	_, err := r.Place(ctx, residency.PlaceRequest{AccountID: "chooser", Country: "US", Region: region.APAC})
	check(err)
	check(r.GrantTransfer(ctx, residency.Transfer{AccountID: "acct-0", To: region.US, Reference: "T-0",
		ExpiresAt: time.Date(2200, 1, 2, 3, 4, 5, 6, time.UTC)}))
	m, err := r.BeginMove(ctx, "acct-0", "aws-us-west-1")
	check(err)
	_, err = r.CompleteMove(ctx, m.ID)
	check(err)
	other := func(id string) string {
		p, _ := r.Lookup(id)
		if p.DataCenter == "websupport-eu" {
			return "aws-eu-west-1"
		}
		return "websupport-eu"
	}
	_, err = r.BeginMove(ctx, "acct-4", other("acct-4"))
	check(err)
	m, err = r.BeginMove(ctx, "acct-6", other("acct-6"))
	check(err)
	_, err = r.AbortMove(ctx, m.ID)
	check(err)
	check(r.GrantTransfer(ctx, residency.Transfer{AccountID: "acct-1", To: region.EU, Reference: "T-1"}))
	check(r.RevokeTransfer(ctx, "acct-1", "T-1"))
	check(r.GrantTransfer(ctx, residency.Transfer{AccountID: "acct-3", To: region.EU, Reference: "T-3"}))
	check(r.Drain(ctx, "linode-sg"))
}

// storedSnapshot is r's state with move IDs (random) replaced by their
// order of appearance in the audit trails.
func storedSnapshot(t testing.TB, r *residency.Router) state {
	t.Helper()
	s := snapshot(t, r)
	ids := map[string]string{"": ""}
	rename := func(id string) string {
		if _, ok := ids[id]; !ok {
			ids[id] = fmt.Sprintf("move-%d", len(ids))
		}
		return ids[id]
	}
	for _, p := range s.Placements {
		for i := range s.History[p.AccountID] {
			e := &s.History[p.AccountID][i]
			e.MoveID = rename(e.MoveID)
		}
	}
	for i := range s.Placements {
		s.Placements[i].Move.ID = rename(s.Placements[i].Move.ID)
	}
	for i := range s.Moves {
		s.Moves[i].ID = rename(s.Moves[i].ID)
	}
	return s
}

// fixtureState is the state testdata/v2.db.gz holds, made anew in memory.
func fixtureState(t *testing.T) state {
	r := open(t, residency.WithClock(fixtureClock()))
	fixtureChanges(t, r)
	return storedSnapshot(t, r)
}

func storeFormat(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	db.View(func(tx *bolt.Tx) error { v = string(tx.Bucket([]byte("meta")).Get([]byte("format"))); return nil })
	return v
}

// TestFileStoreUpgrade opens a file of format 2 (testdata/v2.db.gz, written
// by the code of that format) and ones of formats 1 and 3 made from it:
// each is upgraded to format 5 with its state intact, to the nanosecond (an
// agreement there expires in 2200), and opens again without a write.
func TestFileStoreUpgrade(t *testing.T) {
	ctx := context.Background()
	want := fixtureState(t)
	v1State := want
	v1State.Statuses = maps.Clone(want.Statuses)
	v1State.Statuses["linode-sg"] = provider.Active // format 1 kept no statuses
	tests := []struct {
		name string
		make func(path string)
		want state
	}{
		{"format 2", func(string) {}, want},
		{"format 1", func(path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error {
				if err := tx.DeleteBucket([]byte("datacenters")); err != nil {
					return err
				}
				return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("1"))
			}); err != nil {
				t.Fatal(err)
			}
		}, v1State},
		{"format 3", func(path string) {
			// Opening upgrades the file to format 6; take it back to 3:
			// no consents, objections and log buckets, counts of accounts,
			// agreements and statuses only (codec.go).
			r, err := residency.Open(ctx, residency.WithPath(path), residency.WithClock(fixtureClock()))
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error {
				for _, name := range []string{"consents", "objections", "log"} {
					if err := tx.DeleteBucket([]byte(name)); err != nil {
						return err
					}
				}
				if err := deleteTail(tx); err != nil {
					return err
				}
				meta := tx.Bucket([]byte("meta"))
				v := meta.Get([]byte("counts"))
				payload := bytes.Clone(v[:len(v)-4-2]) // less the checksum and two zero counts
				tab := crc32.MakeTable(crc32.Castagnoli)
				sum := crc32.Update(crc32.Update(crc32.Update(0, tab, []byte{'c'}), tab, []byte("counts")), tab, payload)
				if err := meta.Put([]byte("counts"), binary.LittleEndian.AppendUint32(payload, sum)); err != nil {
					return err
				}
				return meta.Put([]byte("format"), []byte("3"))
			}); err != nil {
				t.Fatal(err)
			}
		}, want},
		{"format 5", func(path string) {
			// Opening upgrades the file to format 7; take it back to 5:
			// status records without their version (codec.go), which
			// is 1 after the upgrade, one byte, and no log tail.
			r, err := residency.Open(ctx, residency.WithPath(path), residency.WithClock(fixtureClock()))
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				// An auditor opens a copy of a format 5 file read-only,
				// as it is: its statuses read as version 1.
				db.Close()
				s, err := residency.OpenFileStoreReadOnly(ctx, path)
				if err != nil {
					t.Fatalf("OpenFileStoreReadOnly of a format 5 file: %v", err)
				}
				defer s.Close()
				if dcs, err := s.DataCenters(ctx); err != nil || len(dcs) == 0 || dcs[0].Version != 1 {
					t.Errorf("DataCenters of a format 5 file = %+v, %v; want version 1", dcs, err)
				}
				if v := storeFormat(t, path); v != "5" {
					t.Errorf("format after opening read-only = %q, want 5", v)
				}
			}()
			if err := db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("datacenters"))
				tab := crc32.MakeTable(crc32.Castagnoli)
				var keys, values [][]byte
				b.ForEach(func(k, v []byte) error {
					if v[len(v)-4-1] != 1 {
						t.Fatalf("status of %s: version byte %d, want 1", k, v[len(v)-4-1])
					}
					payload := bytes.Clone(v[:len(v)-4-1])
					sum := crc32.Update(crc32.Update(crc32.Update(0, tab, []byte{'s'}), tab, k), tab, payload)
					keys, values = append(keys, bytes.Clone(k)), append(values, binary.LittleEndian.AppendUint32(payload, sum))
					return nil
				})
				if len(keys) == 0 {
					t.Fatal("the fixture holds no data center status")
				}
				for i := range keys {
					if err := b.Put(keys[i], values[i]); err != nil {
						return err
					}
				}
				if err := residency.RewriteLogPerEntry(tx, 0, false); err != nil {
					return err
				}
				return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("5"))
			}); err != nil {
				t.Fatal(err)
			}
		}, want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old.db")
			unpackFixture(t, path)
			tt.make(path)
			r, err := residency.Open(ctx, residency.WithPath(path), residency.WithClock(fixtureClock()))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, storedSnapshot(t, r)); diff != "" {
				t.Errorf("upgraded state mismatch (-want +got):\n%s", diff)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if v := storeFormat(t, path); v != "9" {
				t.Errorf("format after the upgrade = %q, want 9", v)
			}
			upgraded, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err = residency.Open(ctx, residency.WithPath(path), residency.WithClock(fixtureClock()))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, storedSnapshot(t, r)); diff != "" {
				t.Errorf("reopened state mismatch (-want +got):\n%s", diff)
			}
			r.Close()
			if again, err := os.ReadFile(path); err != nil || !bytes.Equal(upgraded, again) {
				t.Errorf("opening the upgraded file again wrote it (%v)", err)
			}
			// Statuses of older formats had no version: they read as
			// version 1, which the next change follows.
			s, err := residency.OpenFileStoreReadOnly(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			dcs, err := s.DataCenters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range dcs {
				if d.Version != 1 {
					t.Errorf("data center %s at version %d after the upgrade, want 1", d.ID, d.Version)
				}
			}
		})
	}
}

// TestOpenFileStoreReadOnlyOlderFormatMessage: a read-only open of a file
// of an older format (which only a writable open upgrades) is ErrFormat,
// and its message names the file's format rather than call it unknown.
func TestOpenFileStoreReadOnlyOlderFormatMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.db")
	unpackFixture(t, path)
	_, err := residency.OpenFileStoreReadOnly(context.Background(), path)
	if !errors.Is(err, residency.ErrFormat) {
		t.Fatalf("OpenFileStoreReadOnly of a format 2 file = %v, want ErrFormat", err)
	}
	if msg := err.Error(); strings.Contains(msg, "unknown") || !strings.Contains(msg, "format 2") {
		t.Errorf("OpenFileStoreReadOnly of a format 2 file says %q; want it to name format 2 and not call it unknown", msg)
	}
}

// TestFileStoreUpgradeRefusesDamage checks that a record of an old file
// that does not decode fails the upgrade with ErrCorrupt and leaves the
// file in its old format.
func TestFileStoreUpgradeRefusesDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	unpackFixture(t, path)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		k, v := b.Cursor().Last()
		return b.Put(bytes.Clone(k), append(bytes.Clone(v), 0)) // a trailing byte
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := residency.Open(context.Background(), residency.WithPath(path)); !errors.Is(err, residency.ErrCorrupt) {
		t.Errorf("Open of a damaged format 2 file: %v; want ErrCorrupt", err)
	}
	if v := storeFormat(t, path); v != "2" {
		t.Errorf("format after a failed upgrade = %q, want 2", v)
	}
}

// TestFileStoreRefusesMissingRecords deletes single records of a store of
// format 3, as a damaged page can lose them with their checksums: the
// counts, the order of the audit trails and the merge of the buckets find
// each loss, and Open refuses the file with ErrCorrupt.
func TestFileStoreRefusesMissingRecords(t *testing.T) {
	ctx := context.Background()
	good := filepath.Join(t.TempDir(), "good.db")
	r, err := residency.Open(ctx, residency.WithPath(good), residency.WithClock(fixtureClock()))
	if err != nil {
		t.Fatal(err)
	}
	fixtureChanges(t, r)
	r.Close()
	nth := func(bucket string, n int) func(tx *bolt.Tx) error { // delete the nth record, -1 the last
		return func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucket))
			c := b.Cursor()
			k, _ := c.First()
			if n < 0 {
				k, _ = c.Last()
			}
			for range n {
				k, _ = c.Next()
			}
			return b.Delete(bytes.Clone(k))
		}
	}
	tests := []struct {
		name   string
		damage func(tx *bolt.Tx) error
	}{
		{"first account (its events left behind)", nth("accounts", 0)},
		{"last account (its events left behind)", nth("accounts", -1)},
		{"an event amid a trail", nth("events", 1)},
		{"an account's last event", nth("events", -1)},
		{"an agreement", nth("agreements", 0)},
		{"a data center status", nth("datacenters", 0)},
		{"the counts", func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("counts")) }},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "damaged.db")
		copyFile(t, good, path)
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(tt.damage)
		db.Close()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		r, err := residency.Open(ctx, residency.WithPath(path))
		if !errors.Is(err, residency.ErrCorrupt) {
			t.Errorf("%s deleted: Open error = %v; want ErrCorrupt", tt.name, err)
		}
		if r != nil {
			r.Close()
		}
	}
}

// TestFileStoreEmptyFile checks that only a path where no file exists
// makes a new store: an existing empty file (a store truncated to 0 bytes)
// is refused and left as it is.
func TestFileStoreEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(context.Background(), residency.WithPath(path))
	if !errors.Is(err, residency.ErrCorrupt) {
		if r != nil {
			r.Close()
		}
		t.Errorf("Open of an empty file: %v; want ErrCorrupt", err)
	}
	if info, err := os.Stat(path); err != nil || info.Size() != 0 {
		t.Errorf("the empty file after Open: %v, %v", info.Size(), err)
	}
}

// TestFileStoreTimesRoundTrip stores the extremes of the time range through
// the Router: an agreement expiring at the last nanosecond of 9999 is
// stored as such, not wrapped to 1816 as Unix nanoseconds would be.
func TestFileStoreTimesRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "times.db")
	r, err := residency.Open(ctx, residency.WithPath(path), residency.WithClock(func() time.Time {
		return time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) // the first instant after the zero time
	}))
	if err != nil {
		t.Fatal(err)
	}
	place(t, r, "acme", "DE")
	last := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "T", ExpiresAt: last}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, r)
	// A time the format cannot hold is refused, by GrantTransfer or else by
	// the store, and changes nothing; the Router goes on writing.
	for _, bad := range []time.Time{last.Add(time.Nanosecond), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.UK, Reference: "T-far", ExpiresAt: bad}); !errors.Is(err, residency.ErrInvalidTransfer) {
			t.Errorf("GrantTransfer expiring at %v = %v, want ErrInvalidTransfer", bad, err)
		}
		unchanged(t, r, before, fmt.Sprintf("GrantTransfer expiring at %v", bad))
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.UK, Reference: "T-uk"}); err != nil {
		t.Fatalf("GrantTransfer after a refused time: %v", err)
	}
	before = snapshot(t, r)
	r.Close()
	r, err = residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if diff := cmp.Diff(before, snapshot(t, r)); diff != "" {
		t.Errorf("state after reopen (-before +after):\n%s", diff)
	}
	ag, err := r.Agreements("acme")
	if err != nil || len(ag) != 2 || ag[0].ExpiresAt != last || ag[0].Granted.Nanosecond() != 1 || ag[0].Granted.Year() != 1 {
		t.Errorf("agreement after reopen = %+v, %v; want it to expire at %v, granted in year 1", ag, err, last)
	}
}

// fixedStore is a Store holding given accounts in memory, for Open's check
// of a state that the Router would never write.
type fixedStore struct{ accounts []residency.StoredAccount }

func (s *fixedStore) Load(_ context.Context, fn func(residency.StoredAccount) error) error {
	for _, a := range s.accounts {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

func (s *fixedStore) LoadAccounts(ctx context.Context, ids []string, fn func(residency.StoredAccount) error) error {
	for _, id := range ids {
		for _, a := range s.accounts {
			if a.Placement.AccountID == id {
				if err := fn(a); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *fixedStore) DataCenters(context.Context) ([]residency.DataCenterState, error) {
	return nil, nil
}

func (s *fixedStore) Apply(context.Context, []residency.Change) error {
	return errors.New("fixedStore: read only")
}

func (s *fixedStore) Close() error { return nil }

// TestOpenChecksState checks that Open refuses a stored state that breaks
// the catalog, naming the account, unless WithUnverifiedState; Verify then
// reports it.
func TestOpenChecksState(t *testing.T) {
	ctx := context.Background()
	eu1 := provider.DataCenter{ID: "linode-eu", Provider: provider.Linode, Region: region.EU, Weight: 1, Status: provider.Active}
	eu2 := provider.DataCenter{ID: "aws-eu-west-1", Provider: provider.AWS, Region: region.EU, Weight: 1, Status: provider.Active}
	us := provider.DataCenter{ID: "linode-us", Provider: provider.Linode, Region: region.US, Weight: 1, Status: provider.Active}
	ukNow := eu2
	ukNow.Region = region.UK
	uk := provider.DataCenter{ID: "linode-uk", Provider: provider.Linode, Region: region.UK, Weight: 1, Status: provider.Active}
	full := mustCatalog(t, eu1, eu2, us)

	path := filepath.Join(t.TempDir(), "state.db")
	r, err := residency.Open(ctx, residency.WithPath(path), residency.WithCatalog(full))
	if err != nil {
		t.Fatal(err)
	}
	place(t, r, "eu", "DE") // on one EU data center, its backup on the other
	place(t, r, "mover", "FR")
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "mover", To: region.US, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginMove(ctx, "mover", "linode-us"); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeTransfer(ctx, "mover", "T-1"); err != nil {
		t.Fatal(err)
	}
	r.Close()

	moving := func(agreements ...residency.Agreement) *fixedStore {
		p := residency.Placement{AccountID: "x", Region: region.EU, DataCenter: "linode-eu", Version: 2,
			Move: residency.Move{ID: "mv-1", AccountID: "x", From: "linode-eu", To: "linode-us", ToRegion: region.US, Transfer: "T-9"}}
		return &fixedStore{accounts: []residency.StoredAccount{{Placement: p, Agreements: agreements,
			History: []residency.Event{{AccountID: "x", Version: 1, Kind: residency.Placed}, {AccountID: "x", Version: 2, Kind: residency.MoveBegun}}}}}
	}
	tests := []struct {
		name    string
		opts    []residency.Option
		want    error  // nil: opens
		account string // named by the error, or by Verify's violations
	}{
		{"the catalog it was written with", []residency.Option{residency.WithPath(path), residency.WithCatalog(full)}, nil, ""},
		{"a data center left the catalog", []residency.Option{residency.WithPath(path), residency.WithCatalog(mustCatalog(t, eu1, us))}, residency.ErrUnknownDataCenter, `"eu"`},
		{"a data center moved to another region", []residency.Option{residency.WithPath(path), residency.WithCatalog(mustCatalog(t, eu1, ukNow, us))}, residency.ErrCrossRegion, `"eu"`},
		{"a move's target left the catalog", []residency.Option{residency.WithPath(path), residency.WithCatalog(mustCatalog(t, eu1, eu2, uk))}, residency.ErrUnknownDataCenter, `"mover"`},
		{"repairing a data center that left", []residency.Option{residency.WithPath(path), residency.WithCatalog(mustCatalog(t, eu1, us)), residency.WithUnverifiedState()}, nil, "eu"},
		{"a cross-region move without agreement", []residency.Option{residency.WithStore(moving()), residency.WithCatalog(full)}, residency.ErrCrossRegion, `"x"`},
		{"a cross-region move under another agreement", []residency.Option{residency.WithStore(moving(residency.Agreement{Transfer: residency.Transfer{AccountID: "x", To: region.UK, Reference: "T-9"}})), residency.WithCatalog(full)}, residency.ErrCrossRegion, `"x"`},
		{"a cross-region move with its agreement", []residency.Option{residency.WithStore(moving(residency.Agreement{Transfer: residency.Transfer{AccountID: "x", To: region.US, Reference: "T-9"}})), residency.WithCatalog(full)}, nil, ""},
		{"repairing a cross-region move", []residency.Option{residency.WithStore(moving()), residency.WithCatalog(full), residency.WithUnverifiedState()}, nil, "x"},
	}
	for _, tt := range tests {
		r, err := residency.Open(ctx, tt.opts...)
		if tt.want != nil {
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), "account "+tt.account) {
				t.Errorf("%s: Open error = %v; want %v naming account %s", tt.name, err, tt.want, tt.account)
			}
			if r != nil {
				r.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Open error = %v", tt.name, err)
			continue
		}
		rep, err := r.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// mover's move lost its agreement when it was revoked: Verify
		// reports it, Open does not refuse it.
		var named []string
		for _, v := range rep.Violations {
			if v.AccountID != "mover" {
				named = append(named, v.AccountID)
			}
		}
		if want := []string{tt.account}; tt.account == "" && len(named) != 0 || tt.account != "" && !cmp.Equal(want, slices.Compact(named)) {
			t.Errorf("%s: Verify violations %+v; want those of account %q", tt.name, rep.Violations, tt.account)
		}
		r.Close()
	}
}

// TestFileStoreBitFlips flips single bits of a real store file, each in a
// copy of its own, spread over the whole file. Every copy must be refused
// (ErrCorrupt, or ErrFormat where the flip hit the format version), open
// with exactly the original state, or be refused by Open's check against
// the catalog or reported by Verify. Records carry checksums and counts, so
// nearly every flip of a live page is refused; flips of free pages and of
// unused bytes in pages leave the state as it was.
func TestFileStoreBitFlips(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	clk := fixtureClock()
	r, err := residency.Open(ctx, residency.WithPath(good), residency.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	fixtureChanges(t, r)
	for i := range 120 {
		p := place(t, r, fmt.Sprintf("account-%04d", i), []string{"DE", "US", "SG", "GB", "FR"}[i%5])
		if i%3 == 0 && p.Region != region.UK && p.Region != region.APAC { // one active data center each
			if _, err := r.BeginMove(ctx, p.AccountID, otherDC(t, r, p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := storedSnapshot(t, r)
	r.Close()
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	n := 400
	if testing.Short() {
		n = 100
	}
	outcomes := map[string]int{}
	for i := range n {
		bit := i*len(data)*8/n + i%8 // spread over the file and over the bits of a byte
		outcomes[openFlipped(t, data, bit, want, clk)]++
	}
	t.Logf("%d one-bit flips of a %d-byte store: %v", n, len(data), outcomes)
}

// openFlipped opens a copy of the store file data with one bit flipped and
// says what became of it: refused (as corrupt, of an unknown format, or by
// the check against the catalog), opened unchanged (as want), or opened
// changed and reported by Verify. Anything else fails the test.
func openFlipped(t *testing.T, data []byte, bit int, want state, clk func() time.Time) string {
	t.Helper()
	ctx := context.Background()
	damaged := bytes.Clone(data)
	damaged[bit/8] ^= 1 << (bit % 8)
	path := filepath.Join(t.TempDir(), fmt.Sprintf("flip-%d.db", bit))
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	r, err := residency.Open(ctx, residency.WithPath(path), residency.WithClock(clk))
	switch {
	case errors.Is(err, residency.ErrCorrupt):
		return "refused as corrupt"
	case errors.Is(err, residency.ErrFormat):
		return "refused as an unknown format"
	case errors.Is(err, residency.ErrUnknownDataCenter), errors.Is(err, residency.ErrCrossRegion):
		return "refused by the check against the catalog"
	case err != nil:
		t.Errorf("bit %d (byte %d of %d) flipped: Open error = %v; want ErrCorrupt", bit, bit/8, len(data), err)
		return "failed"
	}
	defer r.Close()
	got := storedSnapshot(t, r)
	rep, err := r.Verify(ctx)
	switch {
	case err != nil:
		t.Errorf("bit %d flipped: Verify: %v", bit, err)
	case cmp.Equal(want, got):
		return "opened unchanged"
	case !rep.OK():
		return "opened changed, reported by Verify"
	default:
		t.Errorf("bit %d (byte %d of %d) flipped: opened as another state that Verify passes (-want +got):\n%s", bit, bit/8, len(data), cmp.Diff(want, got))
	}
	return "failed"
}

// TestFileStoreDamagedRootPage flips every bit of the page header and the
// element table of a small store's root page and of each small (inline)
// bucket it holds. bbolt reads an inline bucket without checking its
// bounds, from a copy on the Go heap when it is not aligned: a damaged
// count or offset there read past the copy (under -race, a fatal error of
// the pointer checks that no recover catches). Open checks those bounds
// first; every copy must be refused, or open unchanged.
func TestFileStoreDamagedRootPage(t *testing.T) {
	ctx := context.Background()
	good := filepath.Join(t.TempDir(), "good.db")
	clk := fixtureClock()
	r, err := residency.Open(ctx, residency.WithPath(good), residency.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	fixtureChanges(t, r)
	want := storedSnapshot(t, r)
	r.Close()
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(good, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root int
	db.View(func(tx *bolt.Tx) error { root = int(tx.Cursor().Bucket().Root()); return nil })
	pageSize := db.Info().PageSize
	db.Close()
	page := data[root*pageSize : (root+1)*pageSize]
	ne := binary.NativeEndian
	// Each leaf page: a 16-byte header, then 16 bytes per element.
	tables := [][2]int{{root * pageSize, 16 + 16*int(ne.Uint16(page[10:]))}}
	for _, name := range []string{"meta", "accounts", "events", "agreements", "datacenters"} {
		at := bytes.Index(page[tables[0][1]:], []byte(name)) + tables[0][1] + len(name) // the bucket's value
		if ne.Uint64(page[at:]) != 0 {
			continue // not inline
		}
		inline := at + 16
		tables = append(tables, [2]int{root*pageSize + inline, 16 + 16*int(ne.Uint16(page[inline+10:]))})
	}
	if len(tables) < 3 {
		t.Fatalf("%d inline buckets in the root page, want at least 2", len(tables)-1)
	}
	outcomes := map[string]int{}
	for _, table := range tables {
		for bit := table[0] * 8; bit < (table[0]+table[1])*8; bit++ {
			outcomes[openFlipped(t, data, bit, want, clk)]++
		}
	}
	t.Logf("%d flips of the root page and %d inline buckets: %v", sum(maps.Values(outcomes)), len(tables)-1, outcomes)
	if outcomes["opened changed, reported by Verify"] != 0 {
		t.Errorf("damage of the root page opened as another state")
	}
}

func sum(s iter.Seq[int]) (n int) {
	for v := range s {
		n += v
	}
	return n
}

// TestStoreRefusesInvalidChanges gives the file store
// (OpenFileStore, public "for callers that wrap the store") changes that
// no Router would make. The rule: bad input gets a typed error and changes
// nothing. The store committed a change without an event, or with an
// empty agreement, and from then on residency.Open refused the file as
// ErrCorrupt, even WithUnverifiedState, the option for repairing a store:
// one bad call bricked the store; an empty account ID got bbolt's untyped
// "key required" (from an adversarial trial). Apply now refuses them with
// ErrInvalidChange (Change.Check).
func TestStoreRefusesInvalidChanges(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	placed := func(id string) residency.Change {
		p := residency.Placement{AccountID: id, Country: region.MustParseCountry("DE"), Region: region.EU,
			DataCenter: "linode-eu", Provider: provider.Linode, Backup: "aws-eu-west-1", Version: 1,
			Rule: "EU member state", Created: at, Updated: at}
		return residency.Change{Placement: p, Event: residency.Event{Time: at, Kind: residency.Placed, AccountID: id,
			To: p.DataCenter, Rule: p.Rule, Version: 1}}
	}
	noEvent := placed("acme")
	noEvent.Event = residency.Event{}
	emptyAgreement := placed("acme")
	emptyAgreement.Agreement = &residency.Agreement{}
	for name, c := range map[string]residency.Change{
		"placement without event": noEvent,
		"empty agreement":         emptyAgreement,
		"empty account ID":        placed(""),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			s, err := residency.OpenFileStore(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			applyErr := s.Apply(ctx, []residency.Change{c})
			s.Close()
			if applyErr != nil {
				if !errors.Is(applyErr, residency.ErrInvalidChange) {
					t.Errorf("Apply: %q; want ErrInvalidChange", applyErr)
				}
				return
			}
			r, err := residency.Open(ctx, residency.WithPath(path), residency.WithUnverifiedState())
			if err != nil {
				t.Errorf("Apply accepted the change, and now Open(WithUnverifiedState) refuses the file: %v", err)
				return
			}
			r.Close()
		})
	}
}
