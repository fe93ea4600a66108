package postgres_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// startPgBouncer starts PgBouncer in transaction pooling mode in front of
// pgtest's server, with a server pool of poolSize connections, and
// returns dsn (a database of that server, as pgtest.Database gives it)
// rewritten to go through it. It skips the test when PgBouncer is not
// installed (Debian: apt-get install pgbouncer), and stops PgBouncer when
// the test ends.
func startPgBouncer(t *testing.T, dsn string, poolSize int) string {
	t.Helper()
	bin, err := osexec.LookPath("pgbouncer")
	if err != nil {
		for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		pgtest.Missing(t, "PgBouncer is not installed (apt-get install pgbouncer)")
	}
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("/tmp", "domicile-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 500
logfile = %s
pidfile = %s
`, c.Host, c.Port, port, filepath.Join(dir, "users.txt"), poolSize, filepath.Join(dir, "log"), filepath.Join(dir, "pid"))
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(fmt.Sprintf("%q \"\"\n", c.User)), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd *osexec.Cmd
	if os.Geteuid() == 0 {
		// -u: PgBouncer refuses to run as root; it switches itself, so
		// that the signal that stops it reaches it.
		cmd = osexec.Command(bin, "-u", "postgres", filepath.Join(dir, "pgbouncer.ini"))
	} else {
		cmd = osexec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	out := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", port, c.User, c.Database)
	eventually(t, "PgBouncer accepts connections", func() error {
		conn, err := pgx.Connect(context.Background(), out+" default_query_exec_mode=simple_protocol")
		if err != nil {
			return err
		}
		return conn.Close(context.Background())
	})
	return out
}

// TestThroughPgBouncerTransactionPooling: three Routers, each on a
// Store opened as the package doc's "Through PgBouncer" says (WithPollOnly,
// and default_query_exec_mode=exec or simple_protocol in the connection
// string, in URL or keyword/value form) through PgBouncer in transaction
// mode (Debian 12's PgBouncer 1.18, with a server pool of two
// connections), must Open, place accounts from several goroutines at
// once, converge, fence a move and Verify.
//
// Observed before: WithPollOnly's doc said it was for "connections
// through a proxy that pools by transaction" and no more, and with
// WithPollOnly alone calls fail: pgx prepares and caches statements per
// client connection (its default QueryExecModeCacheStatement), and
// PgBouncer in transaction mode runs the next transaction of that client
// connection on another server connection, where the statement was never
// prepared ("prepared statement \"stmtcache_...\" does not exist (SQLSTATE
// 26000)", or "... already exists", 42P05). Fixed: the docs say what the
// connection string must hold, and this test follows them.
func TestThroughPgBouncerTransactionPooling(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  bool // the connection string as a URL
		mode string
	}{
		{"as documented", true, "exec"},
		{"keyword/value, exec", false, "exec"},
		{"keyword/value, simple_protocol", false, "simple_protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dsn := pgtest.Database(t)
			via := startPgBouncer(t, dsn, 2) + " default_query_exec_mode=" + tc.mode
			if tc.url {
				via = asURL(t, via)
			}
			var rs []*residency.Router
			for i := range 3 {
				s, err := postgres.Open(ctx, via, postgres.WithPollOnly(), postgres.WithPollInterval(50*time.Millisecond))
				if err != nil {
					t.Fatalf("Open %d through PgBouncer: %v", i, err)
				}
				t.Cleanup(func() { s.Close() })
				r, err := residency.Open(ctx, residency.WithStore(s))
				if err != nil {
					t.Fatalf("residency.Open %d through PgBouncer: %v", i, err)
				}
				t.Cleanup(func() { r.Close() })
				rs = append(rs, r)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var errs []error
			for g := range 6 {
				wg.Go(func() {
					for i := range 10 {
						id := "acct-" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
						if _, err := rs[g%3].Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
							mu.Lock()
							errs = append(errs, fmt.Errorf("Place(%s): %w", id, err))
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				t.Error(err)
			}
			if len(errs) > 0 {
				return
			}
			for i, r := range rs {
				if err := r.Sync(ctx); err != nil {
					t.Fatalf("Sync on Router %d: %v", i, err)
				}
				for g := range 6 {
					if _, err := r.Lookup("acct-" + strconv.Itoa(g) + "-9"); err != nil {
						t.Errorf("Router %d after Sync: Lookup: %v", i, err)
					}
				}
			}
			m, err := rs[0].BeginMove(ctx, "acct-1-1", "aws-eu-west-1")
			if err != nil {
				t.Fatalf("BeginMove: %v", err)
			}
			if _, err := rs[1].CompleteMove(ctx, m.ID); err != nil {
				t.Fatalf("CompleteMove: %v", err)
			}
			for i, r := range rs {
				if p, err := r.Lookup("acct-1-1"); err != nil || p.DataCenter != "aws-eu-west-1" {
					t.Errorf("Router %d right after the fenced CompleteMove: Lookup = %q, %v; want aws-eu-west-1", i, p.DataCenter, err)
				}
			}
			rep, err := rs[2].Verify(ctx)
			if err != nil || len(rep.Violations) > 0 {
				t.Errorf("Verify: %v, %v", rep.Violations, err)
			}
		})
	}
}

// TestReadOnlyThroughPgBouncer: an auditor's tool opens the store with
// ReadOnly on the connection string the backend uses, through PgBouncer
// in transaction mode (with default_query_exec_mode=exec, as the package
// doc says). ReadOnly makes the server refuse every write with the
// startup parameter default_transaction_read_only, which PgBouncer
// refuses ("unsupported startup parameter", 08P01) unless its operator
// lists it in ignore_startup_parameters (which would drop the read-only
// guarantee without a word). The docs say to connect a read-only store
// directly, or to a standby: Open's error through PgBouncer must say so
// too, and the same Open directly must read the audit log.
//
// Observed before: Open failed with only "failed to connect ...: server
// error: FATAL: unsupported startup parameter:
// default_transaction_read_only (SQLSTATE 08P01)", and the docs said
// nothing of it.
func TestReadOnlyThroughPgBouncer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dsn := pgtest.Database(t)
	r := routertest.OnPostgres(t, dsn, nil)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acct", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	via := startPgBouncer(t, dsn, 2) + " default_query_exec_mode=exec"
	ro, err := postgres.Open(ctx, via, postgres.ReadOnly(), postgres.WithPollOnly())
	if err == nil {
		ro.Close()
		t.Fatal("Open with ReadOnly through PgBouncer succeeded; want the error the docs describe")
	}
	for _, want := range []string{"default_transaction_read_only", "PgBouncer", "directly", "standby", "unsupported startup parameter"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open with ReadOnly through PgBouncer = %v; want it to say %q", err, want)
		}
	}
	ro, err = postgres.Open(ctx, dsn, postgres.ReadOnly())
	if err != nil {
		t.Fatalf("Open with ReadOnly directly: %v", err)
	}
	defer ro.Close()
	n := 0
	if err := ro.LogEntries(ctx, 0, func(int64, []byte) error { n++; return nil }); err != nil {
		t.Fatalf("LogEntries: %v", err)
	}
	if n != 1 {
		t.Errorf("LogEntries gave %d entries, want 1", n)
	}
}

// asURL rewrites a keyword/value connection string (without quoted
// values) as a postgres:// URL, its keywords other than host, port,
// user, password and dbname as query parameters.
func asURL(t *testing.T, kv string) string {
	t.Helper()
	u := url.URL{Scheme: "postgres"}
	q := url.Values{}
	var host, port, user, password string
	for _, f := range strings.Fields(kv) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || strings.ContainsAny(v, `'\`) {
			t.Fatalf("asURL: cannot rewrite %q", f)
		}
		switch k {
		case "host":
			host = v
		case "port":
			port = v
		case "user":
			user = v
		case "password":
			password = v
		case "dbname":
			u.Path = "/" + v
		default:
			q.Set(k, v)
		}
	}
	u.Host = net.JoinHostPort(host, port)
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
