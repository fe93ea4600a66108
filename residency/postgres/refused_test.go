package postgres_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// refusingPool returns a pool on dsn whose new connections are refused
// while down is set (they go to a port that refuses them, as a server
// does while it restarts).
func refusingPool(t *testing.T, dsn string) (pool *pgxpool.Pool, down *atomic.Bool) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	// A port that refuses connections: listened on, then closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	down = new(atomic.Bool)
	var d net.Dialer
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			network, addr = "tcp", closed
		}
		return d.DialContext(ctx, network, addr)
	}
	if pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, down
}

// TestRefusedConnectionSaysNothingCommitted: an Apply whose connection
// could not even be made (the server refuses connections, as while it
// restarts) sent nothing, so its error must say that nothing was
// applied (residency.ErrStoreFailed), not that the changes "may or may
// not have been committed", which makes a Router treat the write's
// outcome as unknown and refuse every later write until it can read the
// store back.
func TestRefusedConnectionSaysNothingCommitted(t *testing.T) {
	ctx := context.Background()
	pool, down := refusingPool(t, pgtest.Database(t))
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Apply(ctx, []residency.Change{placed("before", "linode-eu", at)}); err != nil {
		t.Fatal(err)
	}

	down.Store(true)
	pool.Reset() // the server is gone: no connection is left to reuse
	err = s.Apply(ctx, []residency.Change{placed("refused", "linode-eu", at.Add(time.Second))})
	if err == nil {
		t.Fatal("Apply with connections refused succeeded")
	}
	if !errors.Is(err, residency.ErrStoreFailed) || strings.Contains(err.Error(), "may or may not") {
		t.Errorf("Apply with connections refused = %v; want ErrStoreFailed, saying that nothing was applied", err)
	}
}

// TestRouterWriteRefusedConnection: a Router's write whose connection
// the server refused fails with ErrStoreFailed, saying that it was not
// applied, with no reading back; the next write once the server takes
// connections again succeeds at once.
func TestRouterWriteRefusedConnection(t *testing.T) {
	ctx := context.Background()
	pool, down := refusingPool(t, pgtest.Database(t))
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "before", Country: "DE"}); err != nil {
		t.Fatal(err)
	}

	down.Store(true)
	pool.Reset()
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "refused", Country: "DE"})
	if !errors.Is(err, residency.ErrStoreFailed) || errors.Is(err, residency.ErrUnavailable) || strings.Contains(err.Error(), "unknown") {
		t.Errorf("Place with connections refused = %+v, %v; want ErrStoreFailed, not an unknown outcome", p, err)
	}
	if got, err := r.Lookup("refused"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("Lookup of the refused account = %+v, %v; want ErrNotFound", got, err)
	}

	down.Store(false)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "after", Country: "DE"}); err != nil {
		t.Errorf("Place once connections are taken again = %v; want it placed", err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Lookup("refused"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("Lookup of the refused account after Sync = %+v, %v; want ErrNotFound", got, err)
	}
}
