package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestStuckDatabaseIsAnswered: while the database takes a write but does
// not commit it (here another session holds the log's head row, as a
// database that stopped answering would), a POST gets an answer, an error
// the client can read (503), not a connection closed without a response:
// the Router's write timeout (30 s by default) is longer than the server's
// WriteTimeout (10 s), after which the response is lost.
func TestStuckDatabaseIsAnswered(t *testing.T) {
	dsn := pgtest.DatabaseURL(t)
	base, stop := startServe(t, dsn)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	if status, _ := do(t, "POST", base+"/accounts", `{"account_id": "before", "country": "DE"}`); status != http.StatusCreated {
		t.Fatalf("POST before = %d, want 201", status)
	}

	lock, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(context.Background())
	tx, err := lock.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	var pos int64
	if err := tx.QueryRow(context.Background(), "SELECT pos FROM domicile.head FOR UPDATE").Scan(&pos); err != nil {
		t.Fatal(err)
	}

	post503(t, base, "the database does not commit")
}

// TestGetOnOtherInstanceAfterCreate: two instances on one database, a
// client behind a load balancer creates an account through one and reads
// it at once through the other, the helpdesk's sign-up flow: every GET
// answers 200 (the GET handler catches up with the database when Lookup
// misses; with Lookup alone 49 of 50 answered 404).
func TestGetOnOtherInstanceAfterCreate(t *testing.T) {
	dsn := pgtest.DatabaseURL(t)
	a, stopA := startServe(t, dsn)
	defer stopA()
	b, stopB := startServe(t, dsn)
	defer stopB()
	const n = 50
	missed := 0
	for i := range n {
		id := fmt.Sprintf("signup-%d", i)
		if status, body := do(t, "POST", a+"/accounts", fmt.Sprintf(`{"account_id": %q, "country": "DE"}`, id)); status != http.StatusCreated {
			t.Fatalf("POST %s on instance A = %d %v, want 201", id, status, body)
		}
		if status, body := do(t, "GET", b+"/accounts/"+id, ""); status != http.StatusOK {
			missed++
			if missed == 1 {
				t.Errorf("GET %s on instance B right after its 201 on A = %d %v, want 200", id, status, body)
			}
		}
	}
	if missed > 0 {
		t.Errorf("%d of %d accounts created on instance A were not found on instance B right after", missed, n)
	}
}
