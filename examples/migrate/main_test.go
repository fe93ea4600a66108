package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

// migrateRun runs the script and returns its exit status and output.
func migrateRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return migrateRunAt(t, time.Now, args...)
}

// migrateRunAt runs the script with the clock now.
func migrateRunAt(t *testing.T, now func() time.Time, args ...string) (int, string, string) {
	t.Helper()
	var out, log bytes.Buffer
	bg := context.Background()
	code := run(env{stop: bg, kill: bg, stdout: &out, stderr: &log, now: now}, args)
	return code, out.String(), log.String()
}

// migrateResult is what a run of the script gave: its exit status and
// output.
type migrateResult struct {
	code      int
	out, logs string
}

// migrateAsync runs the script in a goroutine; its result comes on the
// channel.
func migrateAsync(t *testing.T, args ...string) <-chan migrateResult {
	done := make(chan migrateResult, 1)
	go func() {
		code, out, logs := migrateRunAt(t, time.Now, args...)
		done <- migrateResult{code, out, logs}
	}()
	return done
}

// waitForFile waits until path exists (a copy command touches it as it
// starts), failing the test after 30 s; what names the command.
func waitForFile(t *testing.T, path, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start within 30 s", what)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// state returns every placement of the store file, and its open moves.
func state(t *testing.T, db string) ([]residency.Placement, []residency.Move) {
	t.Helper()
	r, err := residency.Open(context.Background(), residency.WithPath(db))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ps []residency.Placement
	for _, reg := range region.All() {
		for p := range r.AccountsInRegion(reg) {
			ps = append(ps, p)
		}
	}
	var ms []residency.Move
	for m := range r.Moves() {
		ms = append(ms, m)
	}
	return ps, ms
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	bad := writeFile(t, dir, "bad.csv", "id,country\nx,DE\n")
	good := writeFile(t, dir, "good.csv", "account_id,country\nx,DE\n")
	for _, args := range [][]string{
		{},
		{"-import", good},
		{"-db", db},
		{"-db", db, "-import", filepath.Join(dir, "missing.csv")},
		{"-db", db, "-import", bad},
		{"-db", db, "-plan", good, "-no-copy"}, // an import header is a bad plan header
		{"-db", db, "-import", writeFile(t, dir, "empty.csv", "")},
		{"-db", db, "-import", good, "extra"},
		{"-db", db, "-nope"},
		{"-db", db, "-dry-run"},
		{"-db", db, "-import", good, "-catalog", filepath.Join(dir, "missing.json")},
		{"-db", db, "-import", good, "-catalog", bad},
	} {
		if code, out, log := migrateRun(t, args...); code != 2 {
			t.Errorf("migrate %q = %d, want 2\n%s%s", args, code, out, log)
		}
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("a usage error created the store: %v", err)
	}
}

// TestMissingStoreFileIsAUsageError: only -import creates a store file;
// every other run on a path where none exists is a usage error that names
// the path, and creates nothing.
func TestMissingStoreFileIsAUsageError(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	plan := writeFile(t, dir, "plan.csv", "account_id,to_datacenter\n")
	for _, args := range [][]string{
		{"-evacuate", "linode-eu", "-copy", "true"},
		{"-evacuate", "linode-eu", "-dry-run"},
		{"-plan", plan, "-copy", "true"},
		{"-abort", "mv-1"},
		{"-copy", "true"},
	} {
		code, out, log := migrateRun(t, append([]string{"-db", missing}, args...)...)
		if code != 2 || !strings.Contains(log, missing) {
			t.Errorf("migrate -db %s %q = %d, want 2 and the path named\n%s%s", missing, args, code, out, log)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatalf("migrate %q created %s", args, missing)
		}
	}
}

// TestImportIntoMissingDirectoryFails: -import creates the store file,
// but not its directory: a path in a directory that does not exist fails
// (exit 1), and imports nothing anywhere, not even into memory.
func TestImportIntoMissingDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "nodir", "d.db")
	imports := writeFile(t, dir, "a.csv", "account_id,country\nacme,DE\n")
	code, out, log := migrateRun(t, "-db", db, "-import", imports)
	if code != 1 || strings.Contains(out, "imported 1") {
		t.Errorf("-import into %s = exit %d, want 1 and nothing imported\n%s%s", db, code, out, log)
	}
}

