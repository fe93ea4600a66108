package postgres_test

// Tests of what an operator of the shared PostgreSQL server meets: settings
// made on the database or the role (ALTER DATABASE/ROLE ... SET), roles
// with few privileges, and the like. Each sets the server up as an operator
// would and then uses domicile as the documentation says.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// isolationLevels are the values of default_transaction_isolation that
// operators set on a database or role: PostgreSQL's default, read
// committed (where the tests below pass), and the two above it.
var isolationLevels = []string{"read committed", "repeatable read", "serializable"}

// TestOpenConcurrentlyUnderIsolation: with default_transaction_isolation
// set to 'repeatable read' or 'serializable' on the database, as some
// operators do, instances starting at once on an empty database must
// all open it, as the package doc promises ("under a transaction-level
// advisory lock, so that many instances may start at once").
//
// The test makes them start at once deterministically: a connection of
// its own holds the setup's advisory lock until every Open waits for it.
//
// setup's transaction asks for read committed whatever the database's
// default: under repeatable read it took its snapshot with its first
// statement, the lock's wait, and so listed no tables once it held the
// lock and created them again ("relation meta already exists", 42P07),
// which all but the first Open failed with.
func TestOpenConcurrentlyUnderIsolation(t *testing.T) {
	for _, iso := range isolationLevels {
		t.Run(iso, func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.Database(t)
			alterDatabase(t, dsn, "default_transaction_isolation = '"+iso+"'")
			hold, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Close(ctx)
			if _, err := hold.Exec(ctx, "SELECT pg_advisory_lock($1)", postgres.LockKey(postgres.DefaultSchema)); err != nil {
				t.Fatal(err)
			}
			const n = 4
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					s, err := postgres.Open(ctx, dsn)
					errs[i] = err
					if err == nil {
						s.Close()
					}
				})
			}
			waitForLockWaiters(t, dsn, n)
			if _, err := hold.Exec(ctx, "SELECT pg_advisory_unlock($1)", postgres.LockKey(postgres.DefaultSchema)); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Open %d of %d started at once: %v", i, n, err)
				}
			}
		})
	}
}

// TestConcurrentWritesUnderIsolation: with default_transaction_isolation
// set to 'repeatable read' or 'serializable' on the database, two Routers
// that write at the same moment, each its own account (Place; a fenced
// CompleteMove; a fenced Drain of one data center beside a Place), must
// both succeed: neither write conflicts with the other, and the README
// promises that a write is refused only for a stale version (and then
// decided again).
//
// The test makes the two writes meet deterministically: a connection of
// its own holds the head row (SELECT ... FOR UPDATE, changing nothing)
// until both Routers' Apply statements wait for it, then lets go. One
// Apply commits; the other, whose snapshot predates that commit, then
// updates a head row a concurrent transaction updated.
//
// The overtaken statement fails with a serialization failure (40001):
// nothing committed, and the store runs it again. (Before, it failed the
// write with ErrStoreFailed, though running it again succeeded; under
// load it happened to ordinary writers of several instances.)
func TestConcurrentWritesUnderIsolation(t *testing.T) {
	type write func(ctx context.Context, r *residency.Router, i int) error
	place := func(ctx context.Context, r *residency.Router, i int) error {
		_, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("new-", i), Country: "DE"})
		return err
	}
	for _, tc := range []struct {
		name string
		// setup runs before the writes meet, on Router i, and returns
		// its write.
		setup func(t *testing.T, r *residency.Router, i int) write
	}{
		{"Place", func(*testing.T, *residency.Router, int) write { return place }},
		{"CompleteMove", func(t *testing.T, r *residency.Router, i int) write {
			ctx := context.Background()
			id := fmt.Sprint("moving-", i)
			p, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
			if err != nil {
				t.Fatal(err)
			}
			to := "aws-eu-west-1"
			if p.DataCenter == to {
				to = "linode-eu"
			}
			m, err := r.BeginMove(ctx, id, to)
			if err != nil {
				t.Fatal(err)
			}
			return func(ctx context.Context, r *residency.Router, _ int) error {
				_, err := r.CompleteMove(ctx, m.ID)
				return err
			}
		}},
		{"Drain beside Place", func(t *testing.T, r *residency.Router, i int) write {
			if i == 0 {
				return func(ctx context.Context, r *residency.Router, _ int) error { return r.Drain(ctx, "linode-uk") }
			}
			return place
		}},
	} {
		for _, iso := range isolationLevels {
			t.Run(tc.name+"/"+iso, func(t *testing.T) {
				ctx := context.Background()
				dsn := pgtest.Database(t)
				alterDatabase(t, dsn, "default_transaction_isolation = '"+iso+"'")
				rs := []*residency.Router{routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil)}
				writes := make([]write, len(rs))
				for i, r := range rs {
					writes[i] = tc.setup(t, r, i)
				}
				for _, r := range rs {
					if err := r.Sync(ctx); err != nil {
						t.Fatal(err)
					}
				}

				tx := holdRows(t, dsn, "SELECT 1 FROM domicile.head FOR UPDATE")
				errs := make([]error, len(rs))
				var wg sync.WaitGroup
				for i, r := range rs {
					wg.Go(func() { errs[i] = writes[i](ctx, r, i) })
				}
				waitForLockWaiters(t, dsn, len(rs))
				if err := tx.Rollback(ctx); err != nil {
					t.Fatal(err)
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("the write on Router %d: %v (ErrStoreFailed: %t, ErrConflict: %t)",
							i, err, errors.Is(err, residency.ErrStoreFailed), errors.Is(err, residency.ErrConflict))
					}
				}
			})
		}
	}
}

