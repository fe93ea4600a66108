package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// hookedStore is a PostgreSQL store that runs a hook right before its
// Router's member joins and right after it has left, and whose Wakeups
// never wake (the follow goroutine then reads the log only on its
// ticker, a quarter of the lease): what a Router answers from there is
// what Open or Close left in its memory.
type hookedStore struct {
	*postgres.Store
	beforeJoin func()
	afterLeave func()
}

func (s *hookedStore) JoinMembership(ctx context.Context, name string, applied uint64) (residency.Membership, time.Time, error) {
	if f := s.beforeJoin; f != nil {
		s.beforeJoin = nil
		f()
	}
	m, end, err := s.Store.JoinMembership(ctx, name, applied)
	if err != nil {
		return nil, end, err
	}
	return hookedMember{m, s}, end, nil
}

func (s *hookedStore) Wakeups(ctx context.Context) (<-chan struct{}, func(), error) {
	_, stop, err := s.Store.Wakeups(ctx)
	return make(chan struct{}), stop, err
}

type hookedMember struct {
	residency.Membership
	s *hookedStore
}

func (m hookedMember) Leave(ctx context.Context) error {
	err := m.Membership.Leave(ctx)
	if f := m.s.afterLeave; err == nil && f != nil {
		f()
	}
	return err
}

// movedAway places acme through r, begins its move away and returns the
// move and its target.
func movedAway(t *testing.T, r *residency.Router) (residency.Move, string) {
	t.Helper()
	ctx := context.Background()
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	to := "linode-eu"
	if p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	m, err := r.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}
	return m, to
}

// TestOpenDuringAFence: a Router whose Open loaded its snapshot before
// another Router's CompleteMove committed, and joined the members after
// that CompleteMove's fence stopped counting members (so the fence did
// not wait for it), answers the move's target from the moment Open
// returns.
func TestOpenDuringAFence(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	mover := routertest.OnPostgres(t, dsn, nil)
	m, to := movedAway(t, mover)
	s := &hookedStore{Store: openStore(t, dsn, postgres.WithLease(time.Minute))}
	s.beforeJoin = func() {
		// The snapshot is loaded; the member has not joined.
		if _, err := mover.CompleteMove(ctx, m.ID); err != nil {
			t.Errorf("CompleteMove: %v", err)
		}
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.Lookup("acme"); err != nil || got.DataCenter != to {
		t.Errorf("Lookup right after Open, the CompleteMove fenced before it joined = %q, %v; want %s", got.DataCenter, err, to)
	}
}

// TestCloseLeavesAfterTheReadsStop: once a closing Router has left the
// members, other Routers' fences no longer wait for it, so it must not
// answer from its memory any more, which its stopped follow goroutine no
// longer updates.
func TestCloseLeavesAfterTheReadsStop(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	mover := routertest.OnPostgres(t, dsn, nil)
	m, to := movedAway(t, mover)
	s := &hookedStore{Store: openStore(t, dsn)}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.Lookup("acme"); err != nil || got.DataCenter == to {
		t.Fatalf("Lookup before the move = %q, %v; want its source", got.DataCenter, err)
	}
	var lookedUp bool
	s.afterLeave = func() {
		// The member has left; Close has not returned.
		if _, err := mover.CompleteMove(ctx, m.ID); err != nil {
			t.Errorf("CompleteMove: %v", err)
		}
		lookedUp = true
		if got, err := r.Lookup("acme"); err == nil && got.DataCenter != to {
			t.Errorf("Lookup on a closing Router that left the members, after the CompleteMove = %q, nil; want %s or an error", got.DataCenter, to)
		} else if err != nil && !errors.Is(err, residency.ErrClosed) {
			t.Errorf("Lookup on a closing Router that left the members = %v; want ErrClosed", err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !lookedUp {
		t.Fatal("Close did not leave the members")
	}
}
