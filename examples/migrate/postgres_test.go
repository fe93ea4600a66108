package main

import (
	"context"
	"fmt"
	"github.com/domicile-go/domicile/internal/storeflag"
	"github.com/jackc/pgx/v5"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestEvacuatePostgres runs the script with -db on a PostgreSQL database
// that a server's Router shares: as soon as the script returns, the
// server answers every account's new data center, with no Sync.
func TestEvacuatePostgres(t *testing.T) {
	ctx := context.Background()
	dsn := asURL(t, pgtest.Database(t))
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	server, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	var onEU []string
	for i := range 20 {
		id := fmt.Sprint("acct-", i)
		p, err := server.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
		if err != nil {
			t.Fatal(err)
		}
		if p.DataCenter == "linode-eu" {
			onEU = append(onEU, id)
		}
	}
	if len(onEU) == 0 {
		t.Fatal("no account on linode-eu to evacuate")
	}
	if code, out, log := migrateRun(t, "-db", dsn, "-dry-run", "-evacuate", "linode-eu"); code != 0 {
		t.Fatalf("migrate -dry-run exit %d\n%s\n%s", code, out, log)
	}
	code, out, log := migrateRun(t, "-db", dsn, "-evacuate", "linode-eu", "-copy", "true")
	if code != 0 {
		t.Fatalf("migrate exit %d\n%s\n%s", code, out, log)
	}
	if !strings.Contains(out, fmt.Sprintf("moved %d", len(onEU))) {
		t.Errorf("summary does not say moved %d:\n%s", len(onEU), out)
	}
	for _, id := range onEU {
		p, err := server.Lookup(id)
		if err != nil || p.DataCenter == "linode-eu" {
			t.Errorf("server right after migrate: %s on %q, %v; want moved", id, p.DataCenter, err)
		}
	}
	if st, err := server.Status("linode-eu"); err != nil || st != "draining" {
		t.Errorf("server: linode-eu %v, %v; want draining", st, err)
	}
}

// asURL returns a connection string as a postgres:// URL, the form -db
// takes.
func asURL(t *testing.T, dsn string) string {
	if storeflag.IsPostgres(dsn) {
		return dsn
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "postgres", User: url.User(cfg.User), Host: net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)), Path: "/" + cfg.Database, RawQuery: "sslmode=disable"}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	}
	return u.String()
}