// TestDryRunOfImportIntoMissingDirectoryFails: a dry run "checks
// everything and prints what would be done"; the run it stands for, an
// -import into a path whose directory does not exist, fails (exit 1,
// TestImportIntoMissingDirectoryFails), so the dry run fails too. Before,
// it took the missing directory for a store file not created yet
// (OpenFileStoreReadOnly's os.ErrNotExist), imported into an empty store
// in memory, reported the rows imported and exited 0.
func TestDryRunOfImportIntoMissingDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "nodir", "d.db")
	imports := writeFile(t, dir, "a.csv", "account_id,country\nacme,DE\n")
	if code, out, log := migrateRun(t, "-db", db, "-import", imports); code != 1 {
		t.Fatalf("-import into %s = exit %d, want 1\n%s%s", db, code, out, log)
	}
	code, out, log := migrateRun(t, "-db", db, "-import", imports, "-dry-run")
	if code != 1 {
		t.Errorf("-dry-run -import into %s = exit %d, want 1 as the run without -dry-run\n%s%s", db, code, out, log)
	}
}

func TestImportAndPlan(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	imports := writeFile(t, dir, "accounts.csv", `account_id,country,region
acme,DE,
globex,GB,
initech,US,EU
bad-country,Atlantis,
bad-region,DE,Mars
,DE,
too,many,fields,here
"unterminated,DE
tyrell,SG,
`)
	code, out, _ := migrateRun(t, "-db", db, "-import", imports)
	if code != 1 {
		t.Errorf("import with bad rows exited %d, want 1\n%s", code, out)
	}
	wantLines(t, out,
		`refused: line 5: account "bad-country": `, "invalid country",
		`refused: line 6: account "bad-region": region: unknown region "Mars"`,
		`refused: line 7: account "": residency: invalid account ID: empty account ID`,
		`refused: line 8: account "too": 4 fields`,
		`refused: line 9: account ""`,
		"summary: moved 0, already there 0, imported 3, already placed 0, refused 5, failed 0")
	ps, _ := state(t, db)
	got := map[string]region.Region{}
	for _, p := range ps {
		got[p.AccountID] = p.Region
	}
	// The unterminated quote swallows the rest of the file: tyrell is not placed.
	want := map[string]region.Region{"acme": region.EU, "globex": region.UK, "initech": region.EU}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("placed accounts mismatch (-want +got):\n%s", diff)
	}

	// Importing the good rows again is no change, and exits 0.
	again := writeFile(t, dir, "again.csv", "account_id,country\nacme,DE\nglobex,GB\n")
	if code, out, _ := migrateRun(t, "-db", db, "-import", again); code != 0 || !strings.Contains(out, "already placed 2") {
		t.Errorf("re-import = %d\n%s", code, out)
	}

	acme := placementOf(t, db, "acme")
	other := map[string]string{"linode-eu": "websupport-eu", "websupport-eu": "aws-eu-west-1", "aws-eu-west-1": "linode-eu"}[acme.DataCenter]
	plan := writeFile(t, dir, "plan.csv", fmt.Sprintf(`account_id,to_datacenter
acme,%s
globex,aws-us-west-1
nobody,linode-eu
initech,mars-1
acme,%s
`, other, other))
	code, out, _ = migrateRun(t, "-db", db, "-plan", plan, "-no-copy")
	if code != 1 {
		t.Errorf("plan with bad rows exited %d, want 1\n%s", code, out)
	}
	moved := placementOf(t, db, "acme")
	backup := ""
	if moved.Backup != acme.Backup { // CompleteMove chooses it again
		backup = fmt.Sprintf(" (backup %s -> %s)", acme.Backup, moved.Backup)
	}
	wantLines(t, out,
		fmt.Sprintf(`moved: account "acme" %s -> %s%s`+"\n", acme.DataCenter, other, backup),
		`refused: line 3: account "globex": residency: outside the home region`,
		`refused: line 4: account "nobody": residency: not found`,
		`refused: line 5: account "initech": residency: unknown data center "mars-1"`,
		"summary: moved 1, already there 1,") // line 6 is done by line 2
	if strings.Contains(out, "line 6") {
		t.Errorf("the row the plan's line 2 did is reported:\n%s", out)
	}
	if p := placementOf(t, db, "acme"); p.DataCenter != other || p.Moving() {
		t.Errorf("acme after the plan: %+v", p)
	}
	if p := placementOf(t, db, "globex"); p.Region != region.UK {
		t.Errorf("globex left the UK: %+v", p)
	}
}

