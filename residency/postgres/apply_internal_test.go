package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestApplyError: what the apply statement's error says of its outcome.
// A stale version or status is a conflict; a server's error says that
// nothing was applied (residency.ErrStoreFailed, which the Router answers
// with no reading back), but for a connection exception (class 08),
// which a proxy between (PgBouncer) may send whatever became of the
// commit, and an operator's intervention (class 57): the outcome is then
// unknown, as for an error without the server's answer.
func TestApplyError(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		conflict bool
		nothing  bool // matches residency.ErrStoreFailed
		says     string
	}{
		{"duplicate event", &pgconn.PgError{Code: "23505", TableName: "events"}, true, false, "versions do not follow"},
		{"stale statuses", &pgconn.PgError{Code: "23502", TableName: "changes"}, true, false, "statuses do not follow"},
		{"refused by the server", &pgconn.PgError{Code: "42501", Message: "permission denied"}, false, true, "the change was not applied"},
		{"a connection not made", &pgconn.ConnectError{}, false, true, "the change was not applied"},
		{"a proxy's connection exception", &pgconn.PgError{Code: "08P01", Message: "server conn crashed?"}, false, false, "may or may not have been committed"},
		{"a connection terminated", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, false, false, "may or may not have been committed"},
		{"no answer", errors.New("read tcp: connection reset by peer"), false, false, "may or may not have been committed"},
	} {
		got := applyError(tc.err)
		if errors.Is(got, residency.ErrConflict) != tc.conflict || errors.Is(got, residency.ErrStoreFailed) != tc.nothing || !strings.Contains(got.Error(), tc.says) {
			t.Errorf("%s: applyError = %v; want a conflict %v, ErrStoreFailed %v, saying %q", tc.name, got, tc.conflict, tc.nothing, tc.says)
		}
		if !errors.Is(got, tc.err) && !tc.conflict {
			t.Errorf("%s: applyError = %v; want it to wrap the error", tc.name, got)
		}
	}
}
