package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// ownServer is a PostgreSQL server of one test's own, which the test may
// stop and start (pgtest's server is shared by the tests of a binary).
type ownServer struct {
	bin, dir, data string
	port           int
	asPG           bool
	opts           string // more options of the server's command line
}

// startOwnServer initialises and starts a server from the installed
// binaries, fsync off but synchronous_commit on (a crash of the server
// process loses no acknowledged commit); it skips the test when there
// are none, unless DOMICILE_REQUIRE_POSTGRES=1. It stops the server and
// removes its files when the test ends.
func startOwnServer(t *testing.T) *ownServer {
	t.Helper()
	return startOwnServerWith(t, ownServerConfig{})
}

// ownServerConfig changes what startOwnServerWith starts.
type ownServerConfig struct {
	opts     string // more options of the server's command line
	password string // the superuser's password, and scram-sha-256 for everyone; "" for trust
}

// startOwnServerWith is startOwnServer with c.
func startOwnServerWith(t *testing.T, c ownServerConfig) *ownServer {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return dirs[i] > dirs[j] })
	s := &ownServer{asPG: os.Geteuid() == 0, opts: c.opts}
	if p, err := osexec.LookPath("pg_ctl"); err == nil {
		s.bin = filepath.Dir(p)
	} else if len(dirs) > 0 {
		s.bin = dirs[0]
	} else {
		// A server named by DOMICILE_TEST_POSTGRES cannot be stopped and
		// started by a test: these tests need the binaries.
		pgtest.Missing(t, "no PostgreSQL binaries to start a server of the test's own (apt-get install postgresql)")
	}
	dir, err := os.MkdirTemp("/tmp", "domicile-own-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s.dir, s.data = dir, filepath.Join(dir, "data")
	os.Chmod(dir, 0o777)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	t.Cleanup(func() {
		s.run(t, false, "pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	})
	auth := []string{"-A", "trust"}
	if c.password != "" {
		pw := filepath.Join(dir, "pw")
		if err := os.WriteFile(pw, []byte(c.password+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		auth = []string{"-A", "scram-sha-256", "--pwfile=" + pw}
	}
	s.run(t, true, "initdb", append([]string{"-D", s.data, "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"}, auth...)...)
	s.start(t)
	return s
}

func (s *ownServer) run(t *testing.T, must bool, name string, args ...string) {
	t.Helper()
	prog := filepath.Join(s.bin, name)
	var cmd *osexec.Cmd
	if s.asPG {
		cmd = osexec.Command("runuser", append([]string{"-u", "postgres", "--", prog}, args...)...)
	} else {
		cmd = osexec.Command(prog, args...)
	}
	cmd.Dir = s.dir
	if out, err := cmd.CombinedOutput(); err != nil && must {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// dsn connects to the server's database postgres.
func (s *ownServer) dsn() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", s.port)
}

func (s *ownServer) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off %s", s.port, s.dir, s.opts)
	s.run(t, true, "pg_ctl", "-D", s.data, "-o", opts, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "start")
}

// stop stops the server with mode (fast: clients are disconnected;
// immediate: a crash of the server's processes).
func (s *ownServer) stop(t *testing.T, mode string) {
	t.Helper()
	s.run(t, true, "pg_ctl", "-D", s.data, "-m", mode, "-w", "stop")
}

// TestServerRestartUnderLoad: Routers writing from many goroutines while
// the server is stopped (fast, then immediate: a crash) and started again.
// What the docs promise: writes during the outage fail with an error
// (none hangs past two write timeouts), the Routers come back by
// themselves, every acknowledged write is kept and seen by every Router,
// and Verify is clean.
func TestServerRestartUnderLoad(t *testing.T) {
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			srv := startOwnServer(t)
			const writeTimeout = 2 * time.Second
			var rs []*residency.Router
			for range 3 {
				s, err := postgres.Open(ctx, srv.dsn(), postgres.WithLease(3*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				r, err := residency.Open(ctx, residency.WithStore(s), residency.WithWriteTimeout(writeTimeout))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				rs = append(rs, r)
			}
			var (
				mu       sync.Mutex
				acked    []string
				failures = map[string]int{}
				slowest  time.Duration
			)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for g := range 9 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						id := fmt.Sprintf("acct-%d-%d", g, i)
						start := time.Now()
						_, err := rs[g%3].Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
						took := time.Since(start)
						mu.Lock()
						slowest = max(slowest, took)
						if err == nil {
							acked = append(acked, id)
						} else {
							kind := "other"
							switch {
							case errors.Is(err, residency.ErrUnavailable):
								kind = "ErrUnavailable"
							case errors.Is(err, residency.ErrStoreFailed):
								kind = "ErrStoreFailed"
							}
							failures[kind]++
							if kind == "other" {
								t.Logf("Place(%s): untyped error: %v", id, err)
							}
						}
						mu.Unlock()
						time.Sleep(2 * time.Millisecond)
					}
				})
			}
			time.Sleep(500 * time.Millisecond)
			srv.stop(t, mode)
			time.Sleep(time.Second)
			srv.start(t)
			restarted := time.Now()
			// Writes succeed again on every Router, by themselves.
			for i, r := range rs {
				eventually(t, fmt.Sprint("a write on Router ", i, " after the restart"), func() error {
					_, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("after-", i), Country: "US"})
					return err
				})
			}
			t.Logf("writes on every Router %v after the start", time.Since(restarted))
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			t.Logf("acknowledged %d, failed %v, slowest Place %v", len(acked), failures, slowest)
			if slowest > 2*writeTimeout+time.Second {
				t.Errorf("a Place took %v, more than two write timeouts (%v)", slowest, 2*writeTimeout)
			}
			for i, r := range rs {
				if err := r.Sync(ctx); err != nil {
					t.Fatalf("Sync on Router %d: %v", i, err)
				}
				var missing []string
				for _, id := range acked {
					if _, err := r.Lookup(id); err != nil {
						missing = append(missing, id)
					}
				}
				if len(missing) > 0 {
					t.Errorf("Router %d lost %d of %d acknowledged placements, such as %s", i, len(missing), len(acked), missing[0])
				}
			}
			// A Router opened afresh holds them too.
			fresh := routertest.OnPostgres(t, srv.dsn(), nil)
			for _, id := range acked {
				if _, err := fresh.Lookup(id); err != nil {
					t.Errorf("a fresh Router: Lookup(%s) = %v for an acknowledged placement", id, err)
				}
			}
			rep, err := rs[0].Verify(ctx)
			if err != nil || len(rep.Violations) > 0 {
				t.Errorf("Verify: %v, %v", rep.Violations, err)
			}
		})
	}
}