func placementOf(t *testing.T, db, id string) residency.Placement {
	t.Helper()
	ps, _ := state(t, db)
	for _, p := range ps {
		if p.AccountID == id {
			return p
		}
	}
	t.Fatalf("no account %s", id)
	return residency.Placement{}
}

func seed(t *testing.T, db string, countries ...string) {
	t.Helper()
	r, err := residency.Open(context.Background(), residency.WithPath(db))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, c := range countries {
		if _, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: fmt.Sprintf("%s-%d", strings.ToLower(c), i), Country: c}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE", "DE", "DE", "GB", "FR", "FR")
	before, _ := state(t, db)
	stat, _ := os.Stat(db)
	imports := writeFile(t, dir, "a.csv", "account_id,country\nnew-1,JP\nbad,EU\n")
	plan := writeFile(t, dir, "p.csv", "account_id,to_datacenter\nde-0,aws-us-west-1\n")
	code, out, _ := migrateRun(t, "-db", db, "-dry-run", "-import", imports, "-plan", plan, "-evacuate", "linode-eu", "-copy", "touch "+filepath.Join(dir, "copied"))
	if code != 1 {
		t.Errorf("dry run with refusals exited %d, want 1\n%s", code, out)
	}
	wantLines(t, out, "dry run: nothing will be changed", `refused: line 3: account "bad"`, `refused: line 2: account "de-0": residency: outside the home region`, "summary: would move")
	after, _ := state(t, db)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("dry run changed the store (-before +after):\n%s", diff)
	}
	if now, _ := os.Stat(db); !now.ModTime().Equal(stat.ModTime()) || now.Size() != stat.Size() {
		t.Errorf("dry run wrote the store file")
	}
	if _, err := os.Stat(filepath.Join(dir, "copied")); !os.IsNotExist(err) {
		t.Errorf("dry run ran the copy command")
	}
	// A clean dry run exits 0.
	if code, out, _ := migrateRun(t, "-db", db, "-dry-run", "-evacuate", "linode-eu"); code != 0 {
		t.Errorf("clean dry run exited %d\n%s", code, out)
	}
	// A dry run on a store that does not exist creates none.
	missing := filepath.Join(dir, "missing.db")
	migrateRun(t, "-db", missing, "-dry-run", "-import", imports)
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("dry run created %s", missing)
	}
}

// TestDryRunLeavesAnOlderFormatFile: a dry run says "nothing will be
// changed", and the README that it "changes nothing"; on a store file of
// an older format (residency's format-2 fixture) it must leave the file's
// bytes as they were. It opened the file for writing, which upgraded it in
// place to the current format (one that older versions of domicile refuse)
// before its writes went nowhere. A dry run opens the file read-only,
// which reads no file of format 4 or older: it fails (exit 1), saying how
// to upgrade the file first; once that is done, it runs, and still leaves
// the file as it was.
func TestDryRunLeavesAnOlderFormatFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "v2.db")
	f, err := os.Open(filepath.Join("..", "..", "residency", "testdata", "v2.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	before, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, before, 0o600); err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string, before []byte) {
		t.Helper()
		after, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("%s rewrote the store file (%d bytes before, %d after)", what, len(before), len(after))
		}
	}
	code, out, log := migrateRun(t, "-db", db, "-dry-run", "-evacuate", "linode-eu")
	if code != 1 {
		t.Errorf("dry run on a file of format 2 exited %d, want 1\n%s%s", code, out, log)
	}
	for _, want := range []string{db + " has format 2", "a dry run opens the store read-only", "upgrade it first", `"account_id,country"`} {
		if !strings.Contains(log, want) {
			t.Errorf("dry run on a file of format 2: stderr lacks %q:\n%s", want, log)
		}
	}
	unchanged("a dry run on a file of format 2", before)

	// The upgrade the error suggests: an -import of no account.
	header := writeFile(t, dir, "header.csv", "account_id,country\n")
	if code, out, log := migrateRun(t, "-db", db, "-import", header); code != 0 || !strings.Contains(out, "imported 0") {
		t.Fatalf("-import of a header-only CSV exited %d, want 0 and nothing imported\n%s%s", code, out, log)
	}
	upgraded, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, upgraded) {
		t.Fatal("-import did not upgrade the file of format 2")
	}
	if code, out, log := migrateRun(t, "-db", db, "-dry-run", "-evacuate", "linode-eu"); code != 0 || !strings.Contains(out, "would drain linode-eu") {
		t.Errorf("dry run on the upgraded file exited %d, want 0 and the drain planned\n%s%s", code, out, log)
	}
	unchanged("a dry run on the upgraded file", upgraded)
}

