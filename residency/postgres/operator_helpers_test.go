package postgres_test

import (
	"testing"

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
