package residency_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/residency"
)

// TestHugeInputIsNotEchoed: a migration script reads data center IDs and
// references from CSV files an operator wrote; a broken file can put a
// megabyte in one field. Each call refuses it with the error errors.Is
// matches and changes nothing, and most name the bad value cut short
// (Drain, Place and CompleteMove quote at most a few dozen bytes of it).
//
// Expected: every refusal's text stays short, whatever the input's size
// (the migrate tool prints it as one line of its report). Observed:
// BeginMove, PlanEvacuation and Status with an unknown 1 MiB data center
// ID, RevokeTransfer with a 1 MiB reference and MayAccess with a 1 MiB
// sub-processor ID return errors of over a megabyte, the whole input
// quoted.
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
