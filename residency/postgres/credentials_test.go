package postgres_test

import (
	"cmp"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestListenerWithPoolCredentials: a backend whose database password is
// not in its connection string, but fetched for each new connection by
// the pool's BeforeConnect hook (cloud IAM tokens such as RDS or Cloud
// SQL IAM authentication, Vault's dynamic credentials), hands the Store
// its pool with WithPool, whose doc says "Listeners open their own
// connection with the pool's connection settings". The pool connects;
// the Store's Listener must connect and listen too.
//
// Observed: Listening() stays false, with "postgres: listener: ...
// failed SASL auth: FATAL: password authentication failed for user
// \"postgres\" (SQLSTATE 28P01)" (or "no password" for the same reason):
// the Listener copies the pool's ConnConfig and ignores its BeforeConnect
// (and AfterConnect) hooks. Every Router on such a pool silently falls
// back to polling (WithPollInterval, 1 s by default) instead of the
// milliseconds the README promises, and keeps retrying a failing login
// every few seconds, which auth logs and lockout policies notice.
func TestListenerWithPoolCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const password = "s3cret-token"
	srv := startOwnServerWith(t, ownServerConfig{password: password})
	cfg, err := pgxpool.ParseConfig(srv.dsn()) // no password in it
	if err != nil {
		t.Fatal(err)
	}
	cfg.BeforeConnect = func(ctx context.Context, c *pgx.ConnConfig) error {
		c.Password = password // as a token provider would
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool))
	if err != nil {
		t.Fatalf("Open with the pool: %v", err)
	}
	defer s.Close()
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatalf("residency.Open: %v", err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acct", Country: "DE"}); err != nil {
		t.Fatalf("Place: %v", err)
	}
	l, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var last error
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		ok, err := l.Listening()
		if ok {
			return
		}
		last = err
	}
	t.Errorf("the Listener of a Store on a pool that logs in through BeforeConnect did not listen within 10 s: %v", cmp.Or(last, errors.New("no error reported")))
}
