package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// alterDatabase runs ALTER DATABASE ... SET setting on dsn's database, as
// an operator would: sessions opened afterwards run with it.
func alterDatabase(t testing.TB, dsn, setting string) {
	t.Helper()
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, dsn, "ALTER DATABASE "+pgx.Identifier{c.Database}.Sanitize()+" SET "+setting)
}

// loginRole creates a login role without privileges beyond PUBLIC's,
// runs grants (with %[1]s for the role's name) on dsn's database as the
// administrator, and returns dsn as that role. The role is dropped when
// the test ends.
func loginRole(t testing.TB, dsn string, grants ...string) string {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	name := "domicile_app_" + hex.EncodeToString(b[:])
	admin := pgtest.AdminDSN(t)
	exec(t, admin, "CREATE ROLE "+name+" LOGIN")
	t.Cleanup(func() {
		exec(t, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '"+name+"'")
		exec(t, dsn, "DROP OWNED BY "+name)
		exec(t, admin, "DROP ROLE IF EXISTS "+name)
	})
	for _, g := range grants {
		exec(t, dsn, fmt.Sprintf(g, name))
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.User(name)
		return u.String()
	}
	return strings.TrimSpace(dsn) + " user=" + name + " password=''"
}

// createdDatabase returns a new database whose tables an administrator
// created (a Store opened on it once and closed).
func createdDatabase(t testing.TB) string {
	t.Helper()
	dsn := pgtest.Database(t)
	openStore(t, dsn).Close()
	return dsn
}

// holdRows locks the rows that lockSQL (a SELECT ... FOR UPDATE) selects,
// in a read committed transaction of a connection of its own to dsn, and
// returns the transaction: its Rollback lets them go, and the test's end
// closes the connection.
func holdRows(t testing.TB, dsn, lockSQL string) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, lockSQL); err != nil {
		t.Fatal(err)
	}
	return tx
}
