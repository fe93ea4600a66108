package main

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestHungDatabaseIsAnswered: while the database server stops answering
// altogether (not a lock: reads hang too, so the Router's reading back of
// a failed write takes its own write timeout), a POST still gets an
// answer (503) before the server's WriteTimeout, not a connection closed
// without a response.
func TestHungDatabaseIsAnswered(t *testing.T) {
	u, err := url.Parse(pgtest.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewStallingProxy(t, u.Host)
	u.Host = proxy.Addr().String()
	base, stop := startServe(t, u.String())
	defer func() {
		proxy.Release()
		stop() // Close may fail with the database gone; only its return matters here
	}()
	if status, _ := do(t, "POST", base+"/accounts", `{"account_id": "before", "country": "DE"}`); status != http.StatusCreated {
		t.Fatalf("POST before = %d, want 201", status)
	}
	proxy.Stall()
	post503(t, base, "the database does not answer")
}
