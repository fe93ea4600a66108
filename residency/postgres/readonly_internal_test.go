package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestReadOnlyServerRefusesWrites: the sessions of a read-only Store's own
// pool are read-only, so that the server refuses a write even from a role
// that may write.
func TestReadOnlyServerRefusesWrites(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	w, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	s, err := Open(ctx, dsn, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.pool.Exec(ctx, s.sql.insertHashes, []int64{0}, [][]byte{make([]byte, 32)})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25006" { // read_only_sql_transaction
		t.Errorf("an INSERT on the read-only Store's pool = %v, want SQLSTATE 25006 (read-only transaction)", err)
	}
}
