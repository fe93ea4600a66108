package residency

import (
	"context"
	"errors"
	"testing"
)

// TestStaleGateStopsEveryMemoryRead checks that the reads that decide
// where data lives and who may touch it all answer ErrStale while the
// lease has run out, and answer again once it is renewed.
func TestStaleGateStopsEveryMemoryRead(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.Place(ctx, PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string]func() error{
		"Lookup":        func() error { _, err := r.Lookup("acme"); return err },
		"MayAccess":     func() error { return r.MayAccess("acme", string(p.Provider)) },
		"SubProcessors": func() error { _, err := r.SubProcessors("acme"); return err },
	}
	r.gate.Or(gateStale)
	for name, read := range reads {
		if err := read(); !errors.Is(err, ErrStale) {
			t.Errorf("%s with the lease run out = %v, want ErrStale", name, err)
		}
	}
	r.gate.And(^gateStale)
	for name, read := range reads {
		if err := read(); err != nil {
			t.Errorf("%s once renewed = %v, want nil", name, err)
		}
	}
}
