package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// gatedChanges is the postgres Store (a PromptStore still) whose Changes,
// once armed and when called by the leader's readToHead, reads the log,
// says so on leaderRead, and waits for leaderGo before handing what it
// read to the Router: a database round trip that takes longer than the
// follow goroutine's. The follow goroutine's reads say how far they read
// on followRead.
type gatedChanges struct {
	*postgres.Store
	armed      atomic.Bool
	leaderRead chan uint64
	leaderGo   chan struct{}
	followRead chan uint64
}

func inReadToHead() bool {
	buf := make([]byte, 64<<10)
	return bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("readToHead"))
}

func (g *gatedChanges) Changes(ctx context.Context, after uint64, fn func(uint64, residency.Change) error) (uint64, error) {
	if inReadToHead() && g.armed.CompareAndSwap(true, false) {
		type logged struct {
			pos uint64
			c   residency.Change
		}
		var got []logged
		last, err := g.Store.Changes(ctx, after, func(pos uint64, c residency.Change) error {
			got = append(got, logged{pos, c})
			return nil
		})
		g.leaderRead <- last
		<-g.leaderGo
		for _, l := range got {
			if err := fn(l.pos, l.c); err != nil {
				return l.pos - 1, err
			}
		}
		return last, err
	}
	last, err := g.Store.Changes(ctx, after, fn)
	select {
	case g.followRead <- last:
	default:
	}
	return last, err
}

// TestReadToHeadSlowerThanFollowerKeepsApplied: the leader's readToHead
// and the follow goroutine both read the log from the position read to,
// and both append what they read to the inbox. When the follow goroutine
// read further and appended first (readToHead's query took longer), the
// inbox ends with the shorter read: applied must still advance to the
// furthest position it holds. It advanced to the last element's, below
// the head, with fetched at the head: nothing read the log again, Sync
// waited until its context ended, and the lease renewals reported the low
// position, holding up other Routers' fences. Found by a review.
func TestReadToHeadSlowerThanFollowerKeepsApplied(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a := routertest.OnPostgres(t, dsn, nil)
	s, err := postgres.Open(ctx, dsn, postgres.WithPollOnly(), postgres.WithPollInterval(time.Hour), postgres.WithLease(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedChanges{Store: s, leaderRead: make(chan uint64, 1), leaderGo: make(chan struct{}), followRead: make(chan uint64, 16)}
	b, err := residency.Open(ctx, residency.WithStore(g))
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			close(g.leaderGo)
		}
	}
	t.Cleanup(func() { release(); b.Close() })
	// The follow goroutine reads the log once at its start: let it.
	select {
	case <-g.followRead:
	case <-time.After(10 * time.Second):
		t.Fatal("B's follow goroutine did not read the log at its start")
	}

	// A places an account B does not know of yet; B refuses a write of
	// an account it knows nowhere (refused again after reading the log,
	// so that B writes nothing itself), which reads the log to the head.
	if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: "p0", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	g.armed.Store(true)
	grant := make(chan error, 1)
	go func() {
		grant <- b.GrantAccess(ctx, residency.Consent{AccountID: "nobody", SubProcessor: "support-247", Reference: "C-1"})
	}()
	var leaderLast uint64
	select {
	case leaderLast = <-g.leaderRead:
	case <-time.After(10 * time.Second):
		t.Fatal("no read of the log by readToHead (renamed? inReadToHead looks for it on the stack)")
	}

	// Meanwhile A places more, and B's follow goroutine reads it all.
	for _, id := range []string{"p1", "p2"} {
		if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	synced := make(chan error, 1)
	go func() { synced <- b.Sync(sctx) }() // wakes the follow goroutine
	for last := uint64(0); last <= leaderLast; {
		select {
		case last = <-g.followRead:
		case <-time.After(10 * time.Second):
			t.Fatal("B's follow goroutine did not read the log")
		}
	}
	// The follow goroutine appends to the inbox right after its read
	// returns; give it the moment (too short a wait makes the test pass,
	// never fail, wrongly).
	time.Sleep(200 * time.Millisecond)
	release()

	if err := <-grant; !errors.Is(err, residency.ErrNotFound) {
		t.Fatalf("GrantAccess on B of an unknown account = %v, want ErrNotFound", err)
	}
	if err := <-synced; err != nil {
		t.Errorf("Sync on B once it read A's placements = %v, want nil (readToHead read to position %d)", err, leaderLast)
	}
	for _, id := range []string{"p0", "p1", "p2"} {
		if _, err := b.Lookup(id); err != nil {
			t.Errorf("Lookup(%s) on B = %v (memory holds what was read)", id, err)
		}
	}
}
