// Command migrate is a migration script over domicile's store (the embedded
// file or a PostgreSQL database): it imports existing accounts, moves
// accounts between data centers, and evacuates a data center, never taking
// data out of its region.
//
//	migrate -db PATH|URL [-catalog FILE] [-abort ID]... [-import FILE] [-plan FILE] [-evacuate DC] [-dry-run] [-copy CMD | -no-copy]
//
//	-catalog FILE  the catalog (JSON, as provider.LoadCatalog reads it) that
//	               the backend's Routers use; default: the built-in one
//	-abort ID      aborts the open move ID (repeatable), before anything else
//	-import FILE   CSV "account_id,country" (third column "region" optional):
//	               places each account, in file order
//	-plan FILE     CSV "account_id,to_datacenter": moves each account
//	-evacuate DC   drains the data center and moves its accounts to the other
//	               data centers of their region; refuses, changing nothing,
//	               when some account has nowhere to go in its region
//	               (see Evacuation)
//	-dry-run       checks everything and prints what would be done; changes
//	               nothing (see Dry runs)
//	-copy CMD      run (by sh -c) for each move between BeginMove and
//	               CompleteMove, with ACCOUNT_ID, FROM_DATACENTER and
//	               TO_DATACENTER in its environment; when it fails the move
//	               is aborted. Given alone, it resumes the open moves.
//	               Quote "$ACCOUNT_ID" in CMD, and do not use it as a path
//	               unchecked: it is the customer's ID as given, and may
//	               hold spaces, '/', '..' and a leading '-' (README).
//	-no-copy       move with no copy command: the operator states that the
//	               data is moved by other means (or that there is none)
//
// -plan and -evacuate need -copy or -no-copy (but for a dry run): moving
// an account with nothing to copy its data would leave it on a data
// center that holds none of it. -no-copy covers the moves the run begins
// only; open moves found at the start are still resumed only by -copy
// (-copy true when their data is in place already).
//
// -db is the embedded store's file, or a PostgreSQL URL (postgres://... or
// postgresql://...) shared with running servers: then CompleteMove returns
// only once every running server answers the new data center, so the
// -copy command's source may be deleted as soon as a move is reported.
// A move's report names the account's backup data center when the move
// changed it ("(backup OLD -> NEW)"): the copy in OLD is no longer its
// backup.
// Only -import creates a store: any other run on a path where no file
// exists, or on a database without domicile's tables, is a usage error
// that creates nothing (a mistyped -db would otherwise evacuate a new,
// empty store and report the data center empty).
//
// Give migrate the catalog file the backend gives its Routers
// (residency.WithCatalog): under another catalog it would plan moves into
// data centers the backend's takes offline or announces for a later date,
// and a store holding data centers the built-in catalog lacks does not
// open at all.
//
// CSV files may start with a UTF-8 byte order mark; fields are trimmed of
// white space on both sides. Every refused row is reported with its line
// number (the header is line 1), account and reason, in line order. A row
// is "refused" when the request is wrong or the policy forbids it, and
// "failed" when it could not be done (the store unreachable or the outcome
// of its write unknown, say): a failed row may succeed when run again. A
// row that is done already is neither: an -import row whose account is
// placed in its region ("already placed"), a -plan row whose account lives
// in its data center with no move open ("already there"). So a rerun of a
// run that did everything exits 0.
//
// # Dry runs
//
// A dry run makes the same Router calls on the store's state, with writes
// that go nowhere. It opens the store read-only
// (residency.OpenFileStoreReadOnly, postgres.ReadOnly), so that it creates
// no store and upgrades none: on PostgreSQL it needs no more than SELECT,
// and connects to the server directly or to a standby, not through
// PgBouncer, which refuses the read-only startup parameter. A store of an
// older format (a file of format 4 or older, tables of format 3 or older),
// which only a writable open upgrades, it cannot read: it fails (exit 1),
// saying so. Upgrade the store first, as any run without -dry-run does in
// place (an -import of a CSV file holding only the header
// "account_id,country" changes nothing else); older versions of domicile
// cannot read it after. A dry run of -import on a store that does not
// exist imports into an empty one, created nowhere.
//
// # Open moves
//
// Moves left open, by an interrupted run or begun by another program, are
// found first. With -copy they are resumed: each is checked before anything
// is copied (its target is still an active data center of the catalog and,
// for a move to another region, the transfer agreement that allowed it is
// still live); one that can no longer complete is aborted and reported, the
// others are copied again and completed, or aborted when the copy fails.
// Without -copy (-no-copy included) nothing could copy their data, so they
// are listed and left open: resume them with -copy or end them with -abort. A move whose
// CompleteMove is refused after its copy, because its agreement lapsed or
// its target left meanwhile, is aborted too; one refused for another reason
// (a store error) is left open for the next run. A move that another run
// (or program) ended while this one copied is not open any more: if the
// account now lives on its target, it is reported done ("completed by
// another run"); otherwise it was aborted, and is reported as a failure
// (a rerun may move the account again). Resuming cannot tell a move that a
// crashed run left from one that a live run is copying now: run one
// migrate at a time on a store, or a move may be copied twice at once,
// and completed by whichever run finishes first.
//
// # Evacuation
//
// -evacuate plans the moves (Router.PlanEvacuation), drains the data
// center, then plans again: servers go on placing accounts until the drain
// is committed, and a shared store's other Routers may have placed some
// that this one has not applied yet (it catches up with Router.Sync before
// each plan). It carries out the new plan's moves and plans again, until
// a plan holds no move it has not tried. It exits 0 only when the data
// center holds no account at the end; otherwise it names the accounts
// left ("not empty: N accounts remain on it"), each counted once, as the
// failure or refusal reported for it or as a failure of its own, and
// exits 1: the data center may be decommissioned only after a run that
// exits 0.
//
// # Interrupts
//
// The first SIGINT or SIGTERM lets the move in progress finish: its copy
// command runs to its end, the move is completed (or aborted if the copy
// failed), and the run stops there, exiting 1. A second one kills the copy
// command and aborts its move. The copy command runs in a process group of
// its own: a Ctrl-C at the terminal reaches migrate only, not the copy, and
// killing the copy kills everything it started. Only a SIGKILL of migrate
// itself can leave a copy running, and its move open for the next run:
// make sure that copy has ended before resuming the move.
//
// Exit status: 0 when everything asked was done, 1 when anything was
// refused or failed or the run was interrupted, 2 for a usage error.
package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/domicile-go/domicile/internal/storeflag"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

