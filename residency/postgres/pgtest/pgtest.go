// Package pgtest gives tests a real PostgreSQL server: the one named by the
// environment variable DOMICILE_TEST_POSTGRES (a connection string of a
// superuser, as tests create databases and roles and terminate
// connections), or else a throwaway server that it
// starts from the installed binaries (initdb, pg_ctl) in a temporary
// folder, on a free port of 127.0.0.1, and stops and removes once the tests
// are done. As root it runs that server as the OS user postgres, since
// PostgreSQL refuses to run as root.
//
// A test binary starts at most one server, on first use, and each test gets
// a fresh database of its own:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.Database(t) // an empty database, dropped after the test
//		...
//	}
//
// Where there is neither a DSN nor an installation, tests that ask for a
// database are skipped with a note on how to install PostgreSQL, unless
// DOMICILE_REQUIRE_POSTGRES=1 (as in CI): then they fail.
//
// The throwaway server runs with fsync, synchronous_commit and
// full_page_writes off: fast, and lost on a crash of the machine, which a
// test does not care about. Benchmarks of durable writes set
// DOMICILE_PGTEST_DURABLE=1 to have them on.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	// EnvDSN names a server to use instead of starting one, as a
	// connection string of a superuser.
	EnvDSN = "DOMICILE_TEST_POSTGRES"
	// EnvRequire, set to 1, turns "no PostgreSQL here" from a skip into a
	// failure.
	EnvRequire = "DOMICILE_REQUIRE_POSTGRES"
	// EnvDurable, set to 1, starts the throwaway server with fsync and
	// synchronous commit on, as a production server runs: for benchmarks
	// of durable writes.
	EnvDurable = "DOMICILE_PGTEST_DURABLE"
)

// installHint is what a skipped test says.
const installHint = "no PostgreSQL for this test: set " + EnvDSN + " to a connection string " +
	"of a superuser, or install the server binaries " +
	"(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) " +
	"so that initdb and pg_ctl are on PATH or under /usr/lib/postgresql/*/bin"

var (
	mu      sync.Mutex
	started bool // start was attempted
	srv     *server
	srvErr  error
	inMain  bool
)

// server is the server the tests use: a DSN of a superuser (or a role
// that may create databases) connected to its maintenance database, and,
// when this package started it, how to stop it.
type server struct {
	dsn  string
	dir  string // temporary folder of a started server; "" for EnvDSN
	data string
	bin  string
	asPG bool // run the binaries as the OS user postgres
}

// Main runs the tests and then stops the server this package started for
// them, if any. Call it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if srv != nil {
		if err := srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			if code == 0 {
				code = 1
			}
		}
		srv = nil
	}
	return code
}

// get returns the server, starting one on first use; on failure it skips
// the test or, with EnvRequire=1, fails it.
func get(tb testing.TB) *server {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		tb.Fatal("pgtest: call pgtest.Main from TestMain, so that the server is stopped after the tests")
	}
	if !started {
		started = true
		srv, srvErr = start()
	}
	if srvErr != nil {
		if skippable(srvErr) {
			tb.Skip(installHint)
		}
		tb.Fatalf("pgtest: %v", srvErr)
	}
	return srv
}

// Missing is for a test that needs a program this machine lacks (a
// PostgreSQL binary, PgBouncer): it skips the test, saying what is
// missing and how to install it, or fails it when EnvRequire is 1, as in
// CI, where every test must run.
func Missing(tb testing.TB, what string) {
	tb.Helper()
	if os.Getenv(EnvRequire) == "1" {
		tb.Fatalf("%s (%s=1: a failure, not a skip)", what, EnvRequire)
		return
	}
	tb.Skip(what)
}

// skippable reports whether a failure to get a server skips a test rather
// than failing it: PostgreSQL is not installed, and EnvRequire is not 1.
func skippable(err error) bool {
	return errors.Is(err, errNotInstalled) && os.Getenv(EnvRequire) != "1"
}

// AdminDSN returns the connection string of the server's administrative
// role (a superuser, for a server this package started) on its maintenance
// database, for tests that terminate connections or change roles. It skips
// or fails the test as [Database] does.
func AdminDSN(tb testing.TB) string {
	tb.Helper()
	return get(tb).dsn
}

// Database creates an empty database for the test, returns its connection
// string and drops it (terminating its connections) when the test ends.
func Database(tb testing.TB) string {
	tb.Helper()
	s := get(tb)
	var b [6]byte
	rand.Read(b[:])
	name := "domicile_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin(ctx, s.dsn, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin(ctx, s.dsn, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	dsn, err := WithDatabase(s.dsn, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// DatabaseURL is [Database], as a postgres:// URL: the form the example
// tools' -db flag takes.
func DatabaseURL(tb testing.TB) string {
	tb.Helper()
	dsn := Database(tb)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return dsn
	}
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	u := url.URL{Scheme: "postgres", User: url.User(c.User), Host: net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), Path: "/" + c.Database, RawQuery: "sslmode=disable"}
	if c.Password != "" {
		u.User = url.UserPassword(c.User, c.Password)
	}
	return u.String()
}

// WithDatabase returns dsn, a URL or a keyword/value connection string,
// changed to connect to database name.
func WithDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parsing %s: %w", EnvDSN, err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	// In a keyword/value string the last setting of a keyword wins.
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}

