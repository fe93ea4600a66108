package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

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
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, "127.0.0.1:0", dsn, func(a net.Addr) { addrc <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + addr.String()
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

	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Post(base+"/accounts", "application/json", strings.NewReader(`{"account_id": "stuck", "country": "DE"}`))
	if err != nil {
		t.Fatalf("POST while the database does not commit: no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST while the database does not commit = %d %s, want 503", resp.StatusCode, body)
	}
}
