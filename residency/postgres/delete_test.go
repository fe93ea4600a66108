package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
)

// TestRouterDeletes checks that a deletion is kept: after reopening, the
// account is gone for Lookup, its trail stays, and the ID placed afresh
// goes on from its version; consents and objections are kept too.
func TestRouterDeletes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	open := func() *residency.Router { return routertest.OnPostgres(t, dsn, nil) }
	r := open()
	for _, id := range []string{"gone", "kept"} {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"gone", "kept"} {
		if err := r.GrantAccess(ctx, residency.Consent{AccountID: id, SubProcessor: "support-247", Reference: "C-1"}); err != nil {
			t.Fatalf("GrantAccess on PostgreSQL: %v", err)
		}
	}
	if err := r.Object(ctx, residency.Objection{AccountID: "kept", SubProcessor: "twilio", Reference: "O-1"}); err != nil {
		t.Fatalf("Object on PostgreSQL: %v", err)
	}
	if err := r.Delete(ctx, "gone", "trial expired"); err != nil {
		t.Fatal(err)
	}
	trail, err := r.History(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	r = open()
	defer r.Close()
	if _, err := r.Lookup("gone"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("Lookup of the deleted account after reopening = %v, want ErrNotFound", err)
	}
	if err := r.MayAccess("kept", "support-247"); err != nil {
		t.Errorf("MayAccess with the consent after reopening = %v, want nil", err)
	}
	if err := r.MayAccess("kept", "twilio"); !errors.Is(err, residency.ErrObjected) {
		t.Errorf("MayAccess with the objection after reopening = %v, want ErrObjected", err)
	}
	got, err := r.History(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(trail, got); diff != "" {
		t.Errorf("the deleted account's trail after reopening mismatch (-want +got):\n%s", diff)
	}
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "gone", Country: "FR"})
	if err != nil {
		t.Fatal(err)
	}
	if want := trail[len(trail)-1].Version + 1; p.Version != want {
		t.Errorf("placing the deleted ID afresh: version %d, want %d", p.Version, want)
	}
}