func admin(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

var errNotInstalled = errors.New("PostgreSQL is not installed")

// start uses EnvDSN or starts a throwaway server.
func start() (*server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := admin(ctx, dsn, "SELECT 1"); err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", EnvDSN, err)
		}
		return &server{dsn: dsn}, nil
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, asPG: os.Geteuid() == 0}
	var owner *user.User
	if s.asPG {
		if owner, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: %w (the Debian package creates that user)", err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, fmt.Errorf("running as root needs runuser to start PostgreSQL as user postgres: %w", err)
		}
	}
	parent := ""
	if s.asPG && !traversable(os.TempDir()) {
		parent = "/tmp" // the user postgres must reach the folder
	}
	if s.dir, err = os.MkdirTemp(parent, "domicile-pgtest-"); err != nil {
		return nil, err
	}
	s.data = filepath.Join(s.dir, "data")
	if s.asPG {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			os.RemoveAll(s.dir)
			return nil, err
		}
	}
	if out, err := s.run("initdb", "-D", s.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// A free port can be taken by someone else before the server binds
	// it; then pg_ctl fails and the next port is tried.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(s.dir)
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300", port, s.dir)
		if os.Getenv(EnvDurable) != "1" {
			opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		}
		out, err := s.run("pg_ctl", "-D", s.data, "-o", opts, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "start")
		if err == nil {
			s.dsn = fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port)
			s.watch()
			return s, nil
		}
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
			os.RemoveAll(s.dir)
			return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
		}
	}
}

// watch starts a watchdog that stops the server and removes its folder
// once this process has ended: a test that panics, or a binary killed by
// go test's -timeout, ends the process before Main can stop the server.
// After a clean stop it finds nothing to do.
func (s *server) watch() {
	stop := fmt.Sprintf("%s -D %s -m immediate -w stop", filepath.Join(s.bin, "pg_ctl"), s.data)
	if s.asPG {
		stop = "runuser -u postgres -- " + stop
	}
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; if [ -d %s ]; then %s; rm -rf %s; fi",
		os.Getpid(), s.data, stop, s.dir)
	cmd := exec.Command("sh", "-c", script)
	// Its own process group, so that a ^C to the tests does not end it;
	// no stdout or stderr, so that go test does not wait for it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err == nil {
		go cmd.Wait()
	}
}

// stop stops a server this package started and removes its folder.
func (s *server) stop() error {
	if s.dir == "" {
		return nil
	}
	out, err := s.run("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop")
	if rmErr := os.RemoveAll(s.dir); err == nil && rmErr != nil {
		return rmErr
	}
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// run runs one of the server's programs, as the user postgres if need be.
func (s *server) run(name string, args ...string) ([]byte, error) {
	prog := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", prog}, args...)...)
	} else {
		cmd = exec.Command(prog, args...)
	}
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

// debianBinaries is where Debian's packages put the server's programs.
var debianBinaries = "/usr/lib/postgresql/*/bin"

// findBinaries returns the folder holding initdb and pg_ctl: the one on
// PATH, or else the newest of Debian's /usr/lib/postgresql/VERSION/bin.
func findBinaries() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(debianBinaries)
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		_, e1 := os.Stat(filepath.Join(d, "initdb"))
		_, e2 := os.Stat(filepath.Join(d, "pg_ctl"))
		if e1 == nil && e2 == nil {
			return d, nil
		}
	}
	return "", errNotInstalled
}

// traversable reports whether any user may pass through dir and each
// folder above it.
func traversable(dir string) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil || info.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ReadOnlyRole creates a login role that may only read schema of dsn's
// database (USAGE on the schema, SELECT on the tables it holds now), as an
// auditor is given, and returns dsn as that role. The role is dropped
// (its connections terminated) when the test ends.
func ReadOnlyRole(tb testing.TB, dsn, schema string) string {
	tb.Helper()
	s := get(tb)
	var b [4]byte
	rand.Read(b[:])
	name := "domicile_reader_" + hex.EncodeToString(b[:])
	quoted := pgx.Identifier{schema}.Sanitize()
	run := func(dsn string, statements ...string) {
		tb.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, sql := range statements {
			if err := admin(ctx, dsn, sql); err != nil {
				tb.Fatalf("pgtest: %s: %v", sql, err)
			}
		}
	}
	run(s.dsn, "CREATE ROLE "+name+" LOGIN")
	tb.Cleanup(func() {
		run(s.dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '"+name+"'")
		run(dsn, "DROP OWNED BY "+name)
		run(s.dsn, "DROP ROLE IF EXISTS "+name)
	})
	run(dsn, "GRANT USAGE ON SCHEMA "+quoted+" TO "+name, "GRANT SELECT ON ALL TABLES IN SCHEMA "+quoted+" TO "+name)
	out, err := withUser(dsn, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return out
}

// withUser returns dsn, a URL or a keyword/value connection string,
// changed to connect as user name, without a password.
func withUser(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parsing %s: %w", dsn, err)
		}
		u.User = url.User(name)
		return u.String(), nil
	}
	return strings.TrimSpace(dsn) + " user=" + name + " password=''", nil
}
