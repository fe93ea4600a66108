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
