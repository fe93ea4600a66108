package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestHistoryCancelled: History on PostgreSQL with a cancelled context
// fails with an error matching the context's.
func TestHistoryCancelled(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t))
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.History(cctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("History(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := s.Trail(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := r.History(ctx, "a"); !errors.Is(err, residency.ErrClosed) {
		t.Errorf("History after Close = %v, want ErrClosed", err)
	}
}

// TestTrails: Trails gives each account's trail as Trail does, in the
// order given, across chunks of a thousand accounts, an empty one for an
// account the store does not hold, and stops at fn's error, which it
// returns as it is.
func TestTrails(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t))
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const n = 2100
	if _, err := r.Import(ctx, func(yield func(residency.ImportRow) bool) {
		for i := range n {
			if !yield(residency.ImportRow{AccountID: fmt.Sprintf("acct-%04d", i), Country: "US"}) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	// Longer trails for some, in each chunk.
	for _, id := range []string{"acct-0000", "acct-0999", "acct-1000", "acct-2099"} {
		moveWithinUS(t, r, id)
	}
	var ids []string
	for i := n - 1; i >= 0; i-- {
		ids = append(ids, fmt.Sprintf("acct-%04d", i))
	}
	ids = append(ids, "missing", "acct-0000")

	want := make(map[string][]residency.Event)
	for _, id := range ids {
		h, err := s.Trail(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = h
	}
	if len(want["acct-0000"]) != 3 || len(want["acct-0001"]) != 1 || want["missing"] != nil {
		t.Fatalf("Trail gave %d, %d and %d events, want 3, 1 and none", len(want["acct-0000"]), len(want["acct-0001"]), len(want["missing"]))
	}
	var order []string
	err = s.Trails(ctx, ids, func(id string, trail []residency.Event) error {
		order = append(order, id)
		if diff := cmp.Diff(want[id], trail); diff != "" {
			t.Errorf("Trails gave account %q (-Trail +Trails):\n%s", id, diff)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids, order); diff != "" {
		t.Errorf("Trails called fn in another order (-given +called):\n%s", diff)
	}

	stop := errors.New("stop")
	calls := 0
	err = s.Trails(ctx, ids, func(string, []residency.Event) error {
		if calls++; calls == 1500 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 1500 {
		t.Errorf("Trails with fn failing at its 1500th call = %v after %d calls, want fn's error as it is after 1500", err, calls)
	}
	s.Close()
	if err := s.Trails(ctx, ids, func(string, []residency.Event) error { return nil }); !errors.Is(err, postgres.ErrClosed) {
		t.Errorf("Trails after Close = %v, want ErrClosed", err)
	}
}

// TestTrailWithAGapIsCorrupt: a trail whose versions skip one (an event
// row deleted behind domicile's back, its foreign key switched off for
// the deletion) is refused with ErrCorrupt by Trail, Trails and the
// Router's History, whether the gap is at the trail's start or in its
// middle, and never handed out cut short; the other accounts' trails still
// read.
func TestTrailWithAGapIsCorrupt(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, id := range []string{"start", "middle", "whole"} {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "US"}); err != nil {
			t.Fatal(err)
		}
		moveWithinUS(t, r, id) // and back: five events
		moveWithinUS(t, r, id)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The events' foreign key (a trail's event follows the one before)
	// would refuse the deletions: switch triggers, which check it, off.
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		t.Fatal(err)
	}
	for id, version := range map[string]int{"start": 1, "middle": 2} {
		tag, err := conn.Exec(ctx, "DELETE FROM domicile.events WHERE account = $1 AND version = $2", id, version)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("deleting event %d of %q: %v, %d rows", version, id, err, tag.RowsAffected())
		}
	}

	for _, id := range []string{"start", "middle"} {
		if h, err := s.Trail(ctx, id); !errors.Is(err, residency.ErrCorrupt) {
			t.Errorf("Trail(%q) with a gap = %d events, %v; want ErrCorrupt", id, len(h), err)
		}
		if h, err := r.History(ctx, id); !errors.Is(err, residency.ErrCorrupt) {
			t.Errorf("History(%q) with a gap = %d events, %v; want ErrCorrupt", id, len(h), err)
		}
		var called []string
		err := s.Trails(ctx, []string{"whole", id}, func(id string, _ []residency.Event) error {
			called = append(called, id)
			return nil
		})
		if !errors.Is(err, residency.ErrCorrupt) || len(called) != 0 {
			t.Errorf("Trails(whole, %q) with a gap = %v after calls for %q; want ErrCorrupt before any call", id, err, called)
		}
	}
	if h, err := s.Trail(ctx, "whole"); err != nil || len(h) != 5 {
		t.Errorf("Trail(whole) = %d events, %v; want 5 and no error", len(h), err)
	}
}

// moveWithinUS moves US account id to the other US data center of the
// default catalog: two events on its trail.
func moveWithinUS(t *testing.T, r *residency.Router, id string) {
	t.Helper()
	ctx := context.Background()
	p, err := r.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	to := "aws-us-west-1"
	if p.DataCenter == to {
		to = "linode-us"
	}
	m, err := r.BeginMove(ctx, id, to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
}
