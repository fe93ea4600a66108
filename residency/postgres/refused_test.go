package postgres_test

import (
	"context"
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

// TestRefusedConnectionSaysNothingCommitted: an Apply whose connection
// could not even be made (the server refuses connections, as while it
// restarts) sent nothing, so its error must say that nothing was
// committed, not that the changes "may or may not have been committed",
// which makes a Router treat the write's outcome as unknown and refuse
// every later write until it can read the store back.
func TestRefusedConnectionSaysNothingCommitted(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
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
	var down atomic.Bool
	var d net.Dialer
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			network, addr = "tcp", closed
		}
		return d.DialContext(ctx, network, addr)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
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
	if !strings.Contains(err.Error(), "nothing committed") || strings.Contains(err.Error(), "may or may not") {
		t.Errorf("Apply with connections refused = %v; want it to say that nothing was committed", err)
	}
}
