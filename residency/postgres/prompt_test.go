package postgres_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The Store is a residency.PromptStore: a Router waits for its calls, so
// every one of them must return soon after its context is done, whatever
// the server does meanwhile.

// returnsBy runs call with a context that ends after 200 ms and fails the
// test unless it returns within a few seconds; unblock, if not nil, lets a
// call that did not return finish.
func returnsBy(t *testing.T, what string, call func(context.Context) error, unblock func()) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done <- call(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Errorf("%s with a deadline of 200 ms has not returned after 5 s", what)
		if unblock != nil {
			unblock()
		}
		return <-done
	}
}

// TestPromptWhileExplainingAConflict: an Apply refused as stale explains
// the conflict with a query of its own, within the Apply's deadline: a
// server that does not answer that query (here, a table locked by another
// session) cannot hold Apply past it.
func TestPromptWhileExplainingAConflict(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE domicile.accounts IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	c := placed("a", "linode-eu", at)
	c.Placement.Version, c.Event.Version = 0, 0 // stale: the conflict is explained
	err = returnsBy(t, "Apply of a stale change", func(ctx context.Context) error {
		return s.Apply(ctx, []residency.Change{c})
	}, func() { tx.Rollback(ctx) })
	if !errors.Is(err, residency.ErrConflict) {
		t.Errorf("Apply of a stale change = %v, want ErrConflict", err)
	}
}

// proxiedPool returns a pool whose connections to dsn's server go through
// a proxy that stalls when told to (or when tracer, if not nil, says so),
// and the proxy. The pool closes, after the proxy lets go of what it holds,
// when the test ends.
func proxiedPool(t *testing.T, dsn string, tracer func(*pgtest.StallingProxy) pgx.QueryTracer) (*pgxpool.Pool, *pgtest.StallingProxy) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewStallingProxy(t, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = "127.0.0.1", uint16(proxy.Addr().(*net.TCPAddr).Port), nil
	if tracer != nil {
		cfg.ConnConfig.Tracer = tracer(proxy)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	t.Cleanup(proxy.Release) // runs first: the pool's connections are let go
	return pool, proxy
}

// stallOnRollback is a tracer that stalls the proxy when its connection
// is about to send "rollback".
type stallOnRollback struct{ p *pgtest.StallingProxy }

func (h stallOnRollback) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if d.SQL == "rollback" {
		h.p.Stall()
	}
	return ctx
}

func (stallOnRollback) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestPromptWhenTheServerHangs: DataCenters, which the Router calls to
// learn the outcome of a failed write, ends its read-only transaction
// within its deadline although the server stops answering right then (a
// proxy between them stops forwarding as the rollback is sent: no signal
// to the server's process, so the test runs the same on any server).
func TestPromptWhenTheServerHangs(t *testing.T) {
	dsn := pgtest.Database(t)
	openStore(t, dsn).Close() // creates the tables
	pool, proxy := proxiedPool(t, dsn, func(p *pgtest.StallingProxy) pgx.QueryTracer { return stallOnRollback{p} })
	s := openStore(t, "", postgres.WithPool(pool))
	returnsBy(t, "DataCenters", func(ctx context.Context) error {
		_, err := s.DataCenters(ctx)
		return err
	}, proxy.Release)
	if !proxy.Stalled() {
		t.Fatal("DataCenters sent no rollback: the test stalled nothing")
	}
}

// TestCloseWhenTheServerHangs: a Router whose database stops answering
// still closes within seconds: leaving the members is best effort and
// bounded on its own, not by the write timeout (30 s by default), which
// with the rest of Close would outlast an orchestrator's grace period.
func TestCloseWhenTheServerHangs(t *testing.T) {
	ctx := context.Background()
	pool, proxy := proxiedPool(t, pgtest.Database(t), nil)
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	proxy.Stall()
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close returned %v after %v", err, time.Since(start))
		// It could not leave the members: it must say so, and why.
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "could not leave") {
			t.Errorf("Close = %v; want an error that says it could not leave, wrapping context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("Close has not returned 10 s after the server stopped answering")
		proxy.Release()
		<-closed
	}
}

