// Command migrate is a migration script over domicile's embedded store: it
// imports existing accounts, moves accounts between data centers, and
// evacuates a data center, never taking data out of its region.
//
//	migrate -db PATH [-import FILE] [-plan FILE] [-evacuate DC] [-dry-run] [-copy CMD]
//
//	-import FILE   CSV "account_id,country" (third column "region" optional):
//	               places each account, in file order
//	-plan FILE     CSV "account_id,to_datacenter": moves each account
//	-evacuate DC   drains the data center and moves its accounts to the other
//	               data centers of their region; refuses, changing nothing,
//	               when some account has nowhere to go in its region
//	-dry-run       checks everything and prints what would be done; changes nothing
//	-copy CMD      run (by sh -c) for each move between BeginMove and
//	               CompleteMove, with ACCOUNT_ID, FROM_DATACENTER and
//	               TO_DATACENTER in its environment; when it fails the move
//	               is aborted
//
// Every refused row is reported with its line number (the header is line 1),
// account and reason. Moves an interrupted run left open are found first and
// completed (after running -copy again, if given) or aborted.
//
// Exit status: 0 when everything asked was done, 1 when anything was
// refused or failed, 2 for a usage error.
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks errors that exit with status 2.
var errUsage = errors.New("usage")

// config is the command line.
type config struct {
	db, importFile, planFile, evacuate, copyCmd string
	dryRun                                      bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "migrate:", err)
		}
		return 2
	}
	m := &migration{cfg: cfg, out: stdout, log: stderr}
	if err := m.run(ctx); err != nil {
		fmt.Fprintln(stderr, "migrate:", err)
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
	fs.StringVar(&cfg.db, "db", "", "the domicile store file (required)")
	fs.StringVar(&cfg.importFile, "import", "", "CSV of accounts to place: account_id,country[,region]")
	fs.StringVar(&cfg.planFile, "plan", "", "CSV of moves: account_id,to_datacenter")
	fs.StringVar(&cfg.evacuate, "evacuate", "", "data center to drain and empty")
	fs.BoolVar(&cfg.dryRun, "dry-run", false, "check and print what would be done; change nothing")
	fs.StringVar(&cfg.copyCmd, "copy", "", "command run for each move (sh -c), with ACCOUNT_ID, FROM_DATACENTER, TO_DATACENTER set")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case cfg.db == "":
		return cfg, errors.New("-db is required")
	case cfg.importFile == "" && cfg.planFile == "" && cfg.evacuate == "":
		return cfg, errors.New("nothing to do: give -import, -plan or -evacuate")
	}
	return cfg, nil
}

// migration is one run of the script.
type migration struct {
	cfg      config
	out, log io.Writer
	r        *residency.Router

	imported, existing, moved, refused, failed int
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
	if m.r, err = m.open(ctx); err != nil {
		return err
	}
	defer m.r.Close()
	if m.cfg.dryRun {
		fmt.Fprintln(m.out, "dry run: nothing will be changed")
	}
	// Router calls are not cancelled mid-way: an interrupt stops the run
	// between two accounts, never inside a move.
	if err := m.resume(ctx); err != nil {
		return err
	}
	if len(imports) > 0 {
		if err := m.importAccounts(ctx, imports); err != nil {
			return err
		}
	}
	if len(moves) > 0 {
		m.movePlan(ctx, moves)
	}
	if m.cfg.evacuate != "" {
		if err := m.evacuateDataCenter(ctx, m.cfg.evacuate); err != nil {
			return err
		}
	}
	verb := "moved"
	if m.cfg.dryRun {
		verb = "would move"
	}
	fmt.Fprintf(m.out, "summary: %s %d, imported %d, already placed %d, refused %d, failed %d\n",
		verb, m.moved, m.imported, m.existing, m.refused, m.failed)
	return ctx.Err()
}

// open opens the store; for a dry run, one whose writes go nowhere.
func (m *migration) open(ctx context.Context) (*residency.Router, error) {
	if !m.cfg.dryRun {
		return residency.Open(ctx, residency.WithPath(m.cfg.db))
	}
	if _, err := os.Stat(m.cfg.db); errors.Is(err, os.ErrNotExist) {
		return residency.Open(ctx) // an empty store, not created
	}
	s, err := residency.OpenFileStore(ctx, m.cfg.db)
	if err != nil {
		return nil, err
	}
	return residency.Open(ctx, residency.WithStore(discard{s}))
}

// discard is a store whose changes are kept in memory only: a dry run
// makes the real calls, on the real state, and the file never changes.
type discard struct{ residency.Store }

func (discard) Apply(context.Context, []residency.Change) error { return nil }

