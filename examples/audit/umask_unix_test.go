//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
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

// TestCheckpointRefusesAnOpenKey: a private key file that others than
// its owner may read or write (chmod 644, a copy made with an open umask)
// is refused, as ssh refuses such a key: whoever reads it can sign
// checkpoints in the log's name. Before, checkpoint signed with it without
// a word.
func TestCheckpointRefusesAnOpenKey(t *testing.T) {
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "log.key"), filepath.Join(dir, "log.pub")
	if code, _, log := auditRun(t, "keygen", "-name", "n", "-key", key, "-pub", pub); code != 0 {
		t.Fatalf("keygen exited %d: %s", code, log)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o602} {
		if err := os.Chmod(key, mode); err != nil {
			t.Fatal(err)
		}
		_, err := readSigner(key)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("readSigner of a key of mode %v = %v, want it refused, saying chmod 600", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if err := os.Chmod(key, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := readSigner(key); err != nil {
			t.Errorf("readSigner of a key of mode %v: %v", mode, err)
		}
	}
}