func main() {
	stop, kill := interrupts(os.Stderr)
	os.Exit(run(env{stop: stop, kill: kill, stdout: os.Stdout, stderr: os.Stderr, now: time.Now}, os.Args[1:]))
}

// interrupts returns a context that ends at the first SIGINT or SIGTERM,
// and one that ends at the second.
func interrupts(log io.Writer) (stop, kill context.Context) {
	stop, stopped := context.WithCancelCause(context.Background())
	kill, killed := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// Each message follows the cancellation it announces.
		s := <-sigs
		stopped(fmt.Errorf("interrupted by %v", s))
		fmt.Fprintf(log, "migrate: %v: finishing the move in progress, then stopping (again to abort it)\n", s)
		s = <-sigs
		killed(fmt.Errorf("interrupted twice (%v)", s))
		fmt.Fprintf(log, "migrate: %v again: killing the copy command and aborting its move\n", s)
	}()
	return stop, kill
}

// env is what a run gets from its process.
type env struct {
	// stop ends at the first interrupt: the run stops after the move in
	// progress. kill ends at the second: the copy command is killed and its
	// move aborted.
	stop, kill     context.Context
	stdout, stderr io.Writer
	// now is the clock of the router and of the checks of open moves.
	now func() time.Time
}

// errUsage marks errors that exit with status 2.
var errUsage = errors.New("usage")

// config is the command line.
type config struct {
	db, catalog, importFile, planFile, evacuate, copyCmd string
	aborts                                               []string
	dryRun, noCopy                                       bool
}