// waitForLockWaiters waits until n sessions of dsn's database wait for a
// lock.
func waitForLockWaiters(t testing.TB, dsn string, n int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	eventually(t, fmt.Sprint(n, " sessions waiting for a lock"), func() error {
		var got int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&got); err != nil {
			return err
		}
		if got < n {
			return fmt.Errorf("%d waiting", got)
		}
		return nil
	})
}

// TestOperatorSettings: settings operators commonly make on the
// database (ALTER DATABASE ... SET) that domicile must live with: three
// Routers place accounts from several goroutines at once, one completes
// a move that another began (fenced: every Router answers the new data
// center as it returns), one drains a data center (fenced: no Router
// places there afterwards), and Verify is clean. These pass; the
// isolation levels above read committed are the tests above.
func TestOperatorSettings(t *testing.T) {
	for _, set := range []string{
		"timezone = 'Pacific/Chatham'",   // +12:45/+13:45: an odd offset
		"search_path = 'nowhere'",        // public not on it
		"synchronous_commit = off",       // no crash here: see TestAsyncCommitLostOnCrash
		"idle_session_timeout = '300ms'", // idle pooled connections are closed by the server
		"idle_in_transaction_session_timeout = '50ms'",
		"IntervalStyle = 'iso_8601'", // the lease is an interval parameter
		"DateStyle = 'SQL, DMY'",
		"statement_timeout = '2s'",
	} {
		t.Run(set, func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.Database(t)
			alterDatabase(t, dsn, set)
			rs := []*residency.Router{routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil)}
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for g := range 6 {
				wg.Go(func() {
					for i := range 8 {
						id := fmt.Sprint("acct-", g, "-", i)
						if _, err := rs[g%3].Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
							errs <- fmt.Errorf("Place(%s): %w", id, err)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if err := rs[0].Sync(ctx); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			from, err := rs[0].Lookup("acct-1-1")
			if err != nil {
				t.Fatal(err)
			}
			to := "aws-eu-west-1"
			if from.DataCenter == to {
				to = "linode-eu"
			}
			m, err := rs[0].BeginMove(ctx, "acct-1-1", to)
			if err != nil {
				t.Fatalf("BeginMove: %v", err)
			}
			if _, err := rs[1].CompleteMove(ctx, m.ID); err != nil {
				t.Fatalf("CompleteMove: %v", err)
			}
			for i, r := range rs {
				if p, err := r.Lookup("acct-1-1"); err != nil || p.DataCenter != to {
					t.Errorf("Router %d right after the fenced CompleteMove: Lookup = %q, %v; want %s", i, p.DataCenter, err, to)
				}
			}
			if err := rs[2].Drain(ctx, "linode-eu"); err != nil {
				t.Fatalf("Drain: %v", err)
			}
			for i, r := range rs {
				p, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("after-drain-", i), Country: "DE"})
				if err != nil || p.DataCenter == "linode-eu" {
					t.Errorf("Router %d after the fenced Drain: Place = %q, %v; want another data center", i, p.DataCenter, err)
				}
			}
			for i, r := range rs {
				rep, err := r.Verify(ctx)
				if err != nil || len(rep.Violations) > 0 {
					t.Errorf("Router %d: Verify = %v, %v", i, rep.Violations, err)
				}
			}
			h, err := rs[2].History(ctx, "acct-1-1")
			if err != nil || len(h) != 3 {
				t.Errorf("History(acct-1-1) = %d events, %v; want 3 (placed, move begun, completed)", len(h), err)
			}
			// What the database holds reads back exactly (times too, in
			// whatever time zone the session has).
			fresh := routertest.OnPostgres(t, dsn, nil)
			if err := rs[0].Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(stateOf(t, rs[0]), stateOf(t, fresh)); diff != "" {
				t.Errorf("a running Router and a fresh one differ (-running +fresh):\n%s", diff)
			}
		})
	}
}

