package postgres_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The Store is a residency.PromptStore: a Router waits for its calls, so
// every one of them must return soon after its context is done, whatever
// the server does meanwhile.

// returnsBy runs call with a context that ends after 200 ms and fails the
// test unless it returns within a few seconds; unblock, if not nil, lets a
// call that did not return finish.
func returnsBy(t *testing.T, what string, call func(context.Context) error, unblock func()) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done <- call(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Errorf("%s with a deadline of 200 ms has not returned after 5 s", what)
		if unblock != nil {
			unblock()
		}
		return <-done
	}
}

// TestPromptWhileExplainingAConflict: an Apply refused as stale explains
// the conflict with a query of its own, within the Apply's deadline: a
// server that does not answer that query (here, a table locked by another
// session) cannot hold Apply past it.
func TestPromptWhileExplainingAConflict(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := openStore(t, dsn)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE domicile.accounts IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	c := placed("a", "linode-eu", at)
	c.Placement.Version, c.Event.Version = 0, 0 // stale: the conflict is explained
	err = returnsBy(t, "Apply of a stale change", func(ctx context.Context) error {
		return s.Apply(ctx, []residency.Change{c})
	}, func() { tx.Rollback(ctx) })
	if !errors.Is(err, residency.ErrConflict) {
		t.Errorf("Apply of a stale change = %v, want ErrConflict", err)
	}
}

// stopOnRollback is a tracer that stops the server process of its
// connection (SIGSTOP: a server that hangs) when the connection sends
// "rollback", if that process runs on this machine.
type stopOnRollback struct{ stopped chan int }

func (h stopOnRollback) TraceQueryStart(ctx context.Context, c *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if d.SQL != "rollback" {
		return ctx
	}
	pid := int(c.PgConn().PID())
	cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.HasPrefix(string(cmd), "postgres: ") {
		h.stopped <- 0 // a server elsewhere (DOMICILE_TEST_POSTGRES): not ours to stop
		return ctx
	}
	if syscall.Kill(pid, syscall.SIGSTOP) != nil {
		h.stopped <- 0 // not ours to stop
		return ctx
	}
	h.stopped <- pid
	return ctx
}

func (stopOnRollback) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestPromptWhenTheServerHangs: DataCenters, which the Router calls to
// learn the outcome of a failed write, ends its read-only transaction
// within its deadline although the server stops answering right then.
func TestPromptWhenTheServerHangs(t *testing.T) {
	dsn := pgtest.Database(t)
	openStore(t, dsn).Close() // creates the tables
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	tr := stopOnRollback{stopped: make(chan int, 1)}
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := openStore(t, "", postgres.WithPool(pool))
	pid := -1 // not stopped yet
	resume := func() {
		if pid < 0 {
			pid = <-tr.stopped
		}
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	returnsBy(t, "DataCenters", func(ctx context.Context) error {
		_, err := s.DataCenters(ctx)
		return err
	}, resume)
	resume()
	if pid == 0 {
		t.Skip("the server runs elsewhere or as a user this test cannot signal: this test stops its process")
	}
}