func run(e env, args []string) int {
	cfg, err := parseFlags(args, e.stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(e.stderr, "migrate:", err)
		}
		return 2
	}
	m := &migration{cfg: cfg, out: e.stdout, log: e.stderr, kill: e.kill, now: e.now}
	if err := m.run(e.stop); err != nil {
		fmt.Fprintln(e.stderr, "migrate:", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	if m.refused+m.failed > 0 {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.db, "db", "", "the domicile store: a file, or a PostgreSQL URL (postgres://... or postgresql://...) (required; only -import creates one)")
	fs.StringVar(&cfg.catalog, "catalog", "", storeflag.CatalogUsage)
	fs.StringVar(&cfg.importFile, "import", "", "CSV of accounts to place: account_id,country[,region]")
	fs.StringVar(&cfg.planFile, "plan", "", "CSV of moves: account_id,to_datacenter")
	fs.StringVar(&cfg.evacuate, "evacuate", "", "data center to drain and empty")
	fs.BoolVar(&cfg.dryRun, "dry-run", false, "check and print what would be done; change nothing (opens the store read-only)")
	fs.StringVar(&cfg.copyCmd, "copy", "", "command run for each move (sh -c), with ACCOUNT_ID, FROM_DATACENTER, TO_DATACENTER set; alone, resumes the open moves")
	fs.BoolVar(&cfg.noCopy, "no-copy", false, "move with no copy command: the data is moved by other means; open moves still need -copy")
	fs.Func("abort", "abort the open move `ID` (repeatable)", func(id string) error {
		cfg.aborts = append(cfg.aborts, id)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case cfg.db == "":
		return cfg, errors.New("-db is required")
	case cfg.importFile == "" && cfg.planFile == "" && cfg.evacuate == "" && cfg.copyCmd == "" && len(cfg.aborts) == 0:
		return cfg, errors.New("nothing to do: give -import, -plan, -evacuate, -abort or -copy")
	case cfg.copyCmd != "" && cfg.noCopy:
		return cfg, errors.New("-copy and -no-copy exclude each other")
	case (cfg.planFile != "" || cfg.evacuate != "") && cfg.copyCmd == "" && !cfg.noCopy && !cfg.dryRun:
		// Moving an account with nothing to copy its data would send it
		// to a data center that holds none of it: the operator says how.
		return cfg, errors.New("-plan and -evacuate move accounts: give -copy CMD to copy each one's data, or -no-copy if it is moved by other means")
	}
	return cfg, nil
}

// migration is one run of the script.
type migration struct {
	cfg      config
	out, log io.Writer
	kill     context.Context // ends when the copy in progress must be killed
	now      func() time.Time
	r        *residency.Router

	imported, existing, moved, there, refused, failed int
}

// row is one CSV record with its line number, or the line's CSV error.
type row struct {
	line   int
	fields []string
	err    error
}

func (m *migration) run(ctx context.Context) error {
	// Read every input before touching the store: a bad file changes nothing.
	var imports, moves []row
	var err error
	if m.cfg.importFile != "" {
		if imports, err = readCSV(m.cfg.importFile, []string{"account_id", "country"}, "region"); err != nil {
			return err
		}
	}
	if m.cfg.planFile != "" {
		if moves, err = readCSV(m.cfg.planFile, []string{"account_id", "to_datacenter"}, ""); err != nil {
			return err
		}
	}
	cat, err := storeflag.Catalog(m.cfg.catalog)
	if err != nil {
		return fmt.Errorf("%w: -catalog: %w", errUsage, err)
	}
	if m.r, err = m.open(ctx, cat); err != nil {
		return err
	}
	defer func() {
		// The run's outcome is reported already; a Router that could
		// not leave the members holds the servers' fences up for its
		// lease, which the operator should know.
		if err := m.r.Close(); err != nil {
			fmt.Fprintln(m.log, "migrate: closing:", err)
		}
	}()
	if m.cfg.dryRun {
		fmt.Fprintln(m.out, "dry run: nothing will be changed")
	}
	// Router calls are not cancelled mid-way: an interrupt stops the run
	// between two accounts, never inside a move, and skips the steps left.
	steps := []func() error{
		func() error { m.abortMoves(ctx); return nil },
		func() error { m.resume(ctx); return nil },
		func() error { return m.importAccounts(ctx, imports) },
		func() error { m.movePlan(ctx, moves); return nil },
		func() error { return m.evacuateDataCenter(ctx, m.cfg.evacuate) },
	}
	for _, step := range steps {
		if ctx.Err() != nil {
			break
		}
		if err := step(); err != nil {
			return err
		}
	}
	verb := "moved"
	if m.cfg.dryRun {
		verb = "would move"
	}
	fmt.Fprintf(m.out, "summary: %s %d, already there %d, imported %d, already placed %d, refused %d, failed %d\n",
		verb, m.moved, m.there, m.imported, m.existing, m.refused, m.failed)
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// open opens the store, with the catalog cat. Only -import may create a
// store: for anything else, a path where no file exists, or a database
// without domicile's tables, is a mistyped -db (or the wrong machine), and
// running there would report an empty store as done. A dry run opens the
// store read-only, so that it neither creates nor upgrades anything, and
// its writes go nowhere.
func (m *migration) open(ctx context.Context, cat *provider.Catalog) (*residency.Router, error) {
	clock, catalog := residency.WithClock(m.now), residency.WithCatalog(cat)
	var s residency.Store
	var err error
	switch {
	case m.cfg.dryRun:
		s, err = storeflag.OpenLog(ctx, m.cfg.db)
	case m.cfg.importFile != "":
		s, err = storeflag.Open(ctx, m.cfg.db)
	default:
		s, err = storeflag.OpenExisting(ctx, m.cfg.db)
	}
	// No store there: not an error of a writable -import's open, which
	// creates one (ErrNotExist then is a missing directory, say).
	noStore := errors.Is(err, os.ErrNotExist) || errors.Is(err, postgres.ErrNoTables)
	switch {
	case err == nil:
	case noStore && m.cfg.dryRun && m.cfg.importFile != "":
		if !storeflag.IsPostgres(m.cfg.db) {
			// The run it stands for creates the file: in a directory
			// that must exist.
			if _, err := os.Stat(filepath.Dir(m.cfg.db)); err != nil {
				return nil, err
			}
		}
		return residency.Open(ctx, clock, catalog) // an empty store, created nowhere
	case noStore && m.cfg.importFile == "":
		if storeflag.IsPostgres(m.cfg.db) {
			return nil, fmt.Errorf("%w: -db %s: no domicile tables in that database (schema %q); only -import creates them", errUsage, storeflag.Describe(m.cfg.db), postgres.DefaultSchema)
		}
		return nil, fmt.Errorf("%w: -db %s: no store file there; only -import creates one", errUsage, m.cfg.db)
	case m.cfg.dryRun && errors.Is(err, residency.ErrFormat):
		// An older format (or a newer one): only a writable open
		// upgrades a store, and a dry run changes nothing.
		return nil, fmt.Errorf("-db %s: a dry run opens the store read-only, and cannot read this one: %w; "+
			"to dry-run on a store of an older format, upgrade it first, as any run without -dry-run does "+
			"(in place: older versions of domicile cannot read it after): "+
			"an -import of a CSV file holding only the header %q changes nothing else", storeflag.Describe(m.cfg.db), err, "account_id,country")
	default:
		return nil, err
	}
	if m.cfg.dryRun {
		// A dry run reads the store, and follows no other instance: the
		// wrapper hides a shared store's log, not a TrailStore's trails.
		dry := residency.Store(discard{s})
		if _, ok := s.(residency.TrailStore); ok {
			dry = discardTrails{discard{s}}
		}
		s = dry
	}
	return residency.Open(ctx, residency.WithStore(s), clock, catalog)
}

// discardTrails is discard over a TrailStore: History reads its trails.
type discardTrails struct{ discard }

func (d discardTrails) Trail(ctx context.Context, accountID string) ([]residency.Event, error) {
	return d.Store.(residency.TrailStore).Trail(ctx, accountID)
}

// discard is a store whose changes are kept in memory only: a dry run
// makes the real calls, on the real state, and the file never changes.
type discard struct{ residency.Store }

func (discard) Apply(context.Context, []residency.Change) error { return nil }

// bom is the UTF-8 byte order mark that spreadsheets put before a CSV file.
const bom = "\uFEFF"

// readCSV reads a CSV file whose header is want, optionally followed by the
// column optional; a byte order mark before the header is skipped and
// every field is trimmed of white space. A missing file or a bad header is
// a usage error.
func readCSV(path string, want []string, optional string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if start, _ := br.Peek(len(bom)); string(start) == bom {
		br.Discard(len(bom))
	}
	r := csv.NewReader(br)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true // so that a quote after spaces still quotes
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: no CSV header: %v", errUsage, path, err)
	}
	trim(header)
	if !slices.Equal(header, want) && (optional == "" || !slices.Equal(header, append(want, optional))) {
		return nil, fmt.Errorf("%w: %s: header %q, want %q", errUsage, path, strings.Join(header, ","), strings.Join(want, ","))
	}
	var rows []row
	for {
		fields, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if pe, ok := errors.AsType[*csv.ParseError](err); ok {
			rows = append(rows, row{line: pe.StartLine, err: pe.Err})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errUsage, path, err)
		}
		line, _ := r.FieldPos(0)
		rows = append(rows, row{line: line, fields: trim(fields)})
	}
}

// trim trims every field of white space on both sides, in place.
func trim(fields []string) []string {
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return fields
}

func (m *migration) refuse(line int, account string, err error) {
	fmt.Fprintf(m.out, "%s: line %d: account %q: %s\n", m.count(err), line, account, unnamed(err, "account", account))
}

// unnamed is err's text without the name of what it concerns, when the
// Router put it first (kind "account" or "move", and its ID) and the line
// names it already.
func unnamed(err error, kind, id string) string {
	return strings.TrimPrefix(err.Error(), fmt.Sprintf("%s %q: ", kind, id))
}

// count counts err as a refusal or a failure, and returns which: a
// failure when the store or the Router could not do what was asked (the
// database unreachable, a write whose outcome is unknown, a Router whose
// state is stale or closed, a write that other writers kept making stale,
// an interrupt), a refusal otherwise (the request itself is wrong, or the
// policy forbids it).
func (m *migration) count(err error) string {
	if failure(err) {
		m.failed++
		return "failed"
	}
	m.refused++
	return "refused"
}

// failure reports whether err says that the call could not be done, as
// opposed to refused: it may succeed when the store is reachable again.
func failure(err error) bool {
	for _, f := range []error{residency.ErrStoreFailed, residency.ErrUnavailable, residency.ErrStale,
		residency.ErrStaleVersion, residency.ErrClosed, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, f) {
			return true
		}
	}
	return false
}