// TestLeastPrivilegedRole: an administrator opens the store once (which
// creates the schema and tables), then grants the application's role
// only USAGE on the schema and SELECT, INSERT, UPDATE and DELETE on its
// tables. Opening, placing, a fenced move, a drain, Verify and History
// all work with that. A role granted less, or one that may not create
// the schema on an empty database, gets an error at Open (or at
// residency.Open, for a role that may only read) that says which
// permission is missing. (Those errors match no sentinel of domicile:
// errors.As to *pgconn.PgError, code 42501, is how a program tells.)
func TestLeastPrivilegedRole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Run("granted", func(t *testing.T) {
		app := loginRole(t, createdDatabase(t), "GRANT USAGE ON SCHEMA domicile TO %[1]s",
			"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA domicile TO %[1]s")
		a, b := routertest.OnPostgres(t, app, nil), routertest.OnPostgres(t, app, nil)
		if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: "acct", Country: "DE"}); err != nil {
			t.Fatalf("Place: %v", err)
		}
		m, err := a.BeginMove(ctx, "acct", "aws-eu-west-1")
		if err != nil {
			t.Fatalf("BeginMove: %v", err)
		}
		if _, err := b.CompleteMove(ctx, m.ID); err != nil {
			t.Fatalf("CompleteMove: %v", err)
		}
		if p, err := a.Lookup("acct"); err != nil || p.DataCenter != "aws-eu-west-1" {
			t.Errorf("Lookup after the fenced move = %q, %v", p.DataCenter, err)
		}
		if err := b.Drain(ctx, "linode-eu"); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if rep, err := a.Verify(ctx); err != nil || len(rep.Violations) > 0 {
			t.Errorf("Verify = %v, %v", rep.Violations, err)
		}
		if h, err := b.History(ctx, "acct"); err != nil || len(h) != 3 {
			t.Errorf("History = %d events, %v; want 3", len(h), err)
		}
	})
	for _, tc := range []struct {
		name     string
		existing bool
		grants   []string
		want     string // in the error of postgres.Open, or else residency.Open
	}{
		{"usage only", true, []string{"GRANT USAGE ON SCHEMA domicile TO %[1]s"}, "permission denied for table meta"},
		{"select only", true, []string{"GRANT USAGE ON SCHEMA domicile TO %[1]s", "GRANT SELECT ON ALL TABLES IN SCHEMA domicile TO %[1]s"}, "permission denied for table members"},
		{"no create on an empty database", false, nil, "permission denied for database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.Database(t)
			if tc.existing {
				dsn = createdDatabase(t)
			} else {
				exec(t, dsn, "REVOKE CREATE ON DATABASE "+dbIdent(t, dsn)+" FROM PUBLIC")
			}
			app := loginRole(t, dsn, tc.grants...)
			s, err := postgres.Open(ctx, app)
			if err == nil {
				defer s.Close()
				var r *residency.Router
				r, err = residency.Open(ctx, residency.WithStore(s))
				if err == nil {
					r.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("opening as a role with %q: %v; want an error saying %q", tc.grants, err, tc.want)
			}
			// Open's own refusal and the database's are told apart alike.
			if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "42501" {
				t.Errorf("opening as a role with %q: %v; want it to wrap a *pgconn.PgError of SQLSTATE 42501", tc.grants, err)
			}
		})
	}
}

