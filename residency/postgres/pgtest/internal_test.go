package pgtest

import (
	"errors"
	"testing"
)

// TestNotInstalled: without binaries on PATH or in Debian's folder, start
// says PostgreSQL is not installed, which skips tests unless EnvRequire
// is 1.
func TestNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(EnvDSN, "")
	defer func(d string) { debianBinaries = d }(debianBinaries)
	debianBinaries = t.TempDir() + "/*/bin"
	_, err := start()
	if !errors.Is(err, errNotInstalled) {
		t.Fatalf("start() = %v, want errNotInstalled", err)
	}
	for _, tc := range []struct {
		require string
		skip    bool
	}{{"", true}, {"0", true}, {"1", false}} {
		t.Setenv(EnvRequire, tc.require)
		if got := skippable(err); got != tc.skip {
			t.Errorf("with %s=%q: skippable = %v, want %v", EnvRequire, tc.require, got, tc.skip)
		}
	}
	t.Setenv(EnvRequire, "")
	if skippable(errors.New("initdb failed")) {
		t.Error("an installed server that fails to start is skipped, want a failure")
	}
}

// outcome records whether Missing skipped or failed a test.
type outcome struct {
	testing.TB
	skipped, failed bool
}

func (o *outcome) Helper()               {}
func (o *outcome) Skip(...any)           { o.skipped = true }
func (o *outcome) Fatalf(string, ...any) { o.failed = true }

// TestMissing: a missing program skips a test, but fails it when
// EnvRequire is 1 (CI), where every test must run.
func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		require       string
		skip, failure bool
	}{{"", true, false}, {"0", true, false}, {"1", false, true}} {
		t.Setenv(EnvRequire, tc.require)
		o := &outcome{TB: t}
		Missing(o, "pg_dump is not installed")
		if o.skipped != tc.skip || o.failed != tc.failure {
			t.Errorf("with %s=%q: skipped %v, failed %v; want %v, %v", EnvRequire, tc.require, o.skipped, o.failed, tc.skip, tc.failure)
		}
	}
}