// importAccounts places the rows' accounts, in file order, and reports
// the refused rows in line order: those it refuses itself and those the
// router refuses.
func (m *migration) importAccounts(ctx context.Context, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	type refusal struct {
		line    int
		account string
		err     error
	}
	var refused []refusal
	defer func() {
		slices.SortStableFunc(refused, func(a, b refusal) int { return a.line - b.line })
		for _, r := range refused {
			m.refuse(r.line, r.account, r.err)
		}
	}()
	var valid []residency.ImportRow
	var lines []int // line of each valid row
	for _, r := range rows {
		f := r.fields
		if r.err != nil {
			refused = append(refused, refusal{r.line, "", r.err})
			continue
		}
		if len(f) < 2 || len(f) > 3 {
			refused = append(refused, refusal{r.line, first(f), fmt.Errorf("%d fields, want account_id,country[,region]", len(f))})
			continue
		}
		ir := residency.ImportRow{AccountID: f[0], Country: f[1]}
		if len(f) == 3 && f[2] != "" {
			reg, err := region.Parse(f[2])
			if err != nil {
				refused = append(refused, refusal{r.line, f[0], err})
				continue
			}
			ir.Region = reg
		}
		valid = append(valid, ir)
		lines = append(lines, r.line)
	}
	p := m.progress(len(valid), "importing")
	res, err := m.r.Import(context.WithoutCancel(ctx), func(yield func(residency.ImportRow) bool) {
		for _, ir := range valid {
			if ctx.Err() != nil || !yield(ir) {
				return
			}
			p.add()
		}
	})
	p.done()
	m.imported += res.Imported
	m.existing += res.Existing
	for _, e := range res.Refused {
		refused = append(refused, refusal{lines[e.Row-1], e.AccountID, e.Err})
	}
	return err
}