// TestServerDownPastLease: the server stopped for longer than the lease,
// then started again. Lookup answers from memory until the lease ends
// (not ErrStale within half a lease of the stop), then ErrStale; once the
// server is back, every Router answers again by itself, and a write made
// after that on one is seen by the others.
func TestServerDownPastLease(t *testing.T) {
	ctx := context.Background()
	srv := startOwnServer(t)
	const lease = 2 * time.Second
	var rs []*residency.Router
	for range 2 {
		rs = append(rs, routertest.OnPostgres(t, srv.dsn(), []residency.Option{residency.WithWriteTimeout(time.Second)}, postgres.WithLease(lease)))
	}
	if _, err := rs[0].Place(ctx, residency.PlaceRequest{AccountID: "before", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := rs[1].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	srv.stop(t, "fast")
	stopped := time.Now()
	time.Sleep(lease / 2)
	for i, r := range rs {
		if _, err := r.Lookup("before"); err != nil {
			t.Errorf("Router %d, %v after the stop (lease %v): Lookup = %v, want an answer from memory", i, time.Since(stopped), lease, err)
		}
	}
	time.Sleep(lease)
	for i, r := range rs {
		if _, err := r.Lookup("before"); !errors.Is(err, residency.ErrStale) {
			t.Errorf("Router %d, %v after the stop (lease %v): Lookup = %v, want ErrStale", i, time.Since(stopped), lease, err)
		}
	}
	time.Sleep(3 * lease)
	srv.start(t)
	for i, r := range rs {
		eventually(t, fmt.Sprint("Router ", i, " answers again"), func() error {
			_, err := r.Lookup("before")
			return err
		})
	}
	if _, err := rs[1].Place(ctx, residency.PlaceRequest{AccountID: "after", Country: "US"}); err != nil {
		t.Fatalf("Place after the restart: %v", err)
	}
	eventually(t, "Router 0 sees the write of Router 1", func() error {
		_, err := rs[0].Lookup("after")
		return err
	})
}

// TestAsyncCommitLostOnCrash: an operator sets synchronous_commit = off
// on the database (a common tuning; a failover to an asynchronous
// standby loses the last commits the same way). The server crashes
// (pg_ctl stop -m immediate) shortly after some Places were acknowledged
// and applied by every Router, and starts again.
//
// The docs promise "acknowledged means committed", and that every Router
// converges on the database, the source of truth: the apply statement
// turns synchronous_commit on for its own transaction, so nothing
// acknowledged is lost. (Before, the acknowledged placements were gone
// after the crash while the running Routers still answered them, and the
// changes committed after the restart reused the lost log positions, so
// a running Router never learnt of them, even after Sync.)
func TestAsyncCommitLostOnCrash(t *testing.T) {
	ctx := context.Background()
	srv := startOwnServerWith(t, ownServerConfig{opts: "-c wal_writer_delay=10000 -c wal_writer_flush_after=0"})
	exec(t, srv.dsn(), "ALTER DATABASE postgres SET synchronous_commit = off")
	var rs []*residency.Router
	for range 2 {
		s, err := postgres.Open(ctx, srv.dsn(), postgres.WithLease(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		r, err := residency.Open(ctx, residency.WithStore(s), residency.WithWriteTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		rs = append(rs, r)
	}
	// Flushed: a checkpoint writes everything so far.
	exec(t, srv.dsn(), "CHECKPOINT")
	var acked []string
	for i := range 5 {
		id := fmt.Sprint("acked-", i)
		if _, err := rs[0].Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	if err := rs[1].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	srv.stop(t, "immediate")
	srv.start(t)

	fresh := routertest.OnPostgres(t, srv.dsn(), nil)
	for _, id := range acked {
		if _, err := fresh.Lookup(id); err != nil {
			t.Errorf("after the crash, a fresh Router: Lookup(%s) = %v; the Place was acknowledged", id, err)
		}
	}
	// Every Router must agree with the database on what happens next.
	eventually(t, "a write on Router 1 after the restart", func() error {
		_, err := rs[1].Place(ctx, residency.PlaceRequest{AccountID: "after-crash", Country: "US"})
		return err
	})
	for i, r := range []*residency.Router{rs[0], fresh} {
		if err := r.Sync(ctx); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if _, err := r.Lookup("after-crash"); err != nil {
			t.Errorf("Router %d after Sync: Lookup(after-crash) = %v; it was placed through another Router after the restart", i, err)
		}
	}
	for _, id := range acked {
		_, e0 := rs[0].Lookup(id)
		_, ef := fresh.Lookup(id)
		if (e0 == nil) != (ef == nil) {
			t.Errorf("Lookup(%s): running Router %v, fresh Router %v: they disagree", id, e0, ef)
		}
	}
}

// TestFenceRightAfterOutage: a migration script's Router completes a move
// the moment the server is back from an outage longer than the lease,
// while a backend's Router, cut off just as long, is still reconnecting
// and answering Lookup in a loop. Once CompleteMove has returned, the
// backend's Router must never answer the move's source (ErrStale until
// it has caught up is fine): the fence of the README, after an outage.
func TestFenceRightAfterOutage(t *testing.T) {
	ctx := context.Background()
	srv := startOwnServer(t)
	const lease = time.Second
	var rs []*residency.Router
	for range 2 {
		rs = append(rs, routertest.OnPostgres(t, srv.dsn(), []residency.Option{residency.WithWriteTimeout(time.Second)}, postgres.WithLease(lease)))
	}
	script, backend := rs[0], rs[1]
	p, err := script.Place(ctx, residency.PlaceRequest{AccountID: "moving", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	to := "aws-eu-west-1"
	if p.DataCenter == to {
		to = "linode-eu"
	}
	m, err := script.BeginMove(ctx, "moving", to)
	if err != nil {
		t.Fatal(err)
	}
	if err := backend.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	srv.stop(t, "fast")
	time.Sleep(3 * lease)

	var completed atomic.Int64 // UnixNano when CompleteMove returned, 0 before
	var bad atomic.Int64
	var lastBad atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now().UnixNano()
			q, err := backend.Lookup("moving")
			if done := completed.Load(); done != 0 && start > done && err == nil && q.DataCenter != to {
				bad.Add(1)
				lastBad.Store(q.DataCenter)
			}
		}
	})
	srv.start(t)
	eventually(t, "CompleteMove after the outage", func() error {
		_, err := script.CompleteMove(ctx, m.ID)
		if err == nil {
			completed.Store(time.Now().UnixNano())
		}
		if errors.Is(err, residency.ErrNotFenced) {
			return nil // done, but not fenced: nothing promised, try Fence
		}
		return err
	})
	if err := script.Fence(ctx); err != nil {
		t.Fatalf("Fence: %v", err)
	}
	completed.CompareAndSwap(0, time.Now().UnixNano())
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("after the fenced CompleteMove, the backend's Router answered the source %q %d times", lastBad.Load(), n)
	}
	if q, err := backend.Lookup("moving"); err != nil || q.DataCenter != to {
		t.Errorf("backend Lookup a second after the fence = %q, %v; want %s", q.DataCenter, err, to)
	}
}

// TestSyncCommitOffWithSynchronousStandby: a server with a synchronous
// standby configured (synchronous_standby_names), whose operator turned
// synchronous_commit off so that its writes do not wait for the standby
// (here the standby is down: none is connected). The apply statement
// makes each commit durable on this server with 'local', which does not
// wait for the standby: the Place succeeds. (With 'on', every Place
// waited for the standby and failed at its deadline.)
func TestSyncCommitOffWithSynchronousStandby(t *testing.T) {
	ctx := context.Background()
	srv := startOwnServerWith(t, ownServerConfig{opts: "-c synchronous_standby_names=absent_standby -c synchronous_commit=off"})
	s, err := postgres.Open(ctx, srv.dsn())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r, err := residency.Open(ctx, residency.WithStore(s), residency.WithWriteTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := r.Place(dctx, residency.PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Errorf("Place with synchronous_commit off on the database and a synchronous standby named but absent = %v; want it placed without waiting for the standby", err)
	}
}
