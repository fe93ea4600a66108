package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// shellQuote quotes s for sh -c.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestMoveCompletedByAnotherRunIsNotReportedOpen: two migration runs on
// one PostgreSQL database (two operators, or a run started again while the
// first still copies). While run A copies an account, run B starts, finds
// A's move open and, given -copy, resumes it and completes it. A's own
// CompleteMove then gets ErrNotFound: the move is no longer open because
// it is done, which CompleteMove's doc says to tell apart with Lookup.
//
// A reports the account as moved, completed by another run, never as
// "left open", and its summary counts no failure: the account is on its
// target, no move is open, and a rerun finds nothing to resume. (Before, A
// printed "failed: move of account ... left open" and exited 1.)
//
// (The same two runs also show that B copies a move A is still copying:
// the resume step cannot tell a move of a crashed run from one of a live
// run; the doc warns only about a SIGKILLed run's copy.)
func TestMoveCompletedByAnotherRunIsNotReportedOpen(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	server := routertest.OnPostgres(t, dsn, nil)
	to := placeInEU(t, server, "acme")
	plan := writeFile(t, t.TempDir(), "plan.csv", "account_id,to_datacenter\nacme,"+to+"\n")
	// Run A's copy command is run B: this test binary as migrate, resuming
	// the open moves with a copy of its own.
	runB := asMigrate + "=1 " + shellQuote(os.Args[0]) + " -db " + shellQuote(dsn) + " -copy true >&2"
	code, out, log := migrateRun(t, "-db", dsn, "-plan", plan, "-copy", runB)
	if !strings.Contains(log, "resumed moved: account \"acme\"") {
		t.Fatalf("run B did not complete A's move; A's log:\n%s", log)
	}
	if err := server.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := server.Lookup("acme"); err != nil || p.DataCenter != to || p.Moving() {
		t.Fatalf("acme = %+v, %v; want on %s with no move open", p, err, to)
	}
	if strings.Contains(out, "left open") {
		t.Errorf("run A reports the completed move as left open:\n%s", out)
	}
	if code != 0 || !strings.Contains(out, "failed 0") {
		t.Errorf("run A exit %d, want 0 with no failure: the account is where the plan asked\n%s", code, out)
	}
}

// TestEvacuateLeavesNoAccountBehind: migrate -evacuate plans the moves
// (PlanEvacuation), then drains the data center, then carries out the
// plan it made before the drain. A backend instance that places accounts
// meanwhile (as a helpdesk backend does all day) can place some on the
// data center between the plan and the drain: they are in no plan, and
// the run still says "summary: moved N, ... failed 0" and exits 0, with
// accounts left on the drained data center. An operator who then
// decommissions it loses them.
//
// migrate exits 0 only when the data center holds no account: it plans
// again after Drain returns (once it is fenced, nothing new arrives).
// (Before, it exited 0 with 14 to 25 accounts left on linode-eu in three
// runs by hand with four placing goroutines.) The test tries three runs,
// each with the data center active again and four goroutines placing
// accounts on the server, and fails at the first that exits 0 leaving
// accounts behind.
func TestEvacuateLeavesNoAccountBehind(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	server := routertest.OnPostgres(t, dsn, nil)
	for i := range 30 {
		placeInEU(t, server, fmt.Sprint("seed-", i))
	}
	for attempt := range 3 {
		if err := server.Activate(ctx, "linode-eu"); err != nil {
			t.Fatal(err)
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					// Errors are the test's business only through what
					// ends on linode-eu.
					server.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprintf("new-%d-%d-%d", attempt, w, i), Country: "DE"})
				}
			})
		}
		code, out, log := migrateRun(t, "-db", dsn, "-evacuate", "linode-eu", "-copy", "true")
		stop.Store(true)
		wg.Wait()
		if err := server.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		var left []string
		for p := range server.Accounts("linode-eu") {
			left = append(left, p.AccountID)
		}
		if code == 0 && len(left) > 0 {
			t.Fatalf("run %d exited 0 but left %d accounts on the drained linode-eu (%v...)\n%s", attempt+1, len(left), left[:min(3, len(left))], out)
		}
		if code != 0 {
			t.Logf("run %d exited %d (fine if it says why):\n%s\n%s", attempt+1, code, out, log)
		}
	}
}