// movePlan moves each row's account, in file order. A row whose account
// lives in its data center already, with no move open, is done: counted
// as "already there", as a rerun of the plan finds its moves.
func (m *migration) movePlan(ctx context.Context, rows []row) {
	if len(rows) == 0 {
		return
	}
	p := m.progress(len(rows), "moving")
	defer p.done()
	for _, r := range rows {
		if ctx.Err() != nil {
			return
		}
		p.add()
		if r.err != nil {
			m.refuse(r.line, "", r.err)
			continue
		}
		if len(r.fields) != 2 {
			m.refuse(r.line, first(r.fields), fmt.Errorf("%d fields, want account_id,to_datacenter", len(r.fields)))
			continue
		}
		if err := m.move(ctx, r.fields[0], r.fields[1]); err != nil {
			if m.alreadyThere(err, r.fields[0], r.fields[1]) {
				m.there++
				continue
			}
			m.refuse(r.line, r.fields[0], err)
		}
	}
}

// evacuateDataCenter drains dc and moves its accounts away, or refuses
// before changing anything when some cannot stay in their region.
//
// The plan that decides whether to drain is made before the drain: an
// account placed on dc (or a move into it begun) between that plan and
// the drain is in none. So once the drain is committed, when nothing new
// can arrive, it plans again from the store's state (Sync first: a shared
// store's other Routers may have placed accounts this Router has not
// applied yet), carries out the moves it has not tried, and repeats until
// a plan holds no new move. The evacuation is done only when dc holds no
// account at the end: each account left there is reported, and counts as
// a failure if nothing else did.
func (m *migration) evacuateDataCenter(ctx context.Context, dc string) error {
	if dc == "" {
		return nil
	}
	bg := context.WithoutCancel(ctx)
	plan, err := m.r.PlanEvacuation(ctx, dc)
	if err != nil {
		fmt.Fprintf(m.out, "%s: evacuate %s: %v\n", m.count(err), dc, err)
		return nil
	}
	if len(plan.Stranded) > 0 {
		for _, s := range plan.Stranded {
			m.refused++
			fmt.Fprintf(m.out, "refused: evacuate %s: account %q: %v\n", dc, s.AccountID, s.Err)
		}
		fmt.Fprintf(m.out, "refused: evacuate %s: %d of %d accounts cannot stay in their region; nothing drained, nothing moved\n",
			dc, len(plan.Stranded), len(plan.Stranded)+len(plan.Moves))
		return nil
	}
	if err := m.r.Drain(bg, dc); err != nil {
		if errors.Is(err, residency.ErrNotFenced) {
			// The drain stands, but a server that has not applied it
			// may still place accounts there: move none now; a rerun
			// drains nothing more and waits for the servers again.
			m.failed++
			fmt.Fprintf(m.out, "failed: evacuate %s: drained, but not every server was seen to apply it; no account moved: run -evacuate %s again: %v\n", dc, dc, err)
			return nil
		}
		return err
	}
	verb := "drained"
	if m.cfg.dryRun {
		verb = "would drain"
	}
	// tried holds the accounts this evacuation moved or tried to; reported
	// those of them it counted as refused or failed.
	tried, reported := map[string]bool{}, map[string]bool{}
	for round := 0; ; round++ {
		if ctx.Err() != nil {
			return nil
		}
		if err := m.r.Sync(bg); err != nil {
			fmt.Fprintf(m.out, "%s: evacuate %s: %v\n", m.count(err), dc, err)
			return nil
		}
		if plan, err = m.r.PlanEvacuation(bg, dc); err != nil {
			fmt.Fprintf(m.out, "%s: evacuate %s: %v\n", m.count(err), dc, err)
			return nil
		}
		for _, s := range plan.Stranded {
			// Arrived between the first plan and the drain: a move
			// into dc, say, which can no longer complete.
			if !tried[s.AccountID] {
				tried[s.AccountID], reported[s.AccountID] = true, true
				m.refused++
				fmt.Fprintf(m.out, "refused: evacuate %s: account %q: %v\n", dc, s.AccountID, s.Err)
			}
		}
		var moves []residency.PlannedMove
		for _, pm := range plan.Moves {
			if !tried[pm.AccountID] {
				moves = append(moves, pm)
			}
		}
		switch {
		case round == 0:
			fmt.Fprintf(m.out, "%s %s; moving its %d accounts\n", verb, dc, len(moves))
		case len(moves) > 0:
			fmt.Fprintf(m.out, "evacuate %s: %d more accounts found on it; moving them\n", dc, len(moves))
		}
		if len(moves) == 0 {
			break
		}
		m.evacuate(ctx, dc, moves, tried, reported)
	}
	m.checkEmpty(bg, dc, reported)
	return nil
}

