package residency_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

func TestConflictErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *residency.ConflictError
		want string
	}{
		{"conflict", &residency.ConflictError{AccountID: "acme", Version: 3, Reason: "lives in EU (EU member state), the request asks for US"},
			`residency: conflict: account "acme" lives in EU (EU member state), the request asks for US`},
		{"conflict without reason", &residency.ConflictError{AccountID: "acme", Version: 3},
			`residency: conflict: account "acme" at version 3`},
		{"stale", &residency.ConflictError{AccountID: "acme", Version: 4, Stored: residency.Placement{AccountID: "acme", Version: 5}, Stale: true},
			`residency: conflict: stale version: account "acme" is at version 5, the write expected version 4`},
		{"stale new account", &residency.ConflictError{AccountID: "acme", Stored: residency.Placement{AccountID: "acme", Version: 1}, Stale: true, Reason: "placed by another process"},
			`residency: conflict: stale version: account "acme" is at version 1, the write expected version 0: placed by another process`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%s: Error() = %s; want %s", tt.name, got, tt.want)
		}
		if !errors.Is(tt.err, residency.ErrConflict) || errors.Is(tt.err, residency.ErrStaleVersion) != tt.err.Stale {
			t.Errorf("%s: errors.Is ErrConflict %v, ErrStaleVersion %v; want true, %v", tt.name,
				errors.Is(tt.err, residency.ErrConflict), errors.Is(tt.err, residency.ErrStaleVersion), tt.err.Stale)
		}
	}
}

// TestConflictErrors checks that every conflict the Router finds is a
// *ConflictError naming the account, the version checked and what is
// stored, that matches ErrConflict and not ErrStaleVersion: a retry would
// get the same answer.
func TestConflictErrors(t *testing.T) {
	ctx := context.Background()
	r := open(t)
	p := place(t, r, "acme", "DE")
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	p, _ = r.Lookup("acme")
	tests := []struct {
		name   string
		call   func() error
		reason string
	}{
		{"Place in another region", func() error {
			_, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "US"})
			return err
		}, "lives in EU (EU member state), the request asks for US"},
		{"BeginMove to where it lives", func() error {
			_, err := r.BeginMove(ctx, "acme", p.DataCenter)
			return err
		}, "already lives in " + p.DataCenter},
		{"GrantTransfer under a used reference", func() error {
			return r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.UK, Reference: "T-1"})
		}, `already has agreement "T-1" (to US, revoked false)`},
		{"Import on another data center", func() error {
			res, err := r.Import(ctx, slices.Values([]residency.ImportRow{{AccountID: "acme", Country: "DE", DataCenter: "websupport-eu"}}))
			if err != nil || len(res.Refused) != 1 {
				t.Fatalf("Import = %+v, %v; want one refused row", res, err)
			}
			return res.Refused[0]
		}, "lives on " + p.DataCenter + ", not websupport-eu"},
	}
	if p.DataCenter == "websupport-eu" {
		t.Fatalf("acme placed on websupport-eu: the Import case needs another data center")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ce *residency.ConflictError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *ConflictError", err, err)
			}
			want := &residency.ConflictError{AccountID: "acme", Version: p.Version, Stored: p, Reason: tt.reason}
			if diff := cmp.Diff(want, ce); diff != "" {
				t.Errorf("ConflictError mismatch (-want +got):\n%s", diff)
			}
			if !errors.Is(err, residency.ErrConflict) || errors.Is(err, residency.ErrStaleVersion) {
				t.Errorf("errors.Is(%v): ErrConflict %v, ErrStaleVersion %v; want true, false", err,
					errors.Is(err, residency.ErrConflict), errors.Is(err, residency.ErrStaleVersion))
			}
		})
	}
}

// sharedStore is a store in memory that another process may write to
// (other): a change whose account is not stored at the version before the
// change's is refused, as a shared database refuses a stale write.
type sharedStore struct {
	mu       sync.Mutex
	accounts map[string]residency.Placement
}

func (s *sharedStore) Load(context.Context, func(residency.StoredAccount) error) error { return nil }
func (s *sharedStore) LoadAccounts(_ context.Context, ids []string, fn func(residency.StoredAccount) error) error {
	return nil
}
func (s *sharedStore) DataCenters(context.Context) ([]residency.DataCenterState, error) {
	return nil, nil
}
func (s *sharedStore) Close() error { return nil }