func TestEvacuate(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE", "FR", "IT", "ES", "NL", "BE", "AT", "PL", "GB", "GB", "US")
	var onLinode []string
	ps, _ := state(t, db)
	for _, p := range ps {
		if p.DataCenter == "linode-eu" {
			onLinode = append(onLinode, p.AccountID)
		}
	}
	if len(onLinode) == 0 {
		t.Fatal("no account on linode-eu to evacuate")
	}
	log := filepath.Join(dir, "copies.log")
	code, out, progress := migrateRun(t, "-db", db, "-evacuate", "linode-eu", "-copy", `echo "$ACCOUNT_ID $FROM_DATACENTER $TO_DATACENTER" >> `+log)
	if code != 0 {
		t.Fatalf("EU evacuation exited %d\n%s", code, out)
	}
	// Not on a terminal: plain progress lines, ending at the total.
	if want := fmt.Sprintf("evacuating linode-eu: %d/%d\n", len(onLinode), len(onLinode)); !strings.HasSuffix(progress, want) {
		t.Errorf("progress %q does not end with %q", progress, want)
	}
	wantLines(t, out, fmt.Sprintf("drained linode-eu; moving its %d accounts", len(onLinode)), fmt.Sprintf("summary: moved %d,", len(onLinode)))
	copies, _ := os.ReadFile(log)
	if n := strings.Count(string(copies), "\n"); n != len(onLinode) || !strings.Contains(string(copies), onLinode[0]+" linode-eu ") {
		t.Errorf("copy command ran %d times for %d accounts:\n%s", n, len(onLinode), copies)
	}
	ps, moves := state(t, db)
	for _, p := range ps {
		if p.DataCenter == "linode-eu" {
			t.Errorf("%s still on linode-eu", p.AccountID)
		}
	}
	if len(moves) != 0 {
		t.Errorf("open moves after the evacuation: %v", moves)
	}
	r, _ := residency.Open(context.Background(), residency.WithPath(db))
	if s, _ := r.Status("linode-eu"); s != "draining" {
		t.Errorf("linode-eu status %q after the evacuation", s)
	}
	r.Close()

	// The UK has one data center: refused, nothing drained, nothing moved.
	before, _ := state(t, db)
	code, out, _ = migrateRun(t, "-db", db, "-evacuate", "linode-uk", "-no-copy")
	if code != 1 {
		t.Errorf("UK evacuation exited %d, want 1\n%s", code, out)
	}
	wantLines(t, out, "region UK has no other active data center", "nothing drained, nothing moved")
	after, _ := state(t, db)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("refused evacuation changed the store (-before +after):\n%s", diff)
	}
	r, _ = residency.Open(context.Background(), residency.WithPath(db))
	if s, _ := r.Status("linode-uk"); s != "active" {
		t.Errorf("linode-uk status %q after a refused evacuation", s)
	}
	r.Close()
	if code, out, _ := migrateRun(t, "-db", db, "-evacuate", "mars-1", "-no-copy"); code != 1 || !strings.Contains(out, "unknown data center") {
		t.Errorf("evacuate mars-1 = %d\n%s", code, out)
	}
}

// TestEvacuateReportsWhatRemains: an evacuation that leaves accounts on
// the data center (here a copy fails) says so, names them, exits 1, and
// counts each account once.
func TestEvacuateReportsWhatRemains(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE", "FR", "IT", "ES", "NL", "BE", "AT", "PL")
	var onLinode []string
	ps, _ := state(t, db)
	for _, p := range ps {
		if p.DataCenter == "linode-eu" {
			onLinode = append(onLinode, p.AccountID)
		}
	}
	if len(onLinode) < 2 {
		t.Fatalf("%d accounts on linode-eu, want 2 or more", len(onLinode))
	}
	stuck := onLinode[0]
	code, out, _ := migrateRun(t, "-db", db, "-evacuate", "linode-eu", "-copy", `test "$ACCOUNT_ID" != `+stuck)
	if code != 1 {
		t.Errorf("evacuation with a failed copy exited %d, want 1\n%s", code, out)
	}
	wantLines(t, out,
		fmt.Sprintf(`failed: move of account %q linode-eu -> `, stuck),
		fmt.Sprintf("evacuate linode-eu: not empty: 1 accounts remain on it (%s)", stuck),
		fmt.Sprintf("summary: moved %d, already there 0, imported 0, already placed 0, refused 0, failed 1", len(onLinode)-1))
	if p := placementOf(t, db, stuck); p.DataCenter != "linode-eu" {
		t.Errorf("%s on %s, want linode-eu", stuck, p.DataCenter)
	}
}

