package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestApplyError: what the apply statement's error says of its outcome.
// A stale version or status is a conflict; a server's error says that
// nothing was applied (residency.ErrStoreFailed, which the Router answers
// with no reading back), but for a connection exception (class 08),
// which a proxy between (PgBouncer) may send whatever became of the
// commit, an operator's intervention (class 57), and a FATAL or PANIC
// error, which ends the backend wherever it was (a PANIC may follow the
// commit's WAL record): the outcome is then unknown, as for an error
// without the server's answer.
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
		{"a PANIC once the commit may be in the WAL", &pgconn.PgError{Severity: "PANIC", SeverityUnlocalized: "PANIC", Code: "58030", Message: `could not fsync file "pg_wal/000000010000000000000001": Input/output error`}, false, false, "may or may not have been committed"},
		{"a FATAL error", &pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "XX000", Message: "an internal error"}, false, false, "may or may not have been committed"},
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

// TestRunApplyEndedInFlight: runApply runs the statement again on a new
// connection when the first run's connection was gone, and what the
// second run's error says of the outcome depends on the first: a first
// run that never left the client (a connection not made) committed
// nothing, so a second connection refused still says that nothing was
// applied; a first run the server ended (class 57: an immediate shutdown
// or a crash ends a backend even after its commit) may have committed,
// so whatever the second run says (its connection refused, or its
// versions stale, as a committed unit's would be) the outcome is unknown.
func TestRunApplyEndedInFlight(t *testing.T) {
	ended := &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to immediate shutdown command"}
	refused := &pgconn.ConnectError{}
	stale := &pgconn.PgError{Code: "23505", TableName: "events", Detail: "Key (account, version)=(a, 1) already exists."}
	type want struct {
		Runs, Resets         int
		Nil, Conflict, Fails bool // Fails: matches residency.ErrStoreFailed
		Says                 string
	}
	for _, tc := range []struct {
		name  string
		tries []error
		want  want
	}{
		{"ended, then applied", []error{ended, nil}, want{Runs: 2, Resets: 1, Nil: true}},
		{"ended, then refused", []error{ended, refused}, want{Runs: 2, Resets: 1, Says: "may or may not have been committed"}},
		{"ended, then stale", []error{ended, stale}, want{Runs: 2, Resets: 1, Says: "may or may not have been committed"}},
		{"not sent, then refused", []error{refused, refused}, want{Runs: 2, Resets: 1, Fails: true, Says: "the change was not applied"}},
		{"refused by the server", []error{&pgconn.PgError{Code: "42501"}}, want{Runs: 1, Fails: true, Says: "the change was not applied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got want
			err := runApply(context.Background(), func() { got.Resets++ }, func() error {
				got.Runs++
				return tc.tries[got.Runs-1]
			})
			if err == nil {
				got.Nil = true
			} else {
				err = applyError(err)
				got.Conflict = errors.Is(err, residency.ErrConflict)
				got.Fails = errors.Is(err, residency.ErrStoreFailed)
				if strings.Contains(err.Error(), tc.want.Says) {
					got.Says = tc.want.Says
				} else {
					got.Says = err.Error()
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("runApply mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestApplyErrorServerRefusedConnection: a connection the server refused
// at its start-up, with an error of its own, ran nothing, whatever the
// error's class: a server shutting down, starting up or in recovery
// refuses connections with 57P03 ("the database system is shutting
// down"), the very case of a write during a restart, and that says
// nothing applied (residency.ErrStoreFailed), not an unknown outcome.
// The connect error is the server's own (a database that does not
// exist, 3D000), given the code a restarting server sends.
func TestApplyErrorServerRefusedConnection(t *testing.T) {
	dsn, err := pgtest.WithDatabase(pgtest.Database(t), "domicile_no_such_database")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgconn.Connect(context.Background(), dsn)
	if err == nil {
		conn.Close(context.Background())
		t.Fatal("connected to a database that does not exist")
	}
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	if !errors.As(err, &ce) || !errors.As(err, &pe) {
		t.Fatalf("connecting to a database that does not exist: %v; want a *pgconn.ConnectError wrapping the server's *pgconn.PgError", err)
	}
	for _, code := range []string{"3D000", "57P03", "08004"} {
		pe.Code = code
		if got := applyError(err); !errors.Is(got, residency.ErrStoreFailed) || strings.Contains(got.Error(), "may or may not") {
			t.Errorf("applyError(a connection refused by the server with %s) = %v; want ErrStoreFailed, saying that nothing was applied", code, got)
		}
	}
}

// TestMayCommitYet: an apply statement may commit after its error only
// when its last run was sent and the server did not answer it; a run
// again after the server ended the first one's connection is judged by
// its own error, the first one's backend being gone.
func TestMayCommitYet(t *testing.T) {
	ended := &pgconn.PgError{Severity: "FATAL", Code: "57P01"}
	lost := errors.New("read tcp: connection reset by peer")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no answer", lost, true},
		{"the server's error", &pgconn.PgError{Code: "42501"}, false},
		{"a connection not made", &pgconn.ConnectError{}, false},
		{"ended, then no answer", &endedInFlight{first: ended, err: lost}, true},
		{"ended, then the server's error", &endedInFlight{first: ended, err: &pgconn.PgError{Code: "23505"}}, false},
		{"ended, then a connection not made", &endedInFlight{first: ended, err: &pgconn.ConnectError{}}, false},
	} {
		if got := mayCommitYet(tc.err); got != tc.want {
			t.Errorf("%s: mayCommitYet = %v, want %v", tc.name, got, tc.want)
		}
	}
}