// evacuate carries out the moves of an evacuation of dc, marking each
// account tried, and reported if its move was counted refused or failed.
func (m *migration) evacuate(ctx context.Context, dc string, moves []residency.PlannedMove, tried, reported map[string]bool) {
	p := m.progress(len(moves), "evacuating "+dc)
	defer p.done()
	for _, pm := range moves {
		if ctx.Err() != nil {
			return
		}
		p.add()
		tried[pm.AccountID] = true
		counted := m.refused + m.failed
		if err := m.move(ctx, pm.AccountID, pm.To); err != nil {
			fmt.Fprintf(m.out, "%s: evacuate %s: account %q: %s\n", m.count(err), dc, pm.AccountID, unnamed(err, "account", pm.AccountID))
		}
		reported[pm.AccountID] = m.refused+m.failed > counted
	}
}

// checkEmpty reports the accounts an evacuation left on dc: each one the
// evacuation did not report already is a failure (one moved back there
// meanwhile, say), so that the run exits 0 only when dc is empty.
func (m *migration) checkEmpty(ctx context.Context, dc string, reported map[string]bool) {
	if err := m.r.Sync(ctx); err != nil {
		fmt.Fprintf(m.out, "%s: evacuate %s: cannot tell whether it is empty: %v\n", m.count(err), dc, err)
		return
	}
	var left []string
	for p := range m.r.Accounts(dc) {
		left = append(left, p.AccountID)
		if !reported[p.AccountID] {
			m.failed++
			fmt.Fprintf(m.out, "failed: evacuate %s: account %q is on it still: run -evacuate %s again\n", dc, p.AccountID, dc)
		}
	}
	if err := m.r.Err(); err != nil {
		fmt.Fprintf(m.out, "%s: evacuate %s: cannot tell whether it is empty: %v\n", m.count(err), dc, err)
		return
	}
	if len(left) > 0 {
		const shown = 5
		more := ""
		if len(left) > shown {
			more = fmt.Sprintf(" and %d more", len(left)-shown)
		}
		fmt.Fprintf(m.out, "evacuate %s: not empty: %d accounts remain on it (%s%s)\n", dc, len(left), strings.Join(left[:min(shown, len(left))], ", "), more)
	}
}

// alreadyThere reports whether BeginMove's err says that the account lives
// in data center to already (a conflict, not stale), and the Router still
// says so, with no move open.
func (m *migration) alreadyThere(err error, account, to string) bool {
	if ce, ok := errors.AsType[*residency.ConflictError](err); !ok || ce.Stale {
		return false
	}
	p, err := m.r.Lookup(account)
	return err == nil && p.DataCenter == to && !p.Moving()
}

// move moves one account: BeginMove, the copy command, CompleteMove. A
// refused BeginMove is returned; a failed copy aborts the move and counts
// as a failure.
func (m *migration) move(ctx context.Context, account, to string) error {
	bg := context.WithoutCancel(ctx)
	mv, err := m.r.BeginMove(bg, account, to)
	if err != nil {
		return err
	}
	m.finish(ctx, mv, "")
	return nil
}

// finish copies the data of a begun move and completes it, or aborts it
// when the copy fails or when CompleteMove says the move can never
// complete. how prefixes the report ("resumed ").
func (m *migration) finish(ctx context.Context, mv residency.Move, how string) {
	bg := context.WithoutCancel(ctx)
	if err := m.copyData(mv); err != nil {
		m.fail(bg, mv, how+"move", "", err)
		return
	}
	before, _ := m.r.Lookup(mv.AccountID) // its backup, which CompleteMove chooses again
	p, err := m.r.CompleteMove(bg, mv.ID)
	if err != nil {
		if errors.Is(err, residency.ErrNotFenced) {
			// Done, but not every server was seen to apply it: one may
			// still read the source, which must stay.
			m.failed++
			fmt.Fprintf(m.out, "failed: %smove of account %q %s -> %s completed, but not every server was seen to apply it: keep the data in %s until they have: %v\n", how, mv.AccountID, mv.From, mv.To, mv.From, err)
			return
		}
		if errors.Is(err, residency.ErrNotFound) {
			// The move is no longer open: another run (or program)
			// completed or aborted it meanwhile.
			m.endedElsewhere(bg, mv, how, err)
			return
		}
		if !neverCompletes(err) {
			// A store error, say: the move may yet complete; the next
			// run with -copy resumes it.
			m.failed++
			fmt.Fprintf(m.out, "failed: %smove of account %q %s -> %s left open (%s): %s\n", how, mv.AccountID, mv.From, mv.To, mv.ID, unnamed(err, "move", mv.ID))
			return
		}
		m.fail(bg, mv, how+"move", " after its copy; the data copied to "+mv.To+" is not in use", err)
		return
	}
	m.moved++
	verb := "moved"
	if m.cfg.dryRun {
		verb = "would move"
	}
	backup := ""
	if p.Backup != before.Backup {
		// The copy in the old backup is no longer the account's backup.
		backup = fmt.Sprintf(" (backup %s -> %s)", or(before.Backup, "none"), or(p.Backup, "none"))
	}
	fmt.Fprintf(m.out, "%s%s: account %q %s -> %s%s\n", how, verb, mv.AccountID, mv.From, mv.To, backup)
}

