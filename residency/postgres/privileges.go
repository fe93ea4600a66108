package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// checkPrivileges refuses, at Open, a role without UPDATE on the members
// table: a Router renews its lease with it in the background, where a
// refusal would otherwise show only as [residency.ErrStale] a lease
// later. It only reads the catalog: one query, no lock. Other missing
// privileges need no check here: what they refuse fails in the caller's
// hands (Join, at residency.Open, needs INSERT and DELETE on members; a
// write, INSERT and UPDATE on the other tables), with PostgreSQL's
// "permission denied for table ...". A store that only loads, such as
// one of TestOpenEmptySchema's, may lack DELETE. The refusal wraps a
// [*pgconn.PgError] of SQLSTATE 42501, as the database's own refusals
// are: a program tells all of them apart one way.
func (s *Store) checkPrivileges(ctx context.Context) error {
	var ok bool
	table := pgx.Identifier{s.schema, "members"}.Sanitize()
	if err := s.pool.QueryRow(ctx, `SELECT has_table_privilege($1, 'UPDATE')`, table).Scan(&ok); err != nil {
		return fmt.Errorf("postgres: checking the role's privileges: %w", connectError(err))
	}
	if !ok {
		return fmt.Errorf("postgres: the role lacks UPDATE on the members table of schema %q, which Routers need to renew their leases (grant it SELECT, INSERT, UPDATE and DELETE on the schema's tables): %w", s.schema, &pgconn.PgError{
			Severity: "ERROR",
			Code:     "42501", // insufficient_privilege
			Message:  "permission denied for table members",
			Hint:     "Grant the role SELECT, INSERT, UPDATE and DELETE on the schema's tables.",
		})
	}
	return nil
}