// TestWriteOnHungServerEndsByDeadline: on a database that stops answering
// (a proxy between them stops forwarding), a Place whose caller gives it a
// second returns by then, its outcome unknown (ErrUnavailable and
// context.DeadlineExceeded), not after the write timeout (a minute here;
// before, it took one for the write and another for reading it back).
// Once the database answers again, the Router reads the account back,
// writes again and agrees with a Router opened afresh.
func TestWriteOnHungServerEndsByDeadline(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	pool, proxy := proxiedPool(t, dsn, nil)
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s), residency.WithWriteTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	proxy.Stall()
	placed := make(chan error, 1)
	go func() {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := r.Place(dctx, residency.PlaceRequest{AccountID: "b", Country: "DE"})
		placed <- err
	}()
	select {
	case err := <-placed:
		if !errors.Is(err, residency.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Place on a hung database = %v; want ErrUnavailable and context.DeadlineExceeded", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Place with a deadline of a second has not returned 30 s after the database stopped answering")
	}
	proxy.Resume()
	// The first tries may meet connections the outage left broken.
	eventually(t, "a Place once the database answers again", func() error {
		_, err := r.Place(ctx, residency.PlaceRequest{AccountID: "c", Country: "DE"})
		return err
	})
	fresh, err := residency.Open(ctx, residency.WithStore(openStore(t, dsn)))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		got, gerr := r.Lookup(id)
		want, werr := fresh.Lookup(id)
		if (gerr == nil) != (werr == nil) || got != want {
			t.Errorf("Lookup(%q) = %+v, %v on the Router that wrote; %+v, %v on a fresh one", id, got, gerr, want, werr)
		}
	}
}

// stallOnQuery is a tracer that stalls the proxy, once armed, when its
// connection is about to send a query that match accepts, and then calls
// sent.
type stallOnQuery struct {
	p     *pgtest.StallingProxy
	armed *atomic.Bool
	match func(sql string) bool
	sent  func()
}

func (h stallOnQuery) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if h.armed.Load() && h.match(d.SQL) {
		h.p.Stall()
		h.sent()
	}
	return ctx
}

func (stallOnQuery) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// endsAtClose checks that call, a read of r's store under a context
// without end, returns ErrClosed once r is closed while the database does
// not answer the query that match accepts (a proxy between them stops
// forwarding as it is sent). Before that query, it places account acme.
func endsAtClose(t *testing.T, what string, match func(sql string) bool, call func(context.Context, *residency.Router) error) {
	t.Helper()
	ctx := context.Background()
	var armed atomic.Bool
	sent := make(chan struct{})
	var once sync.Once
	pool, proxy := proxiedPool(t, pgtest.Database(t), func(p *pgtest.StallingProxy) pgx.QueryTracer {
		return stallOnQuery{p, &armed, match, func() { once.Do(func() { close(sent) }) }}
	})
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	called := make(chan error, 1)
	go func() { called <- call(ctx, r) }()
	<-sent
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-called:
		if !errors.Is(err, residency.ErrClosed) {
			t.Errorf("%s ended by Close = %v; want ErrClosed", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s still waits for the database 10 s after Close began", what)
		proxy.Release()
		<-called
	}
	<-closed
}

// TestSyncEndsAtClose: a Sync whose read of the head the database does
// not answer (a proxy between them stops forwarding) returns ErrClosed
// once the Router is closed, as documented, though its own context has
// no end.
func TestSyncEndsAtClose(t *testing.T) {
	endsAtClose(t, "Sync", func(sql string) bool {
		return strings.HasPrefix(sql, "SELECT pos FROM ") && strings.HasSuffix(sql, ".head")
	}, func(ctx context.Context, r *residency.Router) error { return r.Sync(ctx) })
}

// TestHistoryEndsAtClose: a History whose read of the trail the database
// does not answer returns ErrClosed once the Router is closed, as Sync
// does, though its own context has no end.
func TestHistoryEndsAtClose(t *testing.T) {
	endsAtClose(t, "History", func(sql string) bool {
		return strings.Contains(sql, ".events WHERE account = ANY(")
	}, func(ctx context.Context, r *residency.Router) error {
		_, err := r.History(ctx, "acme")
		return err
	})
}

// TestCheckpointEndsAtClose: a Checkpoint whose read of the stored
// hashes the database does not answer (while it holds the lock that
// serialises the extensions of the stored hashes, which the Store's
// Close waits for through its hashing goroutine) returns ErrClosed once
// the Router is closed, as History does.
func TestCheckpointEndsAtClose(t *testing.T) {
	endsAtClose(t, "Checkpoint", func(sql string) bool {
		return strings.HasPrefix(sql, "SELECT coalesce(max(idx) + 1, 0) FROM ")
	}, func(ctx context.Context, r *residency.Router) error {
		_, err := r.Checkpoint(ctx)
		return err
	})
}
