package postgres_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// stallOnChanges is a tracer that stalls the proxy when its connection is
// about to read the changes log, once armed.
type stallOnChanges struct {
	p     *pgtest.StallingProxy
	armed *atomic.Bool
}

func (h stallOnChanges) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if h.armed.Load() && strings.Contains(d.SQL, "LEFT JOIN LATERAL") {
		h.p.Stall()
	}
	return ctx
}

func (stallOnChanges) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestSyncEndsWhenTheRouterCloses: Sync waits for this Router's follow
// goroutine (waitApplied, which fence now shares) with nothing but the
// caller's context; fence stops when the Router closes (it watches
// f.alive), Sync does not. Here Sync waits for another Router's write
// while the follow goroutine's read of the log hangs (a proxy that stops
// forwarding), and the Router is closed meanwhile: its follow goroutine
// stops, and nothing will ever apply the write.
//
// Observed: Sync, whose context has no deadline, still waits 10 s after
// Close returned (it would wait for ever; the test then cancels it).
// Expected: Sync returns once the Router is closed, with an error
// matching ErrClosed, as Fence does.
func TestSyncEndsWhenTheRouterCloses(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	other := routertest.OnPostgres(t, dsn, nil)
	var armed atomic.Bool
	pool, proxy := proxiedPool(t, dsn, func(p *pgtest.StallingProxy) pgx.QueryTracer { return stallOnChanges{p, &armed} })
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool), postgres.WithPollOnly(), postgres.WithLease(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s), residency.WithWriteTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Place(ctx, residency.PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	synced := make(chan error, 1)
	go func() { synced <- r.Sync(sctx) }()
	for end := time.Now().Add(time.Minute); !proxy.Stalled(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the follow goroutine did not read the log within a minute")
		}
	}
	select {
	case err := <-synced:
		t.Fatalf("Sync returned (%v) while the follow goroutine's read hangs", err)
	default:
	}
	r.Close() // its error (leaving the members through the stalled proxy) does not matter here
	select {
	case err := <-synced:
		if err == nil {
			t.Errorf("Sync after Close = nil; the write it waited for was never applied")
		}
	case <-time.After(10 * time.Second):
		cancel()
		t.Errorf("Sync (no deadline) has not returned 10 s after Close returned; it returned %v only once its context was cancelled", <-synced)
	}
}
