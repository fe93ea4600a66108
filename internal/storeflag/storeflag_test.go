package storeflag

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

func TestIsPostgresAndDescribe(t *testing.T) {
	tests := []struct {
		db       string
		postgres bool
		describe string
	}{
		{"domicile.db", false, "domicile.db"},
		{"/var/lib/postgres://x", false, "/var/lib/postgres://x"},
		{"postgres://app@db/helpdesk", true, "postgres://app@db/helpdesk"},
		{"postgresql://app:secret@db:5432/helpdesk?sslmode=disable", true, "postgresql://app:xxxxx@db:5432/helpdesk?sslmode=disable"},
	}
	for _, tt := range tests {
		got := struct {
			Postgres bool
			Describe string
		}{IsPostgres(tt.db), Describe(tt.db)}
		want := struct {
			Postgres bool
			Describe string
		}{tt.postgres, tt.describe}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.db, diff)
		}
	}
}

// TestOpen opens a file for a path, and refuses a bad PostgreSQL URL at
// once, without connecting.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Errorf("Sync on a file store: %v", err)
	}
	r.Close()
	if _, err := Open(ctx, "postgres://app@db:notaport/x"); err == nil {
		t.Error("Open of a bad URL succeeded")
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open of a bad URL waited: %v", err)
	}
}