// TestReadOnlyDatabase: default_transaction_read_only on the database,
// as on a hot standby or a database an operator froze. Open on an empty
// database fails at once saying why; on existing tables, Open succeeds
// (it only reads) and residency.Open fails at once saying why; nothing
// waits. (A real hot standby made with pg_basebackup answers the same:
// "cannot execute INSERT in a read-only transaction", 25006.)
func TestReadOnlyDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("empty", func(t *testing.T) {
		dsn := pgtest.Database(t)
		alterDatabase(t, dsn, "default_transaction_read_only = on")
		_, err := postgres.Open(ctx, dsn)
		if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
			t.Errorf("Open on a read-only empty database: %v; want an error saying it is read-only", err)
		}
	})
	t.Run("existing", func(t *testing.T) {
		dsn := pgtest.Database(t)
		s0, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		s0.Close()
		alterDatabase(t, dsn, "default_transaction_read_only = on")
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open on read-only existing tables: %v", err)
		}
		defer s.Close()
		r, err := residency.Open(ctx, residency.WithStore(s))
		if err == nil {
			r.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
			t.Errorf("residency.Open on a read-only database: %v; want an error saying it is read-only", err)
		}
		if ctx.Err() != nil {
			t.Errorf("waited until the test's deadline")
		}
	})
}

// dbIdent is the quoted name of dsn's database.
func dbIdent(t testing.TB, dsn string) string {
	t.Helper()
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return pgx.Identifier{c.Database}.Sanitize()
}

// TestJoinUnderIsolation: with default_transaction_isolation set to
// 'repeatable read' or 'serializable' on the database, instances that
// start again at once after a crash of the fleet more than an hour ago
// (members whose lease ended long ago are removed by the next Join) must
// all open their Routers.
//
// The test makes two Joins meet deterministically: a connection of its
// own locks the old member's row (changing nothing) until both Joins
// wait for it. One Join removes the row; the other then deletes a row a
// concurrent transaction deleted.
//
// The overtaken Join fails with a serialization failure (40001), and
// the store runs it again, as it does Append. (Before, residency.Open
// failed with it.)
func TestJoinUnderIsolation(t *testing.T) {
	for _, iso := range isolationLevels {
		t.Run(iso, func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.Database(t)
			s0, err := postgres.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			s0.Close()
			exec(t, dsn, `INSERT INTO domicile.members (id, name, applied, joined, expires)
				VALUES ('crashed', 'a Router that crashed', 0, now() - interval '3 hours', now() - interval '2 hours')`)
			alterDatabase(t, dsn, "default_transaction_isolation = '"+iso+"'")
			stores := make([]*postgres.Store, 2)
			for i := range stores {
				stores[i] = openStore(t, dsn)
			}
			tx := holdRows(t, dsn, "SELECT 1 FROM domicile.members WHERE id = 'crashed' FOR UPDATE")
			errs := make([]error, len(stores))
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() {
					r, err := residency.Open(ctx, residency.WithStore(s))
					errs[i] = err
					if err == nil {
						r.Close()
					}
				})
			}
			waitForLockWaiters(t, dsn, len(stores))
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("residency.Open %d: %v", i, err)
				}
			}
		})
	}
}