// or returns s, or else when s is empty.
func or(s, orElse string) string {
	if s == "" {
		return orElse
	}
	return s
}

// endedElsewhere reports a move that CompleteMove no longer finds open
// (err): the account, as the store has it now, says how it ended. On its
// target, another run completed it: the move is done. Elsewhere, it was
// aborted: the data copied is not in use, and a rerun may move the
// account again.
func (m *migration) endedElsewhere(ctx context.Context, mv residency.Move, how string, err error) {
	p, lerr := m.whereNow(ctx, mv.AccountID)
	switch {
	case lerr != nil:
		m.failed++
		fmt.Fprintf(m.out, "failed: %smove of account %q %s -> %s is no longer open, and where the account lives cannot be read: %v\n", how, mv.AccountID, mv.From, mv.To, errors.Join(err, lerr))
	case p.DataCenter == mv.To && p.Move.ID != mv.ID:
		m.moved++
		verb := "moved"
		if m.cfg.dryRun {
			verb = "would move"
		}
		fmt.Fprintf(m.out, "%s%s: account %q %s -> %s (completed by another run)\n", how, verb, mv.AccountID, mv.From, mv.To)
	default:
		m.failed++
		fmt.Fprintf(m.out, "failed: %smove of account %q %s -> %s was ended by another run, not completed: the account lives in %s; the data copied to %s is not in use\n", how, mv.AccountID, mv.From, mv.To, p.DataCenter, mv.To)
	}
}

// whereNow returns the account's placement once the Router has applied
// every change committed before the call, by any Router on its store.
func (m *migration) whereNow(ctx context.Context, account string) (residency.Placement, error) {
	if err := m.r.Sync(ctx); err != nil {
		return residency.Placement{}, err
	}
	return m.r.Lookup(account)
}

// neverCompletes reports whether CompleteMove's error means that the move
// can never complete: its target left the catalog or takes no moves, or
// the agreement that allowed it lapsed.
func neverCompletes(err error) bool {
	return errors.Is(err, residency.ErrCrossRegion) || errors.Is(err, residency.ErrUnknownDataCenter) ||
		errors.Is(err, residency.ErrNoDataCenter)
}

// fail aborts a move that failed for err, and reports it:
// "failed: <what> of account ... aborted<when>: <err>".
func (m *migration) fail(ctx context.Context, mv residency.Move, what, when string, err error) {
	m.failed++
	verb := "aborted"
	if m.cfg.dryRun {
		verb = "would be aborted"
	}
	if _, aerr := m.r.AbortMove(ctx, mv.ID); aerr != nil {
		verb, err = "left open ("+mv.ID+")", errors.Join(err, fmt.Errorf("abort: %w", aerr))
		if p, lerr := m.whereNow(ctx, mv.AccountID); errors.Is(aerr, residency.ErrNotFound) && lerr == nil && p.Move.ID != mv.ID {
			// Not open: another run ended it meanwhile.
			verb = "ended by another run (the account lives in " + p.DataCenter + ")"
		}
	}
	fmt.Fprintf(m.out, "failed: %s of account %q %s -> %s %s%s: %v\n", what, mv.AccountID, mv.From, mv.To, verb, when, err)
}

// copyData runs the -copy command for a move; in a dry run, or with
// -no-copy, it does nothing.
// The command runs in a process group of its own, out of reach of a Ctrl-C
// at the terminal; when m.kill ends, the whole group is killed.
func (m *migration) copyData(mv residency.Move) error {
	if m.cfg.copyCmd == "" || m.cfg.dryRun {
		return nil
	}
	cmd := exec.CommandContext(m.kill, "sh", "-c", m.cfg.copyCmd)
	cmd.Env = append(os.Environ(), "ACCOUNT_ID="+mv.AccountID, "FROM_DATACENTER="+mv.From, "TO_DATACENTER="+mv.To)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		if m.kill.Err() != nil {
			return fmt.Errorf("copy command killed: %w", context.Cause(m.kill))
		}
		return fmt.Errorf("copy command: %w", err)
	}
	return nil
}