func TestFailingCopyAborts(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE")
	p := placementOf(t, db, "de-0")
	to := map[string]string{"linode-eu": "websupport-eu", "websupport-eu": "aws-eu-west-1", "aws-eu-west-1": "linode-eu"}[p.DataCenter]
	plan := writeFile(t, dir, "p.csv", "account_id,to_datacenter\nde-0,"+to+"\n")
	code, out, _ := migrateRun(t, "-db", db, "-plan", plan, "-copy", "exit 3")
	if code != 1 {
		t.Errorf("failing copy exited %d, want 1\n%s", code, out)
	}
	wantLines(t, out, `failed: move of account "de-0" `+p.DataCenter+" -> "+to+" aborted: copy command: exit status 3", "failed 1")
	after := placementOf(t, db, "de-0")
	if after.DataCenter != p.DataCenter || after.Moving() {
		t.Errorf("after a failed copy: %+v", after)
	}
}

func TestResumesInterruptedRun(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE", "US")
	// An interrupted run left two moves open.
	r, err := residency.Open(context.Background(), residency.WithPath(db))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	de, _ := r.Lookup("de-0")
	us, _ := r.Lookup("us-1")
	toDE := map[string]string{"linode-eu": "websupport-eu", "websupport-eu": "aws-eu-west-1", "aws-eu-west-1": "linode-eu"}[de.DataCenter]
	toUS := map[string]string{"linode-us": "aws-us-west-1", "aws-us-west-1": "linode-us"}[us.DataCenter]
	if _, err := r.BeginMove(ctx, "de-0", toDE); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginMove(ctx, "us-1", toUS); err != nil {
		t.Fatal(err)
	}
	r.Close()
	// The copy succeeds for de-0 and fails for us-1.
	plan := writeFile(t, dir, "p.csv", "account_id,to_datacenter\n")
	code, out, _ := migrateRun(t, "-db", db, "-plan", plan, "-copy", `test "$ACCOUNT_ID" = de-0`)
	if code != 1 {
		t.Errorf("resume with a failed copy exited %d, want 1\n%s", code, out)
	}
	wantLines(t, out, "resuming 2 open moves",
		`resumed moved: account "de-0" `+de.DataCenter+" -> "+toDE,
		`failed: resumed move of account "us-1" `+us.DataCenter+" -> "+toUS+" aborted")
	ps, moves := state(t, db)
	if len(moves) != 0 {
		t.Errorf("moves still open: %v", moves)
	}
	for _, p := range ps {
		if p.AccountID == "de-0" && p.DataCenter != toDE || p.AccountID == "us-1" && p.DataCenter != us.DataCenter {
			t.Errorf("after resuming: %s on %s", p.AccountID, p.DataCenter)
		}
	}
}

// otherDC maps a data center to another of its region.
var otherDC = map[string]string{
	"linode-eu": "websupport-eu", "websupport-eu": "aws-eu-west-1", "aws-eu-west-1": "linode-eu",
	"linode-us": "aws-us-west-1", "aws-us-west-1": "linode-us",
}

