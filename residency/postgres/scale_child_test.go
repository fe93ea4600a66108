package postgres_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Child processes: a Router in a process of its own, which a test can stop
// (SIGSTOP), resume (SIGCONT) or kill (SIGKILL), as an instance of the
// helpdesk backend is. The test binary runs itself with
// -test.run=^TestScaleChild$ and scaleChildEnv set to the database's
// connection string; the child opens one Router and answers commands, one a
// line on its standard input:
//
//	sync              Sync, then "ok" (or "err ...")
//	lookup ID         "dc DATACENTER" or "err ..."
//	watch ID OLD      look up ID in a tight loop (instead of what was
//	                  watched before), noting the start time (Unix ns) of
//	                  each Lookup that answers OLD
//	report SINCE      "old N LAST": how many Lookups started after SINCE
//	                  (Unix ns) answered OLD, and the last one's start
//
// It prints "ready" once its Router is open, and exits when its standard
// input closes.
const (
	scaleChildEnv      = "DOMICILE_SCALE_CHILD_DSN"
	scaleChildLeaseEnv = "DOMICILE_SCALE_CHILD_LEASE"
	// scaleChildStopInSetupEnv, set, makes the child stop itself (SIGSTOP)
	// in its postgres.Open, once setup has listed the schema's tables
	// (after taking the setup's advisory lock, where it takes it).
	scaleChildStopInSetupEnv = "DOMICILE_SCALE_CHILD_STOP_IN_SETUP"
)

// stopInSetup stops its process once setup's statement listing the
// schema's tables has run.
type stopInSetup struct{}

func (stopInSetup) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "FROM pg_class c JOIN pg_namespace") {
		return context.WithValue(ctx, stopInSetup{}, true)
	}
	return ctx
}

func (stopInSetup) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	if ctx.Value(stopInSetup{}) != nil && d.Err == nil {
		syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	}
}

// TestScaleChild is the child process's body; run by itself it does
// nothing.
func TestScaleChild(t *testing.T) {
	dsn := os.Getenv(scaleChildEnv)
	if dsn == "" {
		return
	}
	ctx := context.Background()
	lease, _ := time.ParseDuration(os.Getenv(scaleChildLeaseEnv))
	opts := []postgres.Option{postgres.WithPollInterval(100 * time.Millisecond)}
	if lease > 0 {
		opts = append(opts, postgres.WithLease(lease))
	}
	if os.Getenv(scaleChildStopInSetupEnv) != "" {
		// Stop this process (as a paused VM or container would be) in
		// the middle of Open's setup.
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			fmt.Println("err", err)
			os.Exit(1)
		}
		cfg.ConnConfig.Tracer = stopInSetup{}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			fmt.Println("err", err)
			os.Exit(1)
		}
		dsn = ""
		opts = append(opts, postgres.WithPool(pool))
	}
	s, err := postgres.Open(ctx, dsn, opts...)
	if err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	r, err := residency.Open(ctx, residency.WithStore(s), residency.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	var (
		mu       sync.Mutex
		oldAt    []int64 // start times of Lookups that answered the old data center
		stopped  atomic.Bool
		watching atomic.Pointer[[2]string] // the account watched, and its old data center
	)
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	say("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "sync":
			if err := r.Sync(ctx); err != nil {
				say("err %v", err)
			} else {
				say("ok")
			}
		case "lookup":
			p, err := r.Lookup(f[1])
			if err != nil {
				say("err %v", err)
			} else {
				say("dc %s", p.DataCenter)
			}
		case "watch":
			if watching.Swap(&[2]string{f[1], f[2]}) == nil {
				go func() {
					for !stopped.Load() {
						w := watching.Load()
						start := time.Now().UnixNano()
						p, err := r.Lookup(w[0])
						if err == nil && p.DataCenter == w[1] {
							mu.Lock()
							if len(oldAt) < 1<<20 {
								oldAt = append(oldAt, start)
							}
							mu.Unlock()
						}
					}
				}()
			}
			say("ok")
		case "report":
			since, _ := strconv.ParseInt(f[1], 10, 64)
			mu.Lock()
			n, last := 0, int64(0)
			for _, at := range oldAt {
				if at > since {
					n++
					last = max(last, at)
				}
			}
			mu.Unlock()
			say("old %d %d", n, last)
		}
	}
	stopped.Store(true)
	r.Close()
	s.Close()
	os.Exit(0)
}

// child is a Router in a child process.
type child struct {
	cmd *osexec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startChild starts a child process with a Router on dsn, with lease (0:
// the default), and waits until it is ready. gomaxprocs, when not 0, sets
// the child's GOMAXPROCS (a container given one CPU).
func startChild(t *testing.T, dsn string, lease time.Duration, gomaxprocs int, env ...string) *child {
	t.Helper()
	c := launchChild(t, dsn, lease, gomaxprocs, env...)
	if got := c.read(t); got != "ready" {
		t.Fatalf("child: %q, want ready", got)
	}
	return c
}

// launchChild starts a child process and does not wait for it to be
// ready; env are more variables of its environment.
func launchChild(t *testing.T, dsn string, lease time.Duration, gomaxprocs int, env ...string) *child {
	t.Helper()
	cmd := osexec.Command(os.Args[0], "-test.run=^TestScaleChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), scaleChildEnv+"="+dsn, scaleChildLeaseEnv+"="+lease.String())
	cmd.Env = append(cmd.Env, env...)
	if gomaxprocs > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprint("GOMAXPROCS=", gomaxprocs))
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(outp)}
	t.Cleanup(func() {
		c.cmd.Process.Signal(syscall.SIGCONT)
		c.in.Close()
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
			<-done
		}
	})
	return c
}

// stopped reports whether the child's process is stopped (state T in
// /proc).
func (c *child) stopped() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'T'
}

// read returns the child's next line that is not the test framework's.
func (c *child) read(t *testing.T) string {
	t.Helper()
	for c.out.Scan() {
		line := c.out.Text()
		if line == "PASS" || strings.HasPrefix(line, "ok ") || strings.HasPrefix(line, "=== ") || strings.HasPrefix(line, "--- ") {
			continue
		}
		return line
	}
	t.Fatalf("child ended: %v", c.out.Err())
	return ""
}

// ask sends a command and returns the answer.
func (c *child) ask(t *testing.T, format string, args ...any) string {
	t.Helper()
	if _, err := fmt.Fprintf(c.in, format+"\n", args...); err != nil {
		t.Fatal(err)
	}
	return c.read(t)
}

func (c *child) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// placeAndMoveTarget places id in DE on r and returns where it is and a
// target for a move inside the EU.
func placeAndMoveTarget(t testing.TB, r *residency.Router, id string) (from, to string) {
	t.Helper()
	p, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: id, Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	to = "linode-eu"
	if p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	return p.DataCenter, to
}

var errNotYet = errors.New("not yet")