// TestMoveAbortedByAnotherRunIsReported: while the script copies an
// account, another program aborts its move. CompleteMove then says
// ErrNotFound; the account is still on its source, so the script reports
// the move as ended by another run, not completed (a failure: a rerun may
// move it), and neither as moved nor as left open.
func TestMoveAbortedByAnotherRunIsReported(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	server := routertest.OnPostgres(t, dsn, nil)
	to := placeInEU(t, server, "acme")
	from, err := server.Lookup("acme")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copying, resume := filepath.Join(dir, "copying"), filepath.Join(dir, "resume")
	plan := writeFile(t, dir, "plan.csv", "account_id,to_datacenter\nacme,"+to+"\n")
	done := migrateAsync(t, "-db", dsn, "-plan", plan,
		"-copy", fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.02; done", copying, resume))
	waitForFile(t, copying, "the copy")
	if err := server.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := server.Lookup("acme")
	if err != nil || !p.Moving() {
		t.Fatalf("acme while copied = %+v, %v; want a move open", p, err)
	}
	if _, err := server.AbortMove(ctx, p.Move.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(resume, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.code != 1 {
		t.Errorf("exit %d, want 1: the plan's move was not made", res.code)
	}
	wantLines(t, res.out,
		fmt.Sprintf(`failed: move of account "acme" %s -> %s was ended by another run, not completed: the account lives in %s`, from.DataCenter, to, from.DataCenter),
		"summary: moved 0,", "failed 1")
	if strings.Contains(res.out, "left open") {
		t.Errorf("the aborted move is reported left open:\n%s", res.out)
	}
}

// TestEvacuatePlansAgain: accounts that reach the data center while the
// evacuation moves the ones of its first plan (here the data center is
// activated again meanwhile, and accounts placed on it) are found by the
// next plan and moved; the run exits 0 with the data center empty.
func TestEvacuatePlansAgain(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	server := routertest.OnPostgres(t, dsn, nil)
	for i := range 10 {
		placeInEU(t, server, fmt.Sprint("seed-", i))
	}
	dir := t.TempDir()
	copying, resume := filepath.Join(dir, "copying"), filepath.Join(dir, "resume")
	// The first copy waits for the test; the others run at once.
	copyCmd := fmt.Sprintf("if [ ! -e %[1]s ]; then touch %[1]s; while [ ! -e %[2]s ]; do sleep 0.02; done; fi", copying, resume)
	done := migrateAsync(t, "-db", dsn, "-evacuate", "linode-eu", "-copy", copyCmd)
	waitForFile(t, copying, "the first copy")
	if err := server.Activate(ctx, "linode-eu"); err != nil {
		t.Fatal(err)
	}
	var late []string
	for i := 0; len(late) < 3; i++ {
		p, err := server.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("late-", i), Country: "DE"})
		if err != nil {
			t.Fatal(err)
		}
		if p.DataCenter == "linode-eu" {
			late = append(late, p.AccountID)
		}
	}
	if err := os.WriteFile(resume, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.code != 0 {
		t.Errorf("exit %d, want 0\n%s\n%s", res.code, res.out, res.logs)
	}
	wantLines(t, res.out, "evacuate linode-eu: 3 more accounts found on it; moving them")
	for _, id := range late {
		if !strings.Contains(res.out, fmt.Sprintf("moved: account %q linode-eu -> ", id)) {
			t.Errorf("%s, placed on linode-eu during the evacuation, was not moved:\n%s", id, res.out)
		}
	}
	if err := server.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for p := range server.Accounts("linode-eu") {
		t.Errorf("%s left on linode-eu", p.AccountID)
	}
}

// TestEvacuateReportsAnAccountMovedBack: an account the evacuation moved
// away is moved back onto the data center by another program (which
// activated it again) before the run ends. No plan holds it any more (the
// run tried it), but the data center is not empty: the run names it and
// exits 1.
func TestEvacuateReportsAnAccountMovedBack(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	server := routertest.OnPostgres(t, dsn, nil)
	var onLinode []string
	for i := 0; len(onLinode) < 3; i++ {
		id := fmt.Sprint("seed-", i)
		if placeInEU(t, server, id) != "linode-eu" {
			onLinode = append(onLinode, id)
		}
	}
	dir := t.TempDir()
	first, copying, resume := filepath.Join(dir, "first"), filepath.Join(dir, "copying"), filepath.Join(dir, "resume")
	// The second copy waits for the test; the others run at once.
	copyCmd := fmt.Sprintf("if [ ! -e %[1]s ]; then touch %[1]s; elif [ ! -e %[2]s ]; then touch %[2]s; while [ ! -e %[3]s ]; do sleep 0.02; done; fi", first, copying, resume)
	done := migrateAsync(t, "-db", dsn, "-evacuate", "linode-eu", "-copy", copyCmd)
	waitForFile(t, copying, "the second copy")
	if err := server.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var back string
	for _, id := range onLinode {
		if p, err := server.Lookup(id); err == nil && p.DataCenter != "linode-eu" && !p.Moving() {
			back = id
		}
	}
	if back == "" {
		t.Fatal("no account moved off linode-eu by the first copy")
	}
	if err := server.Activate(ctx, "linode-eu"); err != nil {
		t.Fatal(err)
	}
	mv, err := server.BeginMove(ctx, back, "linode-eu")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.CompleteMove(ctx, mv.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(resume, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.code != 1 {
		t.Errorf("exit %d, want 1: %s is on linode-eu again\n%s\n%s", res.code, back, res.out, res.logs)
	}
	wantLines(t, res.out,
		fmt.Sprintf("failed: evacuate linode-eu: account %q is on it still: run -evacuate linode-eu again", back),
		fmt.Sprintf("evacuate linode-eu: not empty: 1 accounts remain on it (%s)", back),
		"refused 0, failed 1")
}
