package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestMain runs the command itself, as a process of its own, when a test
// starts this binary with asMigrate set: the interrupt tests need to send
// it signals.
func TestMain(m *testing.M) {
	if os.Getenv(asMigrate) == "1" {
		main()
		return
	}
	// pgtest stops the PostgreSQL server it started, if any, after the
	// tests (postgres_test.go).
	os.Exit(pgtest.Main(m))
}

const asMigrate = "DOMICILE_TEST_RUN_MIGRATE"

// process is migrate running as a process of its own.
type process struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer

	mu     sync.Mutex
	stderr strings.Builder // what it wrote to standard error so far
}

// said reports whether migrate wrote s to its standard error.
func (p *process) said(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Contains(p.stderr.String(), s)
}

func startMigrate(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(os.Args[0], args...)}
	p.cmd.Env = append(os.Environ(), asMigrate+"=1")
	p.cmd.Stdout = &p.stdout
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for sc := bufio.NewScanner(stderr); sc.Scan(); {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// The tests wait for what another process does with this deadline: long
// enough for a loaded machine, short enough to fail a test rather than hang.
const patience = 30 * time.Second

// waitFor polls cond until it holds, or fails the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(patience); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", patience, what)
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// interrupt sends sig to migrate and waits until it says it got it.
func (p *process) interrupt(t *testing.T, sig syscall.Signal, says string) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("migrate to say %q after %v", says, sig), func() bool { return p.said(says) })
}

// wait waits for migrate to exit and returns its exit status.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(patience):
		t.Fatalf("migrate still runs %v after it was interrupted", patience)
	}
	return p.cmd.ProcessState.ExitCode()
}

// planTwoMoves seeds two accounts and a plan that moves both.
func planTwoMoves(t *testing.T, dir, db string) (plan string, from map[string]string) {
	t.Helper()
	seed(t, db, "DE", "FR")
	from = map[string]string{}
	var csv strings.Builder
	csv.WriteString("account_id,to_datacenter\n")
	for _, id := range []string{"de-0", "fr-1"} {
		p := placementOf(t, db, id)
		from[id] = p.DataCenter
		fmt.Fprintf(&csv, "%s,%s\n", id, otherDC[p.DataCenter])
	}
	return writeFile(t, dir, "p.csv", csv.String()), from
}

// TestInterruptFinishesTheMoveInProgress interrupts migrate while it copies
// the first of two accounts: the copy must run to its end and the move
// complete, and the second move must not begin.
func TestInterruptFinishesTheMoveInProgress(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "d.db")
			plan, from := planTwoMoves(t, dir, db)
			// The copy waits for the test's go-ahead.
			copyCmd := fmt.Sprintf(`touch %[1]s/started-$ACCOUNT_ID; while [ ! -e %[1]s/go ]; do sleep 0.01; done; touch %[1]s/copied-$ACCOUNT_ID`, dir)
			p := startMigrate(t, "-db", db, "-plan", plan, "-copy", copyCmd)
			waitFor(t, "the first copy to start", func() bool { return exists(filepath.Join(dir, "started-de-0")) })
			p.interrupt(t, sig, "finishing the move in progress")
			writeFile(t, dir, "go", "")
			if code := p.wait(t); code != 1 {
				t.Errorf("interrupted migrate exited %d, want 1", code)
			}
			wantLines(t, p.stdout.String(), `moved: account "de-0"`, "summary: moved 1,")
			if !exists(filepath.Join(dir, "copied-de-0")) {
				t.Errorf("the copy in progress did not run to its end")
			}
			if exists(filepath.Join(dir, "started-fr-1")) {
				t.Errorf("the next move began after the interrupt")
			}
			ps, moves := state(t, db)
			if len(moves) != 0 {
				t.Errorf("open moves after the interrupt: %v", moves)
			}
			for _, pl := range ps {
				if want := map[string]string{"de-0": otherDC[from["de-0"]], "fr-1": from["fr-1"]}[pl.AccountID]; pl.DataCenter != want {
					t.Errorf("%s on %s, want %s", pl.AccountID, pl.DataCenter, want)
				}
			}
		})
	}
}

// TestSecondInterruptKillsTheCopy interrupts migrate twice while its copy
// command (and a process that command started) runs: both must be killed
// and the move aborted.
func TestSecondInterruptKillsTheCopy(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	plan, from := planTwoMoves(t, dir, db)
	child := filepath.Join(dir, "child")
	copyCmd := fmt.Sprintf(`sleep 300 >/dev/null 2>&1 & echo $! > %[1]s.tmp; mv %[1]s.tmp %[1]s; wait; touch %[2]s/copied`, child, dir)
	p := startMigrate(t, "-db", db, "-plan", plan, "-copy", copyCmd)
	waitFor(t, "the copy to start its child", func() bool { return exists(child) })
	data, err := os.ReadFile(child)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	p.interrupt(t, syscall.SIGINT, "finishing the move in progress")
	p.interrupt(t, syscall.SIGTERM, "killing the copy command")
	if code := p.wait(t); code != 1 {
		t.Errorf("interrupted migrate exited %d, want 1", code)
	}
	wantLines(t, p.stdout.String(),
		fmt.Sprintf(`failed: move of account "de-0" %s -> %s aborted: copy command killed: interrupted twice`, from["de-0"], otherDC[from["de-0"]]),
		"summary: moved 0,")
	waitFor(t, fmt.Sprintf("the copy's child %d to die", pid), func() bool { return !alive(pid) })
	if exists(filepath.Join(dir, "copied")) {
		t.Errorf("the copy ran to its end")
	}
	ps, moves := state(t, db)
	if len(moves) != 0 {
		t.Errorf("open moves after the interrupt: %v", moves)
	}
	for _, pl := range ps {
		if pl.DataCenter != from[pl.AccountID] {
			t.Errorf("%s on %s, want %s", pl.AccountID, pl.DataCenter, from[pl.AccountID])
		}
	}
}

// alive reports whether process pid runs: it exists and is not a zombie
// waiting for a parent (here, maybe a container's init) to reap it.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