func (s *sharedStore) Apply(_ context.Context, changes []residency.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range changes {
		p := c.Placement
		if c.DataCenter == nil && s.accounts[p.AccountID].Version+1 != p.Version {
			return &residency.ConflictError{AccountID: p.AccountID, Version: p.Version - 1, Stored: s.accounts[p.AccountID], Stale: true}
		}
	}
	for _, c := range changes {
		if c.DataCenter == nil {
			s.accounts[c.Placement.AccountID] = c.Placement
		}
	}
	return nil
}

// other changes an account as another process would.
func (s *sharedStore) other(id string) residency.Placement {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.accounts[id]
	p.AccountID = id
	p.Version++
	s.accounts[id] = p
	return p
}

// TestStaleVersionFromStore: a store's refusal of a stale write reaches the
// caller as a *ConflictError that matches both ErrConflict and
// ErrStaleVersion, with the versions it names.
func TestStaleVersionFromStore(t *testing.T) {
	ctx := context.Background()
	s := &sharedStore{accounts: map[string]residency.Placement{}}
	r := open(t, residency.WithStore(s))
	p := place(t, r, "acme", "DE")
	stored := s.other("acme")
	_, err := r.BeginMove(ctx, "acme", otherDC(t, r, p))
	var ce *residency.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("BeginMove on a stale account: %v (%T); want a *ConflictError", err, err)
	}
	want := &residency.ConflictError{AccountID: "acme", Version: 1, Stored: stored, Stale: true}
	if diff := cmp.Diff(want, ce); diff != "" {
		t.Errorf("ConflictError mismatch (-want +got):\n%s", diff)
	}
	if !errors.Is(err, residency.ErrStaleVersion) || !errors.Is(err, residency.ErrConflict) {
		t.Errorf("errors.Is(%v): want ErrStaleVersion and ErrConflict", err)
	}
	// A placement another process made first is stale for this one too.
	s.other("new")
	_, err = r.Place(ctx, residency.PlaceRequest{AccountID: "new", Country: "DE"})
	if !errors.As(err, &ce) || !ce.Stale || ce.Version != 0 || ce.Stored.Version != 1 {
		t.Errorf("Place of an account placed elsewhere: %v; want a stale ConflictError expecting version 0, stored 1", err)
	}
}

// TestHugeInputIsNotEchoed: a migration script reads data center IDs and
// references from CSV files an operator wrote; a broken file can put a
// megabyte in one field. Each call refuses it with the error errors.Is
// matches and changes nothing, and names the bad value cut short.
//
// Every refusal's text stays short, whatever the input's size (the
// migrate tool prints it as one line of its report). (Before, BeginMove,
// PlanEvacuation and Status with an unknown 1 MiB data center ID,
// RevokeTransfer with a 1 MiB reference and MayAccess with a 1 MiB
// sub-processor ID returned errors of over a megabyte.)
func TestHugeInputIsNotEchoed(t *testing.T) {
	ctx := context.Background()
	r := open(t, residency.WithPath(filepath.Join(t.TempDir(), "huge.db")))
	place(t, r, "acme", "DE")
	huge := strings.Repeat("x", 1<<20)
	before := snapshot(t, r)
	for _, c := range []struct {
		name string
		call func() error
		want error
	}{
		{"BeginMove", func() error { _, err := r.BeginMove(ctx, "acme", huge); return err }, residency.ErrUnknownDataCenter},
		{"PlanEvacuation", func() error { _, err := r.PlanEvacuation(ctx, huge); return err }, residency.ErrUnknownDataCenter},
		{"Status", func() error { _, err := r.Status(huge); return err }, residency.ErrUnknownDataCenter},
		{"Drain", func() error { return r.Drain(ctx, huge) }, residency.ErrUnknownDataCenter},
		{"RevokeTransfer", func() error { return r.RevokeTransfer(ctx, "acme", huge) }, residency.ErrNotFound},
		{"MayAccess", func() error { return r.MayAccess("acme", huge) }, provider.ErrUnknownSubProcessor},
		{"CompleteMove", func() error { _, err := r.CompleteMove(ctx, huge); return err }, residency.ErrNotFound},
	} {
		err := c.call()
		if !errors.Is(err, c.want) {
			t.Errorf("%s with a 1 MiB argument: %.200v; want %v", c.name, err, c.want)
		}
		if err != nil && len(err.Error()) > 1024 {
			t.Errorf("%s with a 1 MiB argument: error of %d bytes (%.100s...); want it cut short", c.name, len(err.Error()), err)
		}
	}
	unchanged(t, r, before, "calls with a 1 MiB argument")
}