// openRouter opens the store file for a test to change it as another
// program would.
func openRouter(t *testing.T, db string) *residency.Router {
	t.Helper()
	r, err := residency.Open(context.Background(), residency.WithPath(db))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestNoCopy: -plan and -evacuate need -copy or -no-copy, but for a dry
// run; the two exclude each other; with -no-copy the run moves its
// accounts with no command.
func TestNoCopy(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE")
	from := placementOf(t, db, "de-0").DataCenter
	plan := writeFile(t, dir, "plan.csv", "account_id,to_datacenter\nde-0,"+otherDC[from]+"\n")
	for _, args := range [][]string{
		{"-plan", plan},
		{"-evacuate", from},
		{"-plan", plan, "-copy", "true", "-no-copy"},
		{"-no-copy"},
	} {
		code, out, log := migrateRun(t, append([]string{"-db", db}, args...)...)
		if code != 2 {
			t.Errorf("migrate %q = %d, want 2\n%s%s", args, code, out, log)
		}
	}
	_, _, log := migrateRun(t, "-db", db, "-plan", plan)
	if !strings.Contains(log, "give -copy CMD to copy each one's data, or -no-copy") {
		t.Errorf("the usage error does not say what to give:\n%s", log)
	}
	if p := placementOf(t, db, "de-0"); p.DataCenter != from || p.Moving() {
		t.Fatalf("a refused run moved de-0: %+v", p)
	}
	if code, out, _ := migrateRun(t, "-db", db, "-plan", plan, "-dry-run"); code != 0 || !strings.Contains(out, "would move: account \"de-0\"") {
		t.Errorf("a dry run without -copy = %d, want 0 and the move\n%s", code, out)
	}
	if code, out, _ := migrateRun(t, "-db", db, "-plan", plan, "-no-copy"); code != 0 || !strings.Contains(out, "moved: account \"de-0\"") {
		t.Errorf("-plan -no-copy = %d, want 0 and the move\n%s", code, out)
	}
	if p := placementOf(t, db, "de-0"); p.DataCenter != otherDC[from] || p.Moving() {
		t.Errorf("after -plan -no-copy: %+v, want on %s", p, otherDC[from])
	}
}

func TestOpenMovesNeedCopyToResume(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE", "FR")
	// Another program began a move and has not copied the data yet.
	r := openRouter(t, db)
	de, _ := r.Lookup("de-0")
	mv, err := r.BeginMove(context.Background(), "de-0", otherDC[de.DataCenter])
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	plan := writeFile(t, dir, "p.csv", "account_id,to_datacenter\n")
	code, out, _ := migrateRun(t, "-db", db, "-plan", plan, "-no-copy")
	if code != 0 {
		t.Errorf("a run with nothing to do exited %d\n%s", code, out)
	}
	wantLines(t, out, "1 moves are open and left so: give -copy",
		fmt.Sprintf(`open: move %s of account "de-0" %s -> %s, begun `, mv.ID, mv.From, mv.To),
		"summary: moved 0,")
	if _, moves := state(t, db); len(moves) != 1 || moves[0].ID != mv.ID {
		t.Errorf("open moves after a run without -copy: %v, want %s still open", moves, mv.ID)
	}
	if p := placementOf(t, db, "de-0"); p.DataCenter != de.DataCenter {
		t.Errorf("a run without -copy moved de-0 to %s", p.DataCenter)
	}

	// -copy alone resumes it.
	copies := filepath.Join(dir, "copies.log")
	code, out, _ = migrateRun(t, "-db", db, "-copy", `echo "$ACCOUNT_ID" >> `+copies)
	if code != 0 {
		t.Errorf("resume exited %d\n%s", code, out)
	}
	wantLines(t, out, "resuming 1 open moves", fmt.Sprintf(`resumed moved: account "de-0" %s -> %s`, mv.From, mv.To))
	if got, _ := os.ReadFile(copies); string(got) != "de-0\n" {
		t.Errorf("copies %q, want de-0 once", got)
	}
	if p := placementOf(t, db, "de-0"); p.DataCenter != mv.To {
		t.Errorf("de-0 on %s after the resume, want %s", p.DataCenter, mv.To)
	}
}

func TestAbortByID(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE", "US")
	r := openRouter(t, db)
	de, _ := r.Lookup("de-0")
	mv, err := r.BeginMove(context.Background(), "de-0", otherDC[de.DataCenter])
	if err != nil {
		t.Fatal(err)
	}
	us, _ := r.Lookup("us-1")
	other, err := r.BeginMove(context.Background(), "us-1", otherDC[us.DataCenter])
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	// A dry run says so and changes nothing.
	code, out, _ := migrateRun(t, "-db", db, "-dry-run", "-abort", mv.ID)
	if code != 0 {
		t.Errorf("dry-run abort exited %d\n%s", code, out)
	}
	wantLines(t, out, fmt.Sprintf(`would abort: move %s of account "de-0" %s -> %s`, mv.ID, mv.From, mv.To))
	if _, moves := state(t, db); len(moves) != 2 {
		t.Errorf("a dry run aborted a move: %v", moves)
	}

	code, out, _ = migrateRun(t, "-db", db, "-abort", mv.ID, "-abort", "mv-nope")
	if code != 1 {
		t.Errorf("abort of an unknown move exited %d, want 1\n%s", code, out)
	}
	wantLines(t, out,
		fmt.Sprintf(`aborted: move %s of account "de-0" %s -> %s`, mv.ID, mv.From, mv.To),
		`refused: abort mv-nope: residency: not found: move "mv-nope"`,
		"1 moves are open and left so")
	_, moves := state(t, db)
	if diff := cmp.Diff([]residency.Move{other}, moves); diff != "" {
		t.Errorf("open moves mismatch (-want +got):\n%s", diff)
	}
	if p := placementOf(t, db, "de-0"); p.DataCenter != de.DataCenter || p.Version != de.Version+2 {
		t.Errorf("de-0 after its abort: %+v", p)
	}
}

// TestResumeChecksBeforeCopying leaves moves open that can no longer
// complete: each must be aborted before its data is copied, and reported.
func TestResumeChecksBeforeCopying(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// open begins a move of account de-0 that may no longer complete,
		// and returns the clock to run the script with.
		open func(t *testing.T, r *residency.Router) func() time.Time
		says string
	}{
		{"agreement revoked", func(t *testing.T, r *residency.Router) func() time.Time {
			grantAndBegin(t, r, time.Time{})
			if err := r.RevokeTransfer(ctx, "de-0", "T-1"); err != nil {
				t.Fatal(err)
			}
			return time.Now
		}, `outside the home region: transfer agreement "T-1" to UK was revoked at`},
		{"agreement expired", func(t *testing.T, r *residency.Router) func() time.Time {
			expires := time.Now().Add(time.Hour)
			grantAndBegin(t, r, expires)
			return func() time.Time { return expires.Add(time.Minute) }
		}, `outside the home region: transfer agreement "T-1" to UK expired at`},
		{"target drained", func(t *testing.T, r *residency.Router) func() time.Time {
			de, _ := r.Lookup("de-0")
			to := otherDC[de.DataCenter]
			if _, err := r.BeginMove(ctx, "de-0", to); err != nil {
				t.Fatal(err)
			}
			if err := r.Drain(ctx, to); err != nil {
				t.Fatal(err)
			}
			return time.Now
		}, "is draining and takes no moves"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "d.db")
			seed(t, db, "DE")
			r := openRouter(t, db)
			before, _ := r.Lookup("de-0")
			now := tt.open(t, r)
			r.Close()
			_, moves := state(t, db)
			mv := moves[0]

			copies := filepath.Join(dir, "copies.log")
			empty := writeFile(t, dir, "p.csv", "account_id,to_datacenter\n")
			code, out, _ := migrateRunAt(t, now, "-db", db, "-plan", empty, "-copy", `echo "$ACCOUNT_ID" >> `+copies)
			if code != 1 {
				t.Errorf("resume of a move that cannot complete exited %d, want 1\n%s", code, out)
			}
			wantLines(t, out, fmt.Sprintf(`failed: resumed move of account "de-0" %s -> %s aborted before copying: `, mv.From, mv.To), tt.says, "failed 1")
			if _, err := os.Stat(copies); !os.IsNotExist(err) {
				t.Errorf("the copy command ran for a move that cannot complete")
			}
			after := placementOf(t, db, "de-0")
			if _, moves := state(t, db); len(moves) != 0 || after.DataCenter != before.DataCenter || after.Region != region.EU {
				t.Errorf("after the resume: %+v, open moves %v", after, moves)
			}
			// Nothing is left to resume.
			if code, out, _ := migrateRunAt(t, now, "-db", db, "-copy", "true"); code != 0 || strings.Contains(out, "resum") {
				t.Errorf("second run = %d\n%s", code, out)
			}
		})
	}
}

