package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// memberPrivileges are the privileges on the members table that a Router
// needs in the background, where a refusal would otherwise show only as
// a lease that runs out: joining (INSERT, and DELETE of members gone for
// an hour), renewing (UPDATE), leaving (DELETE), and fences (SELECT).
var memberPrivileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE"}

// checkPrivileges refuses, at Open, a role that lacks one of
// memberPrivileges. It only reads the catalog: one query, no lock. The
// other tables' privileges need no check: a write they refuse fails in
// the caller's hands, with PostgreSQL's "permission denied for table ...".
func (s *Store) checkPrivileges(ctx context.Context) error {
	table := pgx.Identifier{s.schema, "members"}.Sanitize()
	rows, err := s.pool.Query(ctx, `SELECT p FROM unnest($2::text[]) WITH ORDINALITY AS t(p, i)
		WHERE NOT has_table_privilege($1, p) ORDER BY i`, table, memberPrivileges)
	if err != nil {
		return fmt.Errorf("postgres: checking the role's privileges: %w", connectError(err))
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("postgres: checking the role's privileges: %w", connectError(err))
	}
	if len(missing) > 0 {
		return fmt.Errorf("postgres: permission denied for table members (schema %q): the role lacks %s on it, which Routers need to join, renew their leases and leave; grant it SELECT, INSERT, UPDATE and DELETE on the schema's tables",
			s.schema, strings.Join(missing, ", "))
	}
	return nil
}