// readCSV reads a CSV file whose header is want, optionally followed by the
// column optional. A missing file or a bad header is a usage error.
func readCSV(path string, want []string, optional string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: no CSV header: %v", errUsage, path, err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
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
		rows = append(rows, row{line: line, fields: fields})
	}
}

func (m *migration) refuse(line int, account string, err error) {
	m.refused++
	fmt.Fprintf(m.out, "refused: line %d: account %q: %v\n", line, account, err)
}

// importAccounts places the rows' accounts, in file order.
func (m *migration) importAccounts(ctx context.Context, rows []row) error {
	var valid []residency.ImportRow
	var lines []int // line of each valid row
	for _, r := range rows {
		f := r.fields
		if r.err != nil {
			m.refuse(r.line, "", r.err)
			continue
		}
		if len(f) < 2 || len(f) > 3 {
			m.refuse(r.line, first(f), fmt.Errorf("%d fields, want account_id,country[,region]", len(f)))
			continue
		}
		ir := residency.ImportRow{AccountID: f[0], Country: f[1]}
		if len(f) == 3 && strings.TrimSpace(f[2]) != "" {
			reg, err := region.Parse(f[2])
			if err != nil {
				m.refuse(r.line, f[0], err)
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
		m.refuse(lines[e.Row-1], e.AccountID, e.Err)
	}
	return err
}

// movePlan moves each row's account, in file order.
func (m *migration) movePlan(ctx context.Context, rows []row) {
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
			m.refuse(r.line, r.fields[0], err)
		}
	}
}

// evacuateDataCenter drains dc and moves its accounts away, or refuses
// before changing anything when some cannot stay in their region.
func (m *migration) evacuateDataCenter(ctx context.Context, dc string) error {
	plan, err := m.r.PlanEvacuation(ctx, dc)
	if err != nil {
		m.refused++
		fmt.Fprintf(m.out, "refused: evacuate %s: %v\n", dc, err)
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
	if err := m.r.Drain(context.WithoutCancel(ctx), dc); err != nil {
		return err
	}
	verb := "drained"
	if m.cfg.dryRun {
		verb = "would drain"
	}
	fmt.Fprintf(m.out, "%s %s; moving its %d accounts\n", verb, dc, len(plan.Moves))
	p := m.progress(len(plan.Moves), "evacuating "+dc)
	defer p.done()
	for _, pm := range plan.Moves {
		if ctx.Err() != nil {
			return nil
		}
		p.add()
		if err := m.move(ctx, pm.AccountID, pm.To); err != nil {
			m.refused++
			fmt.Fprintf(m.out, "refused: evacuate %s: account %q: %v\n", dc, pm.AccountID, err)
		}
	}
	return nil
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
// when the copy fails. how prefixes the report ("resumed ").
func (m *migration) finish(ctx context.Context, mv residency.Move, how string) {
	bg := context.WithoutCancel(ctx)
	if err := m.copyData(ctx, mv); err != nil {
		m.failed++
		if _, aerr := m.r.AbortMove(bg, mv.ID); aerr != nil {
			err = errors.Join(err, aerr)
		}
		fmt.Fprintf(m.out, "failed: %smove of account %q %s -> %s aborted: %v\n", how, mv.AccountID, mv.From, mv.To, err)
		return
	}
	if _, err := m.r.CompleteMove(bg, mv.ID); err != nil {
		m.failed++
		fmt.Fprintf(m.out, "failed: %smove of account %q %s -> %s: %v\n", how, mv.AccountID, mv.From, mv.To, err)
		return
	}
	m.moved++
	verb := "moved"
	if m.cfg.dryRun {
		verb = "would move"
	}
	fmt.Fprintf(m.out, "%s%s: account %q %s -> %s\n", how, verb, mv.AccountID, mv.From, mv.To)
}

// copyData runs the -copy command for a move; in a dry run it only says so.
func (m *migration) copyData(ctx context.Context, mv residency.Move) error {
	if m.cfg.copyCmd == "" || m.cfg.dryRun {
		return nil
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", m.cfg.copyCmd)
	cmd.Env = append(os.Environ(), "ACCOUNT_ID="+mv.AccountID, "FROM_DATACENTER="+mv.From, "TO_DATACENTER="+mv.To)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("copy command: %w", err)
	}
	return nil
}

// resume ends the moves an interrupted run left open: it copies again and
// completes them, or aborts them when the copy fails.
func (m *migration) resume(ctx context.Context) error {
	var open []residency.Move
	for mv := range m.r.Moves() {
		open = append(open, mv)
	}
	if len(open) > 0 {
		fmt.Fprintf(m.out, "resuming %d moves left open by an interrupted run\n", len(open))
	}
	for _, mv := range open {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.finish(ctx, mv, "resumed ")
	}
	return nil
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