// grantAndBegin grants account de-0 the transfer agreement T-1 to the UK
// and begins its move to linode-uk.
func grantAndBegin(t *testing.T, r *residency.Router, expires time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "de-0", To: region.UK, Reference: "T-1", ExpiresAt: expires}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginMove(ctx, "de-0", "linode-uk"); err != nil {
		t.Fatal(err)
	}
}

// TestAgreementLapsingDuringCopyAborts lets the agreement of a move expire
// while its data is copied: CompleteMove refuses, and the move must be
// aborted, not left open to be copied again by every run.
func TestAgreementLapsingDuringCopyAborts(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	seed(t, db, "DE")
	expires := time.Now().Add(time.Hour)
	r := openRouter(t, db)
	if err := r.GrantTransfer(context.Background(), residency.Transfer{AccountID: "de-0", To: region.UK, Reference: "T-1", ExpiresAt: expires}); err != nil {
		t.Fatal(err)
	}
	before, _ := r.Lookup("de-0")
	r.Close()
	// Time passes the expiry once the copy has run.
	copied := filepath.Join(dir, "copied")
	clock := func() time.Time {
		if _, err := os.Stat(copied); err == nil {
			return expires.Add(time.Minute)
		}
		return time.Now()
	}
	plan := writeFile(t, dir, "p.csv", "account_id,to_datacenter\nde-0,linode-uk\n")
	code, out, _ := migrateRunAt(t, clock, "-db", db, "-plan", plan, "-copy", "touch "+copied)
	if code != 1 {
		t.Errorf("a move whose agreement lapsed exited %d, want 1\n%s", code, out)
	}
	wantLines(t, out, fmt.Sprintf(`failed: move of account "de-0" %s -> linode-uk aborted after its copy; the data copied to linode-uk is not in use: `, before.DataCenter),
		`agreement "T-1" of move `, "is no longer live")
	if _, moves := state(t, db); len(moves) != 0 {
		t.Errorf("moves left open: %v", moves)
	}
	if p := placementOf(t, db, "de-0"); p.DataCenter != before.DataCenter {
		t.Errorf("de-0 on %s", p.DataCenter)
	}
}