// openMoves returns the open moves, in move ID order.
func (m *migration) openMoves() []residency.Move {
	var open []residency.Move
	for mv := range m.r.Moves() {
		open = append(open, mv)
	}
	return open
}

// abortMoves aborts the moves that -abort names.
func (m *migration) abortMoves(ctx context.Context) {
	bg := context.WithoutCancel(ctx)
	open := map[string]residency.Move{}
	for _, mv := range m.openMoves() {
		open[mv.ID] = mv
	}
	verb := "aborted"
	if m.cfg.dryRun {
		verb = "would abort"
	}
	for _, id := range m.cfg.aborts {
		if ctx.Err() != nil {
			return
		}
		if _, err := m.r.AbortMove(bg, id); err != nil {
			fmt.Fprintf(m.out, "%s: abort %s: %v\n", m.count(err), id, err)
			continue
		}
		mv := open[id]
		fmt.Fprintf(m.out, "%s: move %s of account %q %s -> %s\n", verb, id, mv.AccountID, mv.From, mv.To)
	}
}

// resume ends the moves left open. With a copy command, it checks each
// before copying: one that can no longer complete is aborted; the others
// are copied again and completed, or aborted when the copy fails. Without
// one, it lists them and leaves them open: completing a move whose data
// nobody copied would send the account to an empty data center.
func (m *migration) resume(ctx context.Context) {
	open := m.openMoves()
	if len(open) == 0 {
		return
	}
	if m.cfg.copyCmd == "" {
		fmt.Fprintf(m.out, "%d moves are open and left so: give -copy to copy their data and complete them (-no-copy does not), or -abort ID to end one\n", len(open))
		for _, mv := range open {
			state := "left open"
			if err := m.completable(mv); err != nil {
				state = fmt.Sprintf("left open, cannot complete (abort it): %v", err)
			}
			fmt.Fprintf(m.out, "open: move %s of account %q %s -> %s, begun %s: %s\n",
				mv.ID, mv.AccountID, mv.From, mv.To, mv.Began.Format(time.RFC3339), state)
		}
		return
	}
	fmt.Fprintf(m.out, "resuming %d open moves\n", len(open))
	bg := context.WithoutCancel(ctx)
	for _, mv := range open {
		if ctx.Err() != nil {
			return
		}
		if err := m.completable(mv); err != nil {
			m.fail(bg, mv, "resumed move", " before copying", err)
			continue
		}
		m.finish(ctx, mv, "resumed ")
	}
}

// completable says why an open move can no longer complete, nil if it
// can. It asks what CompleteMove would, from the router's public state:
// the target is a known data center, active (a draining one takes no
// incoming moves, and copying data into it would be wasted), and a move to
// another region is still covered by the live agreement that allowed it.
func (m *migration) completable(mv residency.Move) error {
	p, err := m.r.Lookup(mv.AccountID)
	if err != nil {
		return err
	}
	status, err := m.r.Status(mv.To)
	switch {
	case err != nil:
		return err
	case status != provider.Active:
		return fmt.Errorf("%w: data center %s is %s and takes no moves", residency.ErrNoDataCenter, mv.To, status)
	case mv.ToRegion == p.Region:
		return nil
	}
	agreements, err := m.r.Agreements(mv.AccountID)
	if err != nil {
		return err
	}
	for _, ag := range agreements {
		if ag.Reference != mv.Transfer {
			continue
		}
		switch {
		case !ag.Revoked.IsZero():
			return fmt.Errorf("%w: transfer agreement %q to %s was revoked at %s", residency.ErrCrossRegion, ag.Reference, ag.To, ag.Revoked.Format(time.RFC3339))
		case !ag.Live(m.now()):
			return fmt.Errorf("%w: transfer agreement %q to %s expired at %s", residency.ErrCrossRegion, ag.Reference, ag.To, ag.ExpiresAt.Format(time.RFC3339))
		case ag.To != mv.ToRegion:
			return fmt.Errorf("%w: transfer agreement %q covers %s, not %s", residency.ErrCrossRegion, ag.Reference, ag.To, mv.ToRegion)
		}
		return nil
	}
	return fmt.Errorf("%w: account %q has no transfer agreement %q", residency.ErrCrossRegion, mv.AccountID, mv.Transfer)
}

func first(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// progress shows a bar on a terminal, and plain lines otherwise.
type progress struct {
	bar      *progressbar.ProgressBar
	log      io.Writer
	what     string
	n, total int
	every    int
}

func (m *migration) progress(total int, what string) *progress {
	p := &progress{log: m.log, what: what, total: total, every: max(1, total/10)}
	if f, ok := m.log.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	return p
}

func (p *progress) add() {
	p.n++
	switch {
	case p.bar != nil:
		p.bar.Add(1)
	case p.n%p.every == 0 || p.n == p.total:
		fmt.Fprintf(p.log, "%s: %d/%d\n", p.what, p.n, p.total)
	}
}

func (p *progress) done() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
