package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Each instance of a backend opens the store on the shared database and a
// Router on it. The examples here need a server, so they are compiled but
// not run; the tests run the same calls against one.
func Example() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"), postgres.WithLease(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close() // closes the store too
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Region, p.DataCenter)
}

// A follower starts a Listener, loads a snapshot with its log position,
// then reads the log from there on every wake-up: notifications make it
// quick, the wake-up after every (re)connection and polling make it
// complete.
func ExampleStore_Changes() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	l, err := s.Listen(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	accounts := map[string]residency.Placement{}
	snap, err := s.Snapshot(ctx, func(a residency.StoredAccount) error {
		accounts[a.Placement.AccountID] = a.Placement
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	pos := snap.Position
	for range l.C {
		pos, err = s.Changes(ctx, pos, func(_ uint64, c residency.Change) error {
			if c.DataCenter == nil && c.Placement.Version > accounts[c.Placement.AccountID].Version {
				accounts[c.Placement.AccountID] = c.Placement
			}
			return nil
		})
		if err != nil {
			log.Print(err) // the next wake-up retries from pos
		}
	}
}

// A migration script on the shared database: CompleteMove returns once
// every other live instance answers the new data center, so the source
// copy may go at once; Sync makes this instance apply what others
// committed before it.
func Example_migration() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if err := r.Sync(ctx); err != nil {
		log.Fatal(err)
	}
	m, err := r.BeginMove(ctx, "acme", "aws-eu-west-1")
	if err != nil {
		log.Fatal(err)
	}
	// ... copy the account's data ...
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		log.Fatal(err)
	}
	// Every live instance now routes acme to aws-eu-west-1: delete the
	// source copy.
}

// An auditor's tool opens the store read-only, as a role that may only
// SELECT domicile's tables, and checks the log against a checkpoint it
// kept; it creates, upgrades and writes nothing.
func ExampleReadOnly() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, os.Getenv("AUDITOR_DATABASE_URL"), postgres.ReadOnly())
	if errors.Is(err, postgres.ErrNoTables) {
		log.Fatal("no domicile log in this database")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	n, err := s.LogSize(ctx)
	if err != nil {
		log.Fatal(err)
	}
	head, err := auditlog.NewCheckpoint("example.com/domicile", n, residency.HashReader(ctx, s))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(head)
}

// Behind PgBouncer in transaction mode: WithPollOnly, since LISTEN does not
// work there, and default_query_exec_mode=exec in the connection string,
// since pgx's cached prepared statements do not either
// (TestThroughPgBouncerTransactionPooling runs this setup).
func ExampleWithPollOnly() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, "postgres://app@pgbouncer:6432/helpdesk?default_query_exec_mode=exec",
		postgres.WithPollOnly())
	if err != nil {
		log.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
}

// A pool whose password is fetched for each new connection, as cloud IAM
// authentication or Vault's dynamic credentials need: the Store's
// Listeners connect through the same hook
// (TestListenerWithPoolCredentials runs this setup).
func ExampleWithPool() {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	cfg.BeforeConnect = func(ctx context.Context, c *pgx.ConnConfig) error {
		c.Password = os.Getenv("DATABASE_TOKEN") // a token provider's call in real life
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close() // after the Router: Close does not close a pool from WithPool
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool))
	if err != nil {
		log.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
}
