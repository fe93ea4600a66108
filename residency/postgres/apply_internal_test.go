package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestApplyError: what the apply statement's error says of its outcome.
// A stale version or status is a conflict; a server's error is "nothing
// committed", but for a connection exception (class 08), which a proxy
// between (PgBouncer) may send whatever became of the commit: the outcome
// is then unknown, as for an error without the server's answer.
func TestApplyError(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		conflict bool
		says     string
	}{
		{"duplicate event", &pgconn.PgError{Code: "23505", TableName: "events"}, true, "versions do not follow"},
		{"stale statuses", &pgconn.PgError{Code: "23502", TableName: "changes"}, true, "statuses do not follow"},
		{"refused by the server", &pgconn.PgError{Code: "42501", Message: "permission denied"}, false, "nothing committed"},
		{"a proxy's connection exception", &pgconn.PgError{Code: "08P01", Message: "server conn crashed?"}, false, "may or may not have been committed"},
		{"no answer", errors.New("read tcp: connection reset by peer"), false, "may or may not have been committed"},
	} {
		got := applyError(tc.err)
		if errors.Is(got, residency.ErrConflict) != tc.conflict || !strings.Contains(got.Error(), tc.says) {
			t.Errorf("%s: applyError = %v; want a conflict %v, saying %q", tc.name, got, tc.conflict, tc.says)
		}
		if !errors.Is(got, tc.err) && !tc.conflict {
			t.Errorf("%s: applyError = %v; want it to wrap the error", tc.name, got)
		}
	}
}