func TestCSVSpreadsheetExport(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	// A byte order mark, and spaces around every field.
	imports := writeFile(t, dir, "a.csv", "\uFEFFaccount_id , country\r\n acme , DE \r\n\t globex\t,GB\r\n")
	code, out, _ := migrateRun(t, "-db", db, "-import", imports)
	if code != 0 {
		t.Fatalf("import of a spreadsheet's CSV exited %d\n%s", code, out)
	}
	ps, _ := state(t, db)
	var got []string
	for _, p := range ps {
		got = append(got, p.AccountID)
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"acme", "globex"}, got); diff != "" {
		t.Errorf("placed accounts mismatch (-want +got):\n%s", diff)
	}
	acme := placementOf(t, db, "acme")
	plan := writeFile(t, dir, "p.csv", "\uFEFFaccount_id,to_datacenter\nacme , "+otherDC[acme.DataCenter]+" \n")
	if code, out, _ := migrateRun(t, "-db", db, "-plan", plan, "-no-copy"); code != 0 {
		t.Errorf("plan of a spreadsheet's CSV exited %d\n%s", code, out)
	}
	if p := placementOf(t, db, "acme"); p.DataCenter != otherDC[acme.DataCenter] {
		t.Errorf("acme on %s", p.DataCenter)
	}
}

func TestRefusalsInLineOrder(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	// The router refuses lines 2 and 5, the script lines 3 and 4.
	imports := writeFile(t, dir, "a.csv", "account_id,country,region\nbad-country,Atlantis,\nbad-region,DE,Mars\na,b,c,d\nbad-id\x01,DE,\nok,DE,\n")
	code, out, _ := migrateRun(t, "-db", db, "-import", imports)
	if code != 1 {
		t.Errorf("import exited %d, want 1\n%s", code, out)
	}
	var lines []string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "refused: ") {
			lines = append(lines, strings.SplitN(l, ":", 3)[1])
		}
	}
	if diff := cmp.Diff([]string{" line 2", " line 3", " line 4", " line 5"}, lines); diff != "" {
		t.Errorf("refusals out of line order (-want +got):\n%s\n%s", diff, out)
	}
}

// TestFailureOrRefusal: what the script reports as failed (it could not be
// done, and may succeed when run again) and what as refused (the request
// or the policy says no), by the error, wrapped as the Router wraps it.
func TestFailureOrRefusal(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{residency.ErrStoreFailed, true},
		{residency.ErrUnavailable, true},
		{residency.ErrStale, true},
		{residency.ErrClosed, true},
		{context.Canceled, true},
		{context.DeadlineExceeded, true},
		{residency.ErrCrossRegion, false},
		{residency.ErrNotFound, false},
		{residency.ErrMoveInProgress, false},
		{residency.ErrConflict, false},
		// Another writer changed the account after the Router's last
		// reread: a rerun decides on the current state.
		{&residency.ConflictError{AccountID: "acme", Version: 3, Stored: residency.Placement{AccountID: "acme", Version: 5}, Stale: true}, true},
		{&residency.ConflictError{AccountID: "acme", Version: 3, Reason: "already lives in linode-eu"}, false},
		{residency.ErrUnknownDataCenter, false},
	} {
		err := fmt.Errorf("account %q: %w", "acme", tt.err)
		if got := failure(err); got != tt.want {
			t.Errorf("failure(%v) = %v, want %v", err, got, tt.want)
		}
	}
}
