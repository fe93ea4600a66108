package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestWaitApplied: a fence waits for every live member but the one
// excepted to apply the position, and no longer.
func TestWaitApplied(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t))
	a, _, err := s.Join(ctx, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := s.Join(ctx, "b", 0)
	if err != nil {
		t.Fatal(err)
	}
	pos, err := s.Append(ctx, []residency.Change{placed("x", "linode-eu", at)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := s.WaitApplied(short, pos, a.ID()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitApplied while b is behind = %v, want DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.WaitApplied(ctx, pos, a.ID()) }()
	if _, err := b.Renew(ctx, pos); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitApplied after b applied = %v", err)
	}
	if _, err := a.Renew(ctx, pos+5); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Renew(ctx, pos); err != nil { // never goes back
		t.Fatal(err)
	}
	ms, err := s.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	applied := map[string]uint64{}
	for _, m := range ms {
		applied[m.Name] = m.Applied
		if !m.Live {
			t.Errorf("member %s is not live", m.Name)
		}
	}
	if applied["a"] != pos+5 || applied["b"] != pos {
		t.Errorf("applied positions %v, want a %d, b %d", applied, pos+5, pos)
	}

	if err := b.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Renew(ctx, pos); !errors.Is(err, postgres.ErrLeft) {
		t.Errorf("Renew after Leave = %v, want ErrLeft", err)
	}
	if err := s.WaitApplied(ctx, pos+5, ""); err != nil {
		t.Errorf("WaitApplied with only a, which has applied: %v", err)
	}
}

// TestWaitAppliedLeaseEnds: a member that stops renewing holds a fence up
// until its lease ends by the database's clock, and then no longer; its
// own idea of its lease ends no later.
func TestWaitAppliedLeaseEnds(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.Database(t), postgres.WithLease(300*time.Millisecond))
	m, deadline, err := s.Join(ctx, "cut off", 0)
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.Members(ctx)
	if err != nil || len(before) != 1 || !before[0].Live {
		t.Fatalf("Members = %+v, %v; want one live member", before, err)
	}
	if deadline.After(before[0].Expires) {
		t.Errorf("the member's own lease ends at %v, after the database's %v", deadline, before[0].Expires)
	}
	if err := s.WaitApplied(ctx, 1, ""); err != nil {
		t.Fatal(err)
	}
	after, err := s.Members(ctx)
	if err != nil || len(after) != 1 || after[0].Live {
		t.Fatalf("WaitApplied returned with Members = %+v, %v; want the member's lease over", after, err)
	}
	// Renewing brings it back, and the fence waits for it again.
	if _, err := m.Renew(ctx, 0); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := s.WaitApplied(short, 1, ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitApplied after renewing = %v, want DeadlineExceeded", err)
	}
}