// TestOutputSettingsWithExecModes: a database whose output settings an
// operator set (ALTER DATABASE ... SET DateStyle = 'German' or
// 'SQL, DMY', as local tools like; bytea_output = 'escape', as older
// applications need), and connection strings that choose pgx's
// default_query_exec_mode=exec or simple_protocol, which PgBouncer in
// transaction mode needs (TestThroughPgBouncerTransactionPooling) and
// which pgx documents as connection string settings. A Router places
// accounts; a second Router must open on the database, hold what the
// first holds, read the trail and give the audit log's checkpoint and
// proofs.
//
// Observed with exec and simple_protocol (the default mode,
// cache_statement, is the control row and passes):
//   - DateStyle: the second residency.Open fails with "residency: loading
//     the store: postgres: load: can't scan into dest[9] (col: created):
//     invalid PostgreSQL date/time value \"29.11.2026 20:07:21.207988
//     UTC\"";
//   - bytea_output: Checkpoint and ProveEntry fail with "... postgres:
//     reading stored hashes: can't scan into dest[1] (col: hash): invalid
//     hex format".
//
// In those modes pgx reads results as text, which the server writes in
// the session's styles; pgx parses only ISO dates and hex bytea. The
// store set neither for its sessions. Fixed: a pool Open opens sends
// DateStyle=ISO as a startup parameter (PgBouncer accepts DateStyle,
// unlike default_transaction_read_only: see TestReadOnlyThroughPgBouncer;
// bytea_output it does not), and the stored hashes, the only bytea, are
// decoded from the raw result in either output format (TestDecodeBytea).
// A pool from WithPool sets DateStyle itself, as WithPool's doc says.
func TestOutputSettingsWithExecModes(t *testing.T) {
	for _, mode := range []string{"cache_statement", "exec", "simple_protocol"} {
		for _, set := range []string{"DateStyle = 'German'", "DateStyle = 'SQL, DMY'", "bytea_output = 'escape'"} {
			t.Run(mode+"/"+set, func(t *testing.T) {
				ctx := context.Background()
				dsn := pgtest.Database(t)
				alterDatabase(t, dsn, set)
				dsn += " default_query_exec_mode=" + mode
				r := routertest.OnPostgres(t, dsn, nil)
				for _, id := range []string{"acme", "globex", "initech"} {
					if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
						t.Fatalf("Place: %v", err)
					}
				}
				s, err := postgres.Open(ctx, dsn)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer s.Close()
				r2, err := residency.Open(ctx, residency.WithStore(s))
				if err != nil {
					t.Fatalf("a second residency.Open: %v", err)
				}
				defer r2.Close()
				if diff := cmp.Diff(stateOf(t, r), stateOf(t, r2)); diff != "" {
					t.Errorf("the second Router differs (-first +second):\n%s", diff)
				}
				if h, err := r2.History(ctx, "acme"); err != nil || len(h) != 1 {
					t.Errorf("History = %d events, %v; want 1", len(h), err)
				}
				c1, err := r.Checkpoint(ctx)
				if err != nil {
					t.Fatalf("Checkpoint: %v", err)
				}
				c2, err := r2.Checkpoint(ctx)
				if err != nil {
					t.Fatalf("Checkpoint on the second Router: %v", err)
				}
				if c1 != c2 || c1.Size != 3 {
					t.Errorf("Checkpoints %v and %v; want one of size 3", c1, c2)
				}
				if _, err := r2.ProveEntry(ctx, 1, 3); err != nil {
					t.Errorf("ProveEntry: %v", err)
				}
			})
		}
	}
}

