package residency_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/prometheus/client_golang/prometheus"
)

// diskFullEnv names the store file of TestDiskFullWritesAreCounted's
// child process.
const diskFullEnv = "DOMICILE_DISK_FULL_CHILD"

// TestDiskFullWritesAreCounted: a single node on the file store whose
// disk fills up. The test runs itself as a child process whose files may
// not grow past the store's size (RLIMIT_FSIZE, with SIGXFSZ ignored: the
// kernel refuses the growth with EFBIG, as a full disk refuses it with
// ENOSPC; no root needed). Writes then fail with ErrStoreFailed, counted
// by domicile_write_errors_total{error="store_failed"}; reads go on; once
// the file may grow again, writes succeed, and what failed is not stored.
func TestDiskFullWritesAreCounted(t *testing.T) {
	path := os.Getenv(diskFullEnv)
	if path == "" {
		cmd := osexec.Command(os.Args[0], "-test.run=^TestDiskFullWritesAreCounted$", "-test.v")
		cmd.Env = append(os.Environ(), diskFullEnv+"="+filepath.Join(t.TempDir(), "store.db"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child process: %v\n%s", err, out)
		}
		return
	}
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	r, err := residency.Open(ctx, residency.WithPath(path), residency.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	failed := func() float64 { return writeErrors(t, reg, "store_failed") }
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	full := syscall.Rlimit{Cur: uint64(fi.Size()), Max: limit.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Fatal(err)
	}
	// The file has free pages left: place accounts until it must grow.
	var id string
	for i := 0; ; i++ {
		id = fmt.Sprint("acct-", i)
		_, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
		if err == nil {
			continue
		}
		if !errors.Is(err, residency.ErrStoreFailed) {
			t.Fatalf("Place on a full disk = %v, want ErrStoreFailed", err)
		}
		break
	}
	if got := failed(); got != 1 {
		t.Errorf("domicile_write_errors_total{error=store_failed} after a write on a full disk = %v, want 1", got)
	}
	if _, err := r.Lookup("acme"); err != nil {
		t.Errorf("Lookup on a full disk: %v", err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "after", Country: "DE"}); err != nil {
		t.Errorf("Place once the disk has room again: %v", err)
	}
	if _, err := r.Lookup(id); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("Lookup of the account whose write failed = %v, want ErrNotFound", err)
	}
	if got := failed(); got != 1 {
		t.Errorf("domicile_write_errors_total{error=store_failed} after a write that succeeded = %v, want 1", got)
	}
}

// writeErrors returns domicile_write_errors_total{error=kind} as g
// gathers it.
func writeErrors(t *testing.T, g prometheus.Gatherer, kind string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "domicile_write_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "error" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no metric domicile_write_errors_total{error=%q} gathered", kind)
	return 0
}
