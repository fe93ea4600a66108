package residency_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
)

// The crash test runs this test binary again as a child (crashChildEnv set)
// that writes to a store and prints every change once its call returned;
// the parent kills it with SIGKILL at a random moment and checks the store.
const crashChildEnv = "DOMICILE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		crashChild(spec)
		os.Exit(0)
	}
	os.Exit(pgtest.Main(m)) // TestSharedRoutersHoldNoTrails starts one
}

// crashChild places accounts from four goroutines, begins a move for every
// other one and completes every other move, printing each acknowledged
// change: "placed ID DC", "begun MOVE ID TO", "completed MOVE ID TO".
func crashChild(spec string) {
	path, round, _ := strings.Cut(spec, ",")
	ctx := context.Background()
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(2)
	}
	say := childSay()
	say("ready")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("r%s-g%d-%d", round, g, i)
				p, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: []string{"DE", "US", "SG", "FR"}[i%4]})
				if err != nil {
					say("error %v", err)
					return
				}
				say("placed %s %s", id, p.DataCenter)
				if i%2 == 1 {
					continue
				}
				to := map[string]string{"linode-eu": "websupport-eu", "websupport-eu": "aws-eu-west-1", "aws-eu-west-1": "linode-eu",
					"linode-us": "aws-us-west-1", "aws-us-west-1": "linode-us", "linode-sg": "aws-ap-southeast-1", "aws-ap-southeast-1": "linode-sg"}[p.DataCenter]
				m, err := r.BeginMove(ctx, id, to)
				if err != nil {
					say("error %v", err)
					return
				}
				say("begun %s %s %s", m.ID, id, to)
				if i%4 == 0 {
					if _, err := r.CompleteMove(ctx, m.ID); err != nil {
						say("error %v", err)
						return
					}
					say("completed %s %s %s", m.ID, id, to)
				}
			}
		})
	}
	wg.Wait()
}

// TestCrashRecovery kills a writing child process again and again. After
// each kill the store must open, hold every change the child acknowledged
// (each account's audit trail starts with the acknowledged events, and may
// go on with changes that were durable but not yet acknowledged), pass
// Verify, and let every open move be completed or aborted; its audit log
// must extend the checkpoint taken before the child started, hash to its
// stored hashes, and hold one entry per event of every account.
func TestCrashRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	rounds := 12
	if testing.Short() {
		rounds = 3
	}
	type event struct{ Kind, To, MoveID string }
	known := map[string][]event{} // per account: its trail as far as acknowledged
	trail := func(r *residency.Router, id string) []event {
		h, err := r.History(t.Context(), id)
		if err != nil {
			t.Fatalf("History(%s): %v", id, err)
		}
		var out []event
		for _, e := range h {
			out = append(out, event{string(e.Kind), e.To, e.MoveID})
		}
		return out
	}
	total := 0
	var kept auditlog.Checkpoint // the log's checkpoint before each round
	for round := range rounds {
		// Kill at a random moment, but only once the child has acknowledged
		// a few changes, however slow the machine (-race, a loaded CI).
		acknowledged := killedChild(t, "^$", time.Duration(10+rand.IntN(150))*time.Millisecond, 3, fmt.Sprintf("%s=%s,%d", crashChildEnv, path, round))
		for _, line := range acknowledged {
			f := strings.Fields(line)
			switch f[0] {
			case "placed":
				known[f[1]] = []event{{"placed", f[2], ""}}
				total++
			case "begun":
				known[f[2]] = append(known[f[2]], event{"move-begun", f[3], f[1]})
			case "completed":
				known[f[2]] = append(known[f[2]], event{"move-completed", f[3], f[1]})
			default:
				t.Fatalf("round %d: child said %q", round, line)
			}
		}

		ctx := context.Background()
		r, err := residency.Open(ctx, residency.WithPath(path))
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		for id, want := range known {
			if _, err := r.Lookup(id); err != nil {
				t.Fatalf("round %d: acknowledged account %s lost: %v", round, id, err)
			}
			got := trail(r, id)
			if len(got) < len(want) || !cmp.Equal(want, got[:len(want)]) {
				t.Fatalf("round %d: %s: trail %v does not start with the acknowledged %v", round, id, got, want)
			}
			known[id] = got
		}
		if rep, err := r.Verify(ctx); err != nil || !rep.OK() {
			t.Fatalf("round %d: Verify after the crash: %+v, %v", round, rep.Violations, err)
		}
		// Every move the crash left open can be completed or aborted.
		i := 0
		for m := range r.Moves() {
			var err error
			if i++; i%2 == 0 {
				_, err = r.CompleteMove(ctx, m.ID)
			} else {
				_, err = r.AbortMove(ctx, m.ID)
			}
			if err != nil {
				t.Errorf("round %d: ending move %s left by the crash: %v", round, m.ID, err)
			}
			known[m.AccountID] = trail(r, m.AccountID)
		}
		head, err := r.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if round > 0 {
			if got := checkFileLog(t, path, kept); got != head {
				t.Fatalf("round %d: the log's entries hash to %v, the Router's checkpoint is %v", round, got, head)
			}
		}
		if events := storedEvents(t, path); head.Size != events {
			t.Fatalf("round %d: the log holds %d entries, the accounts %d events", round, head.Size, events)
		}
		kept = head
	}
	if total < rounds {
		t.Errorf("only %d acknowledged placements in %d rounds", total, rounds)
	}
	t.Logf("%d rounds, %d acknowledged placements", rounds, total)
}

// killedChild runs this test binary as a child, with run as its -test.run
// and env added to its environment, waits for its "ready" line, reads the
// lines it prints until after has passed and it printed at least atLeast
// of them, kills it with SIGKILL, and returns every line it printed
// before it died (each one an acknowledgement).
func killedChild(t *testing.T, run string, after time.Duration, atLeast int, env ...string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+run)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start: %q", lines.Text())
	}
	killAt := time.Now().Add(after)
	var got []string
	for (time.Now().Before(killAt) || len(got) < atLeast) && lines.Scan() {
		got = append(got, lines.Text())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	for lines.Scan() {
		got = append(got, lines.Text())
	}
	cmd.Wait()
	return got
}

// childSay returns how a child of killedChild says a line: whole, on its
// standard output, one goroutine at a time.
func childSay() func(format string, args ...any) {
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		mu.Unlock()
	}
}