// TestWithPoolDateStyle: a program that builds its own pool (WithPool),
// with exec mode, on a database whose DateStyle is not ISO, does as
// WithPool's doc says and sets DateStyle=ISO in the pool's runtime
// parameters: a Router opens and reads back what another placed. Without
// it, Open refuses the pool at once, naming DateStyle and matching
// ErrInvalidOption, rather than residency.Open failing later on a date.
func TestWithPoolDateStyle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dsn := pgtest.Database(t)
	alterDatabase(t, dsn, "DateStyle = 'German'")
	r := routertest.OnPostgres(t, dsn+" default_query_exec_mode=exec", nil)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	for _, documented := range []bool{false, true} {
		t.Run(fmt.Sprintf("DateStyle set %v", documented), func(t *testing.T) {
			cfg, err := pgxpool.ParseConfig(dsn + " default_query_exec_mode=exec")
			if err != nil {
				t.Fatal(err)
			}
			if documented {
				cfg.ConnConfig.RuntimeParams["DateStyle"] = "ISO"
			}
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			s, err := postgres.Open(ctx, "", postgres.WithPool(pool))
			if !documented {
				if err == nil {
					s.Close()
					t.Fatal("Open accepted a pool in exec mode whose DateStyle is German")
				}
				if !errors.Is(err, residency.ErrInvalidOption) || !strings.Contains(err.Error(), `RuntimeParams["DateStyle"] = "ISO"`) {
					t.Errorf("Open = %v; want ErrInvalidOption saying to set DateStyle", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			r2, err := residency.Open(ctx, residency.WithStore(s))
			if err != nil {
				t.Fatalf("residency.Open: %v", err)
			}
			defer r2.Close()
			if diff := cmp.Diff(stateOf(t, r), stateOf(t, r2)); diff != "" {
				t.Errorf("the second Router differs (-first +second):\n%s", diff)
			}
		})
	}
}

// TestMissingUpdatePrivilegeIsNamed: an administrator created the tables
// and granted the application's role SELECT, INSERT and DELETE on them,
// but forgot UPDATE. Expected: postgres.Open refuses the role, naming
// what it lacks; and when UPDATE is revoked from a role while its Router
// runs, what the Router answers once its lease has run out says why it
// could not renew it.
//
// Observed before: both Opens succeeded; the first Place failed with
// "permission denied for table accounts" (fine); but the lease renewals
// (an UPDATE of the members table) failed silently, and a lease later
// every Lookup and every write answered only "residency: this Router lost
// touch with the shared store for longer than its lease; its state may be
// stale" (the bare ErrStale), though the database answered every query:
// the operator was sent to look for a network problem, and the permission
// error was nowhere. The same holds for anything else that refuses the
// renewal while reads work (a lock_timeout on a locked members table,
// say). Fixed: Open checks the role's privileges on the members table,
// and the stale error tells how the last call to the store failed.
func TestMissingUpdatePrivilegeIsNamed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Run("at Open", func(t *testing.T) {
		app := loginRole(t, createdDatabase(t), "GRANT USAGE ON SCHEMA domicile TO %[1]s",
			"GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA domicile TO %[1]s")
		s, err := postgres.Open(ctx, app, postgres.WithLease(time.Second))
		if err == nil {
			s.Close()
			t.Fatal("postgres.Open accepted a role without UPDATE on the members table")
		}
		for _, want := range []string{"permission denied for table members", "lacks UPDATE"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("postgres.Open = %v; want it to say %q", err, want)
			}
		}
		if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("postgres.Open = %v; want it to wrap a *pgconn.PgError of SQLSTATE 42501, as the database's refusals are", err)
		}
	})
	t.Run("revoked while running", func(t *testing.T) {
		dsn := createdDatabase(t)
		app := loginRole(t, dsn, "GRANT USAGE ON SCHEMA domicile TO %[1]s",
			"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA domicile TO %[1]s")
		r := routertest.OnPostgres(t, app, nil, postgres.WithLease(time.Second))
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acct", Country: "DE"}); err != nil {
			t.Fatal(err)
		}
		c, err := pgx.ParseConfig(app)
		if err != nil {
			t.Fatal(err)
		}
		exec(t, dsn, "REVOKE UPDATE ON domicile.members FROM "+pgx.Identifier{c.User}.Sanitize())
		var lookupErr error
		eventually(t, "Lookup refuses once the lease has run out", func() error {
			_, lookupErr = r.Lookup("acct")
			if errors.Is(lookupErr, residency.ErrStale) {
				return nil
			}
			return fmt.Errorf("Lookup: %v", lookupErr)
		})
		for _, want := range []string{"renewing its lease failed: ", "permission denied for table members (SQLSTATE 42501)"} {
			if !strings.Contains(lookupErr.Error(), want) {
				t.Errorf("a lease after UPDATE was revoked, Lookup says %q; want it to say %q", lookupErr, want)
			}
		}
	})
}

// TestIdleInTransactionTimeoutDuringLoad: a database with
// idle_in_transaction_session_timeout set (here 10 ms, to make it
// certain; production values are seconds, which a Router on a throttled
// container or in a long GC pause reaches just the same with a page of
// 10 000 accounts to apply) and tens of thousands of accounts. A Router
// must open.
//
// Snapshot reads the accounts a page at a time in one REPEATABLE READ
// transaction, idle between pages while the Router applies the last one;
// it lifts the timeout for that transaction alone (SET LOCAL
// idle_in_transaction_session_timeout = 0). (Before, residency.Open
// failed with "terminating connection due to idle-in-transaction
// timeout", 25P03.) So does every transaction of the store, in the same
// round trip as its BEGIN: on a loaded machine, setup's transaction too
// was once idle for more than 10 ms between two statements.
func TestIdleInTransactionTimeoutDuringLoad(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)
	for b := range 15 {
		var cs []residency.Change
		for i := range 2000 {
			cs = append(cs, placed(fmt.Sprintf("acct-%03d-%04d", b, i), "linode-eu", at))
		}
		if err := s.Apply(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	alterDatabase(t, dsn, "idle_in_transaction_session_timeout = '10ms'")
	s2 := openStore(t, dsn)
	r, err := residency.Open(ctx, residency.WithStore(s2))
	if err != nil {
		t.Fatalf("residency.Open on 30 000 accounts: %v", err)
	}
	defer r.Close()
	if _, err := r.Lookup("acct-014-1999"); err != nil {
		t.Errorf("Lookup of the last account: %v", err)
	}
}
