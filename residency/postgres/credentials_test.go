package postgres_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	gocmp "github.com/google/go-cmp/cmp"
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
// Fixed: the Listener's connection goes through the pool's BeforeConnect
// and AfterConnect hooks (TestListenerRunsPoolHooks).
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

// TestListenerRunsPoolHooks: the Listener's connection goes through the
// pool's AfterConnect hook too (where programs register types or set up
// their sessions), once BeforeConnect has run on it, and an error of
// either hook is what Listening reports.
func TestListenerRunsPoolHooks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dsn := pgtest.Database(t)
	for _, tc := range []struct {
		name    string
		failing string // the hook that fails for the Listener's connection, if any
	}{
		{name: "both hooks run"},
		{name: "BeforeConnect fails", failing: "BeforeConnect"},
		{name: "AfterConnect fails", failing: "AfterConnect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := pgxpool.ParseConfig(dsn)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var calls []string // the hooks run for the Listener's connection
			listener := func(c *pgx.ConnConfig) bool { return c.RuntimeParams["application_name"] == "domicile listener" }
			cfg.BeforeConnect = func(ctx context.Context, c *pgx.ConnConfig) error {
				if !listener(c) {
					return nil
				}
				c.RuntimeParams["search_path"] = "set_by_before_connect"
				mu.Lock()
				calls = append(calls, "BeforeConnect")
				mu.Unlock()
				if tc.failing == "BeforeConnect" {
					return errors.New("no token today")
				}
				return nil
			}
			cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
				if !listener(c.Config()) {
					return nil
				}
				var sp string
				if err := c.QueryRow(ctx, "SHOW search_path").Scan(&sp); err != nil {
					return err
				}
				mu.Lock()
				calls = append(calls, "AfterConnect on "+sp)
				mu.Unlock()
				if tc.failing == "AfterConnect" {
					return errors.New("no types today")
				}
				return nil
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
			l, err := s.Listen(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var ok bool
			var lerr error
			eventually(t, "the Listener listens or reports an error", func() error {
				if ok, lerr = l.Listening(); ok || lerr != nil {
					return nil
				}
				return errors.New("neither")
			})
			want := []string{"BeforeConnect", "AfterConnect on set_by_before_connect"}
			if tc.failing == "BeforeConnect" {
				want = want[:1]
			}
			// The first attempt's; a failed one is retried meanwhile.
			mu.Lock()
			got := slices.Clone(calls[:min(len(calls), len(want))])
			mu.Unlock()
			switch tc.failing {
			case "":
				if !ok {
					t.Errorf("Listening() = false, %v; want true", lerr)
				}
			case "BeforeConnect":
				if ok || lerr == nil || !strings.Contains(lerr.Error(), "BeforeConnect: no token today") {
					t.Errorf("Listening() = %v, %v; want false and the hook's error", ok, lerr)
				}
			case "AfterConnect":
				if ok || lerr == nil || !strings.Contains(lerr.Error(), "AfterConnect: no types today") {
					t.Errorf("Listening() = %v, %v; want false and the hook's error", ok, lerr)
				}
			}
			if diff := gocmp.Diff(want, got); diff != "" {
				t.Errorf("hooks run for the Listener's connection (-want +got):\n%s", diff)
			}
		})
	}
}
