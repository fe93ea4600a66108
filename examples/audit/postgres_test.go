package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// growPostgres grows the store at dsn through a Router.
func growPostgres(t *testing.T, dsn, prefix string) {
	t.Helper()
	r := routertest.OnPostgres(t, dsn, nil)
	grow(t, r, prefix)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// sql runs statements on dsn, as an operator with access to the database
// could.
func sql(t *testing.T, dsn string, statements ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range statements {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestVerifyPostgres keeps checkpoints of a PostgreSQL store and checks
// that verify accepts the log as it grows honestly and refuses rows
// rewritten with UPDATE.
func TestVerifyPostgres(t *testing.T) {
	dsn := pgtest.DatabaseURL(t)
	dir := t.TempDir()
	key, pub := keys(t, dir, "log")
	growPostgres(t, dsn, "a")
	c1 := filepath.Join(dir, "c1")
	writeCheckpoint(t, dsn, key, c1)
	wantVerify(t, "unchanged", 0, dsn, pub, c1, "OK: the log of 8 entries extends the checkpoint of 8", "3 accounts and 1 data center statuses agree")
	growPostgres(t, dsn, "b")
	wantVerify(t, "grown", 0, dsn, pub, c1, "OK: the log of 16 entries extends the checkpoint of 8", "6 accounts")
	c2 := filepath.Join(dir, "c2")
	writeCheckpoint(t, dsn, key, c2)
	code, out, log := auditRun(t, "history", "-db", dsn, "-pub", pub, "-checkpoint", c2, "-account", "b-DE")
	if code != 0 {
		t.Fatalf("history exited %d: %s", code, log)
	}
	if want := `4 entries of account "b-DE", each proved in the checkpoint of 16 entries`; !contains([]string{lastLine(out)}, want) {
		t.Errorf("history output:\n%s", out)
	}

	// A state row rewritten.
	sql(t, dsn, `UPDATE domicile.accounts SET datacenter = datacenter || '-elsewhere' WHERE id = 'a-FR'`)
	wantVerify(t, "account row rewritten", 1, dsn, pub, c2, `stored account "a-FR" disagrees with the log`)
	sql(t, dsn, `UPDATE domicile.accounts SET datacenter = replace(datacenter, '-elsewhere', '') WHERE id = 'a-FR'`)
	wantVerify(t, "account row restored", 0, dsn, pub, c2)

	// An entry rewritten: the move of a-DE went elsewhere.
	sql(t, dsn, `CREATE TABLE public.saved AS SELECT change FROM domicile.changes WHERE pos = 6`,
		`UPDATE domicile.changes SET change = replace(change::text, 'aws-us-west-1', 'linode-us')::json WHERE pos = 6`)
	wantVerify(t, "change row rewritten", 1, dsn, pub, c1, "entry 5: entry does not match its stored hashes")
	// history of another account checks that entry too.
	wantHistory(t, "change row rewritten, another account's history", 1, dsn, pub, c1, "a-FR", "the log's first 8 entries are not those of the checkpoint: auditlog: entry 5: entry does not match its stored hashes")
	sql(t, dsn, `UPDATE domicile.changes SET change = (SELECT change FROM public.saved) WHERE pos = 6`)
	wantVerify(t, "change row restored", 0, dsn, pub, c2)

	// The log cut short.
	sql(t, dsn, `DELETE FROM domicile.changes WHERE pos > 12`, `UPDATE domicile.head SET pos = 12`)
	wantVerify(t, "log cut short", 1, dsn, pub, c2, "the log holds 12 entries, the checkpoint counts 16")
	wantHistory(t, "log cut short", 1, dsn, pub, c2, "b-DE", "log shorter than its checkpoint: 12 entries, checkpoint has 16")
}
func lastLine(s string) string {
	lines := splitLines(s)
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dbState describes what the database holds: domicile's schema, its
// tables' row counts, and the server's count of rows written to them.
func dbState(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var out string
	err = conn.QueryRow(ctx, `SELECT coalesce(string_agg(table_name, ' ' ORDER BY table_name), 'no tables')
		|| CASE WHEN EXISTS (SELECT FROM pg_namespace WHERE nspname = 'domicile') THEN ' (schema)' ELSE ' (no schema)' END
		FROM information_schema.tables WHERE table_schema = 'domicile'`).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(out, "no tables") {
		return out
	}
	for _, table := range []string{"changes", "loghashes", "accounts", "events", "meta", "members"} {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM domicile."+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf(" %s=%d", table, n)
	}
	return out
}

// TestAuditPostgresReadOnly runs the tool as a role that may only SELECT
// domicile's tables, on a log whose latest hashes no writer stored: every
// command works, computing those hashes in memory, and writes nothing. On a
// database without domicile's tables, the tool fails and creates none.
func TestAuditPostgresReadOnly(t *testing.T) {
	dsn := pgtest.DatabaseURL(t)
	dir := t.TempDir()
	key, pub := keys(t, dir, "log")
	growPostgres(t, dsn, "a")
	growPostgres(t, dsn, "b")
	// The hashes of the last 10 of the 16 entries are not stored, as if
	// their writer had stopped before storing them.
	sql(t, dsn, fmt.Sprintf("DELETE FROM domicile.loghashes WHERE idx >= %d", tlog.StoredHashCount(6)))
	auditor := pgtest.ReadOnlyRole(t, dsn, "domicile")
	before := dbState(t, dsn)

	c := filepath.Join(dir, "c")
	writeCheckpoint(t, auditor, key, c)
	wantVerify(t, "read-only", 0, auditor, pub, c, "OK: the log of 16 entries extends the checkpoint of 16", "6 accounts and 1 data center statuses agree")
	code, out, log := auditRun(t, "history", "-db", auditor, "-pub", pub, "-checkpoint", c, "-account", "b-DE")
	if code != 0 {
		t.Fatalf("history exited %d: %s", code, log)
	}
	if want := `4 entries of account "b-DE", each proved in the checkpoint of 16 entries`; lastLine(out) != want {
		t.Errorf("history's last line is %q, want %q", lastLine(out), want)
	}
	if after := dbState(t, dsn); after != before {
		t.Errorf("the database changed under the audit tool:\nbefore: %s\nafter:  %s", before, after)
	}
	// What the auditor's checkpoint says is what a writer's hashes say.
	wantVerify(t, "checked by the operator", 0, dsn, pub, c, "OK: the log of 16 entries extends the checkpoint of 16")

	// A database without domicile's tables: refused, and left so.
	empty := pgtest.DatabaseURL(t)
	for _, args := range [][]string{
		{"checkpoint", "-db", empty, "-key", key},
		{"verify", "-db", empty, "-pub", pub, "-checkpoint", c},
		{"history", "-db", empty, "-pub", pub, "-checkpoint", c, "-account", "a-DE"},
	} {
		code, _, log := auditRun(t, args...)
		if code != 1 || !strings.Contains(log, "no domicile tables") {
			t.Errorf("audit %s on a database without domicile's tables exited %d, want 1 with \"no domicile tables\":\n%s", args[0], code, log)
		}
	}
	if got := dbState(t, empty); got != "no tables (no schema)" {
		t.Errorf("after the audit tool ran on an empty database, it holds %s, want no tables and no schema", got)
	}
}

// TestVerifyPostgresRefusesRewrittenAccountRows is
// TestVerifyRefusesRewrittenAccountRecords on PostgreSQL: an UPDATE of an
// events row, of a consents row (a revoked consent made live again) or
// of an agreements row is refused (exit 1, naming the account).
func TestVerifyPostgresRefusesRewrittenAccountRows(t *testing.T) {
	dir := t.TempDir()
	key, pub := keys(t, dir, "log")
	tests := []struct {
		name, account string
		statements    []string
		effect        func(r *residency.Router) error
	}{
		{
			name:       "events row: the move's target rewritten",
			account:    "a-DE",
			statements: []string{`UPDATE domicile.events SET target = 'aws-eu-west-1' WHERE account = 'a-DE' AND kind = 'move-completed'`},
			effect:     movedTo("a-DE", "aws-eu-west-1"),
		},
		{
			name:       "consents row: revoked consent made live",
			account:    "a-FR",
			statements: []string{`UPDATE domicile.consents SET revoked = NULL, revoked_ns = 0 WHERE account = 'a-FR'`},
			effect:     mayAccess("a-FR", "support-247"),
		},
		{
			name:       "agreements row: region rewritten",
			account:    "a-DE",
			statements: []string{`UPDATE domicile.agreements SET to_region = 'APAC' WHERE account = 'a-DE'`},
			effect:     agreesTo("a-DE", "APAC"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := pgtest.DatabaseURL(t)
			r := routertest.OnPostgres(t, dsn, nil)
			grow(t, r, "a")
			revokedConsent(t, r)
			c := filepath.Join(t.TempDir(), "c")
			writeCheckpoint(t, dsn, key, c)
			wantVerify(t, "honest", 0, dsn, pub, c, "OK: the log of 10 entries extends the checkpoint of 10")
			sql(t, dsn, tt.statements...)
			// The rewrite is real: a Router reads it as it is.
			r = routertest.OnPostgres(t, dsn, nil)
			err := tt.effect(r)
			r.Close()
			if err != nil {
				t.Fatalf("the rewrite has no effect: %v", err)
			}
			wantVerify(t, tt.name, 1, dsn, pub, c, `"`+tt.account+`"`)
		})
	}
}

// TestVerifyPostgresUpgradedFromTrimmedFormat2: a schema of format 2
// whose changes were trimmed gets its log at the upgrade, starting with a
// snapshot of every account as an upgraded file's does: verify accepts
// it, and history lists an account whose changes were all trimmed.
func TestVerifyPostgresUpgradedFromTrimmedFormat2(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	dir := t.TempDir()
	key, pub := keys(t, dir, "log")
	r := routertest.OnPostgres(t, dsn, nil)
	for _, id := range []string{"u0", "u1", "u2", "u3"} {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	sql(t, dsn, routertest.TrimmedFormat2(2)...)
	// The service opens it, which upgrades it, and goes on placing.
	r = routertest.OnPostgres(t, dsn, nil)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "u4", Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(dir, "c")
	writeCheckpoint(t, dsn, key, c)
	wantVerify(t, "upgraded from format 2, trimmed", 0, dsn, pub, c, "OK: ")
	wantHistory(t, "upgraded from format 2, trimmed: an account placed before the trim", 0, dsn, pub, c, "u0")
}

// TestVerifyPostgresWhileWriting: verify reads a live database's state in
// one snapshot and compares it with the log up to it, so that it accepts
// an honest log while a service places accounts (when it read the state
// and the log apart, 12 runs of 20 saw an account with no entry).
func TestVerifyPostgresWhileWriting(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DatabaseURL(t)
	dir := t.TempDir()
	key, pub := keys(t, dir, "log")
	growPostgres(t, dsn, "a")
	c := filepath.Join(dir, "c")
	writeCheckpoint(t, dsn, key, c)

	r := routertest.OnPostgres(t, dsn, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("w-", i), Country: "FR"}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range 10 {
		code, out, log := auditRun(t, "verify", "-db", dsn, "-pub", pub, "-checkpoint", c)
		if code != 0 {
			t.Errorf("verify %d while the service writes exited %d, want 0\nstdout: %s\nstderr: %s", i, code, out, log)
		}
	}
	close(stop)
	wg.Wait()
}

// TestAuditPrintsNoTerminalControls: what the tool prints of an operator's
// database, which the auditor does not trust, holds no control character
// raw: not a newline that starts a line of the database's choosing, not an
// escape sequence that clears the auditor's terminal. Before, verify's
// errors named a stored data center ID as it was ("stored status of data
// center %s", "stored account ... in %s"), and history printed entries
// with C1 controls (U+009B, CSI) raw, as JSON may hold them.
func TestAuditPrintsNoTerminalControls(t *testing.T) {
	const forged = `\nOK: the log extends the checkpoint \x1b[2J\x1b[H\u009b2J`
	for _, tt := range []struct {
		name       string
		statements []string
		cmd        string
	}{
		{"data center row", []string{`UPDATE domicile.datacenters SET id = id || E'` + forged + `'`}, "verify"},
		{"account row", []string{`UPDATE domicile.accounts SET datacenter = datacenter || E'` + forged + `' WHERE id = 'a-FR'`}, "verify"},
		{"entry signed as it is", []string{
			`UPDATE domicile.changes SET change = replace(change::text, '"rule":"EU member state"', '"rule":"EU member state\u009b2J\u0085\u202e"')::json WHERE change::text LIKE '%"a-FR"%'`,
			`DELETE FROM domicile.loghashes`,
		}, "history"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := pgtest.DatabaseURL(t)
			dir := t.TempDir()
			key, pub := keys(t, dir, "log")
			growPostgres(t, dsn, "a")
			c := filepath.Join(dir, "c")
			if tt.cmd == "history" {
				sql(t, dsn, tt.statements...)
				writeCheckpoint(t, dsn, key, c) // the operator signs the log as it is
			} else {
				writeCheckpoint(t, dsn, key, c)
				sql(t, dsn, tt.statements...)
			}
			args := []string{tt.cmd, "-db", dsn, "-pub", pub, "-checkpoint", c}
			if tt.cmd == "history" {
				args = append(args, "-account", "a-FR")
			}
			code, out, log := auditRun(t, args...)
			if tt.cmd == "verify" && code != 1 {
				t.Errorf("verify exited %d, want 1: %s", code, log)
			}
			if tt.cmd == "history" && (code != 0 || !strings.Contains(out, "u009b")) {
				t.Errorf("history exited %d, want 0 and the forged entry listed: %s%s", code, out, log)
			}
			for _, s := range []string{out, log} {
				lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
				for _, l := range lines {
					if strings.HasPrefix(l, "OK") || strings.IndexFunc(l, func(r rune) bool { return unicode.IsControl(r) || r == '\u202e' }) >= 0 {
						t.Errorf("%s printed %q", tt.cmd, l)
					}
				}
			}
		})
	}
}

// TestAuditTimeout: a database that never answers (here a table the
// operator keeps locked) held verify, history and checkpoint forever: they
// ran under context.Background(), so an auditor's scheduled run hung with
// no report. With -timeout each gives up by then, exit 1, saying so.
func TestAuditTimeout(t *testing.T) {
	dsn := pgtest.DatabaseURL(t)
	dir := t.TempDir()
	key, pub := keys(t, dir, "log")
	growPostgres(t, dsn, "a")
	c := filepath.Join(dir, "c")
	writeCheckpoint(t, dsn, key, c)
	ctx := context.Background()
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
	if _, err := tx.Exec(ctx, "LOCK TABLE domicile.changes, domicile.head IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"verify", "-timeout", "1s", "-db", dsn, "-pub", pub, "-checkpoint", c},
		{"history", "-timeout", "1s", "-db", dsn, "-pub", pub, "-checkpoint", c, "-account", "a-DE"},
		{"checkpoint", "-timeout", "1s", "-db", dsn, "-key", key},
	} {
		type result struct {
			code int
			log  string
		}
		done := make(chan result, 1)
		go func() {
			code, _, log := auditRun(t, args...)
			done <- result{code, log}
		}()
		select {
		case r := <-done:
			if r.code != 1 || !strings.Contains(r.log, "deadline") {
				t.Errorf("%s on a locked table exited %d: %s; want 1, saying the deadline passed", args[0], r.code, r.log)
			}
		case <-time.After(time.Minute): // a guard against a hang, not a measure
			t.Fatalf("%s -timeout 1s on a locked table still waits after a minute", args[0])
		}
	}
}
