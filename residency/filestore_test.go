package residency_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("3")) })
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

// TestFileStoreDamageNeverPanics damages a real store at many places, one
// at a time. Each damaged copy either opens (the damage hit free space, or
// a value that still decodes; then Verify still runs) or is refused with
// ErrCorrupt: Open never panics.
func TestFileStoreDamageNeverPanics(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	r, err := residency.Open(ctx, residency.WithPath(good))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		p := place(t, r, fmt.Sprintf("account-%04d", i), []string{"DE", "US", "SG"}[i%3])
		if i%5 == 0 {
			if _, err := r.BeginMove(ctx, p.AccountID, otherDC(t, r, p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.Close()
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i := range 64 {
		damaged := append([]byte(nil), data...)
		at := (i*7919*4099 + 17) % len(damaged)
		for j := at; j < min(at+8, len(damaged)); j++ {
			damaged[j] ^= 0xff
		}
		path := filepath.Join(dir, fmt.Sprintf("damaged-%d.db", i))
		if err := os.WriteFile(path, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := residency.Open(ctx, residency.WithPath(path))
		if err != nil {
			if !errors.Is(err, residency.ErrCorrupt) {
				t.Errorf("damage at %d: Open error = %v; want ErrCorrupt", at, err)
			}
			refused++
			continue
		}
		if _, err := r.Verify(ctx); err != nil {
			t.Errorf("damage at %d: Verify: %v", at, err)
		}
		r.Close()
	}
	t.Logf("%d of 64 damaged copies refused", refused)
}
