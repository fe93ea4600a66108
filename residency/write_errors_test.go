package residency_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/domicile-go/domicile/residency"
)

// failingApply is a MemoryStore whose Apply fails, without applying, while
// fail is set: a store error that is not a conflict, as the package doc
// says to make one.
type failingApply struct {
	*residency.MemoryStore
	fail atomic.Bool
}

func (s *failingApply) Apply(ctx context.Context, cs []residency.Change) error {
	if s.fail.Load() {
		return errors.New("disk on fire")
	}
	return s.MemoryStore.Apply(ctx, cs)
}

// acmeOnFailingApply opens a Router on a failingApply store (working
// until told to fail), places account "acme" and returns another data
// center of its region to move it to.
func acmeOnFailingApply(t *testing.T) (r *residency.Router, s *failingApply, to string) {
	t.Helper()
	s = &failingApply{MemoryStore: residency.NewMemoryStore()}
	r, err := residency.Open(context.Background(), residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	p, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	to = "websupport-eu"
	if p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	return r, s, to
}

// TestWriteErrorsNameWhatTheyConcern: a migration script moves a batch of
// accounts and logs each failure; the package doc says the Router's errors
// "are wrapped with the account, data center or move they concern". That
// holds for errors the store or the caller's context caused too, not only
// for refusals, so that a log line of a batch says which write failed
// (found by a user's trial of the move API).
func TestWriteErrorsNameWhatTheyConcern(t *testing.T) {
	ctx := context.Background()
	r, s, to := acmeOnFailingApply(t)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "initech", Country: "US"}); err != nil {
		t.Fatal(err)
	}
	m, err := r.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	failing := func(call func() error) func() error {
		return func() error {
			s.fail.Store(true)
			defer s.fail.Store(false)
			return call()
		}
	}
	tests := []struct {
		name  string
		call  func() error
		is    error
		names string // what the error must name
	}{
		{"CompleteMove, context cancelled", func() error { _, err := r.CompleteMove(cancelled, m.ID); return err }, context.Canceled, m.ID},
		{"AbortMove, context cancelled", func() error { _, err := r.AbortMove(cancelled, m.ID); return err }, context.Canceled, m.ID},
		{"BeginMove, context cancelled", func() error { _, err := r.BeginMove(cancelled, "acme", to); return err }, context.Canceled, `account "acme"`},
		{"CompleteMove, store failed", failing(func() error { _, err := r.CompleteMove(ctx, m.ID); return err }), residency.ErrStoreFailed, m.ID},
		{"AbortMove, store failed", failing(func() error { _, err := r.AbortMove(ctx, m.ID); return err }), residency.ErrStoreFailed, m.ID},
		{"Place, store failed", failing(func() error {
			_, err := r.Place(ctx, residency.PlaceRequest{AccountID: "globex", Country: "US"})
			return err
		}), residency.ErrStoreFailed, `account "globex"`},
		{"Drain, context cancelled", func() error { return r.Drain(cancelled, "linode-eu") }, context.Canceled, `data center "linode-eu"`},
		{"Delete, store failed", failing(func() error { return r.Delete(ctx, "initech", "gdpr-erasure") }), residency.ErrStoreFailed, `account "initech"`},
	}
	for _, tt := range tests {
		err := tt.call()
		if !errors.Is(err, tt.is) {
			t.Errorf("%s: err = %v, want one matching %v", tt.name, err, tt.is)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tt.names) {
			t.Errorf("%s: error %q does not name %s", tt.name, msg, tt.names)
		}
	}
	// A move ID no move can have, or a data center the catalog lacks, is
	// refused before the write: its error does not echo the whole ID.
	long := strings.Repeat("x", 100_000)
	if _, err := r.CompleteMove(cancelled, long); !errors.Is(err, residency.ErrNotFound) || len(err.Error()) > 200 {
		t.Errorf("CompleteMove of a 100,000-byte ID: %.200v (%d bytes); want ErrNotFound, short", err, len(err.Error()))
	}
	if _, err := r.AbortMove(cancelled, ""); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("AbortMove of an empty ID: %v; want ErrNotFound", err)
	}
	if err := r.Drain(cancelled, long); !errors.Is(err, residency.ErrUnknownDataCenter) || len(err.Error()) > 200 {
		t.Errorf("Drain of a 100,000-byte ID: %.200v (%d bytes); want ErrUnknownDataCenter, short", err, len(err.Error()))
	}
	// A refusal names its subject once, as it did.
	_, err = r.BeginMove(ctx, "nobody", to)
	if want := `residency: not found: account "nobody"`; err == nil || err.Error() != want {
		t.Errorf("BeginMove of an unknown account: %v, want %q", err, want)
	}
}

// TestFailedWriteReturnsNoResult: a write that fails in the store returns
// the zero value beside its error, as every write of the Router does;
// BeginMove returned the move it had decided (with its ID) beside
// ErrStoreFailed, a move that may never exist.
func TestFailedWriteReturnsNoResult(t *testing.T) {
	ctx := context.Background()
	r, s, to := acmeOnFailingApply(t)
	s.fail.Store(true)
	m, err := r.BeginMove(ctx, "acme", to)
	if !errors.Is(err, residency.ErrStoreFailed) || m != (residency.Move{}) {
		t.Errorf("BeginMove while the store fails = %+v, %v; want the zero Move and ErrStoreFailed", m, err)
	}
	got, err := r.Place(ctx, residency.PlaceRequest{AccountID: "globex", Country: "US"})
	if !errors.Is(err, residency.ErrStoreFailed) || got != (residency.Placement{}) {
		t.Errorf("Place while the store fails = %+v, %v; want the zero Placement and ErrStoreFailed", got, err)
	}
}

// TestFenceUnshared: on a store that no other Router shares, Fence has
// nobody to wait for and returns at once.
func TestFenceUnshared(t *testing.T) {
	for name, opt := range map[string]residency.Option{
		"memory": residency.WithStore(residency.NewMemoryStore()),
		"file":   residency.WithPath(filepath.Join(t.TempDir(), "d.db")),
	} {
		r, err := residency.Open(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Fence(context.Background()); err != nil {
			t.Errorf("%s: Fence = %v, want nil", name, err)
		}
		r.Close()
	}
}
