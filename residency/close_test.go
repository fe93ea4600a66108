package residency_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

// TestEveryMethodAfterClose calls every exported method of a closed Router,
// with arguments that would succeed on an open one (an existing account, an
// open move, a live agreement), and wants ErrClosed from each, or nothing
// from the iterators. A method the table lacks fails the test.
func TestEveryMethodAfterClose(t *testing.T) {
	ctx := context.Background()
	r := open(t)
	place(t, r, "acme", "DE")
	place(t, r, "other", "DE")
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	grant(t, r, "acme", "support-247", "C-1", time.Time{})
	object(t, r, "acme", "twilio", "O-1")
	m, err := r.BeginMove(ctx, "acme", "aws-us-west-1")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := r.BeginMove(ctx, "other", otherDC(t, r, place(t, r, "other", "DE")))
	if err != nil {
		t.Fatal(err)
	}
	dc := m.From
	if err := r.Err(); err != nil {
		t.Fatalf("Err before Close = %v; want nil", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	errs := map[string]func() error{
		"Place": func() error {
			_, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
			return err
		},
		"Create": func() error {
			_, _, err := r.Create(ctx, residency.PlaceRequest{AccountID: "new", Country: "DE"})
			return err
		},
		"Lookup":       func() error { _, err := r.Lookup("acme"); return err },
		"BeginMove":    func() error { _, err := r.BeginMove(ctx, "other", "aws-us-west-1"); return err },
		"CompleteMove": func() error { _, err := r.CompleteMove(ctx, m.ID); return err },
		"AbortMove":    func() error { _, err := r.AbortMove(ctx, m2.ID); return err },
		"GrantTransfer": func() error {
			return r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.UK, Reference: "T-2"})
		},
		"RevokeTransfer": func() error { return r.RevokeTransfer(ctx, "acme", "T-1") },
		"Drain":          func() error { return r.Drain(ctx, dc) },
		"Activate":       func() error { return r.Activate(ctx, "linode-us") },
		"Status":         func() error { _, err := r.Status(dc); return err },
		"PlanEvacuation": func() error { _, err := r.PlanEvacuation(ctx, dc); return err },
		"History":        func() error { _, err := r.History(ctx, "acme"); return err },
		"Agreements":     func() error { _, err := r.Agreements("acme"); return err },
		"Verify":         func() error { _, err := r.Verify(ctx); return err },
		"Import": func() error {
			_, err := r.Import(ctx, slices.Values([]residency.ImportRow{{AccountID: "imported", Country: "DE"}}))
			return err
		},
		"Err":   r.Err,
		"Ready": r.Ready,
		"Sync":  func() error { return r.Sync(ctx) },
		"Fence": func() error { return r.Fence(ctx) },
		"GrantAccess": func() error {
			return r.GrantAccess(ctx, residency.Consent{AccountID: "other", SubProcessor: "support-247", Reference: "C-2"})
		},
		"RevokeAccess": func() error { return r.RevokeAccess(ctx, "acme", "C-1") },
		"Object": func() error {
			return r.Object(ctx, residency.Objection{AccountID: "other", SubProcessor: "twilio", Reference: "O-2"})
		},
		"WithdrawObjection": func() error { return r.WithdrawObjection(ctx, "acme", "O-1") },
		"Consents":          func() error { _, err := r.Consents("acme"); return err },
		"Objections":        func() error { _, err := r.Objections("acme"); return err },
		"MayAccess":         func() error { return r.MayAccess("acme", "quality-unit-llc") },
		"SubProcessors":     func() error { _, err := r.SubProcessors("acme"); return err },
		"Delete":            func() error { return r.Delete(ctx, "other", "trial expired") },

		"Checkpoint":       func() error { _, err := r.Checkpoint(ctx); return err },
		"SignedCheckpoint": func() error { _, err := r.SignedCheckpoint(ctx); return err },
		"LogEntries":       func() error { return r.LogEntries(ctx, 0, func(int64, []byte) error { return nil }) },
		"ProveEntry":       func() error { _, err := r.ProveEntry(ctx, 0, 1); return err },
		"ProveExtension":   func() error { _, err := r.ProveExtension(ctx, 0, 1); return err },
	}
	iters := map[string]func() int{
		"Accounts":         func() int { return len(collect(r.Accounts(dc))) },
		"AccountsInRegion": func() int { return len(collect(r.AccountsInRegion(region.EU))) },
		"Moves":            func() int { return len(collect(r.Moves())) },
	}
	others := map[string]func(){
		// Close again is not an error; the catalog is configuration and
		// stays readable.
		"Close": func() {
			if err := r.Close(); err != nil {
				t.Errorf("second Close = %v; want nil", err)
			}
		},
		"Catalog": func() {
			if _, ok := r.Catalog().DataCenter(dc); !ok {
				t.Errorf("Catalog after Close lacks %s", dc)
			}
		},
	}
	typ := reflect.TypeOf(r)
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		t.Run(name, func(t *testing.T) {
			switch {
			case errs[name] != nil:
				if err := errs[name](); !errors.Is(err, residency.ErrClosed) {
					t.Errorf("%s after Close = %v; want ErrClosed", name, err)
				}
			case iters[name] != nil:
				if n := iters[name](); n != 0 {
					t.Errorf("%s after Close yielded %d values; want none", name, n)
				}
			case others[name] != nil:
				others[name]()
			default:
				t.Errorf("method %s is not in the table: say what it does after Close", name)
			}
		})
	}
}

// TestErrAfterIteration: an iteration that started before Close ends
// normally and Err stays nil for it; one after Close yields nothing and Err
// says why.
func TestErrAfterIteration(t *testing.T) {
	r := open(t)
	for _, id := range []string{"a", "b", "c"} {
		place(t, r, id, "DE")
	}
	n := 0
	for range r.AccountsInRegion(region.EU) {
		n++
	}
	if err := r.Err(); n != 3 || err != nil {
		t.Errorf("open Router: %d accounts, Err %v; want 3, nil", n, err)
	}
	r.Close()
	n = 0
	for range r.AccountsInRegion(region.EU) {
		n++
	}
	if err := r.Err(); n != 0 || !errors.Is(err, residency.ErrClosed) {
		t.Errorf("closed Router: %d accounts, Err %v; want 0, ErrClosed", n, err)
	}
}
