//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestKeygenModeWithOpenUmask: with a umask that takes nothing away, the
// private key is still 0600, never readable by others.
func TestKeygenModeWithOpenUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "log.key"), filepath.Join(dir, "log.pub")
	if code, _, log := auditRun(t, "keygen", "-name", "n", "-key", key, "-pub", pub); code != 0 {
		t.Fatalf("keygen exited %d: %s", code, log)
	}
	for path, want := range map[string]os.FileMode{key: 0o600, pub: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", path, got, want)
		}
	}
}
