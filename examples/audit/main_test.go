package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
)

// auditRun runs the tool in-process and returns its exit status and
// output.
func auditRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, log bytes.Buffer
	code := run(args, &out, &log)
	return code, out.String(), log.String()
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "k"), filepath.Join(dir, "p")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"sign"}},
		{"no flags", []string{"keygen"}},
		{"no name", []string{"keygen", "-key", key, "-pub", pub}},
		{"no key", []string{"keygen", "-name", "example.com/log", "-pub", pub}},
		{"no pub", []string{"keygen", "-name", "example.com/log", "-key", key}},
		{"space in name", []string{"keygen", "-name", "example.com/my log", "-key", key, "-pub", pub}},
		{"plus in name", []string{"keygen", "-name", "a+b", "-key", key, "-pub", pub}},
		{"control character in name", []string{"keygen", "-name", "a\x01b", "-key", key, "-pub", pub}},
		{"invalid UTF-8 name", []string{"keygen", "-name", "a\xffb", "-key", key, "-pub", pub}},
		{"same file", []string{"keygen", "-name", "n", "-key", key, "-pub", filepath.Join(dir, ".", "k")}},
		{"extra argument", []string{"keygen", "-name", "n", "-key", key, "-pub", pub, "extra"}},
		{"unknown flag", []string{"keygen", "-name", "n", "-key", key, "-pub", pub, "-force"}},
	} {
		code, out, log := auditRun(t, tc.args...)
		if code != 2 {
			t.Errorf("%s: audit %q exited %d, want 2\nstdout: %s\nstderr: %s", tc.name, tc.args, code, out, log)
		}
		if !strings.Contains(log, "usage: audit") {
			t.Errorf("%s: stderr lacks the usage line:\n%s", tc.name, log)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("%s: a usage error left files: %v", tc.name, entries)
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"keygen", "-h"}} {
		if code, _, _ := auditRun(t, args...); code != 0 {
			t.Errorf("audit %q exited %d, want 0", args, code)
		}
	}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "log.key"), filepath.Join(dir, "log.pub")
	code, out, log := auditRun(t, "keygen", "-name", "example.com/domicile", "-key", key, "-pub", pub)
	if code != 0 {
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
	keyText, _ := os.ReadFile(key)
	pubText, _ := os.ReadFile(pub)
	if !strings.HasPrefix(string(keyText), "PRIVATE+KEY+example.com/domicile+") {
		t.Errorf("private key file = %q, want a note signer key", keyText)
	}
	if !strings.Contains(out, strings.TrimSpace(string(pubText))) {
		t.Errorf("stdout lacks the public key %q:\n%s", pubText, out)
	}
	if strings.Contains(out+log, strings.TrimSpace(string(keyText))) {
		t.Error("keygen printed the private key")
	}

	// The pair signs and verifies a checkpoint; another pair's key does not.
	signer, err := readSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := readVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	if signer.Name() != "example.com/domicile" || verifier.Name() != signer.Name() || verifier.KeyHash() != signer.KeyHash() {
		t.Errorf("signer %s+%08x, verifier %s+%08x: want one key named example.com/domicile",
			signer.Name(), signer.KeyHash(), verifier.Name(), verifier.KeyHash())
	}
	var log2 auditlog.MemoryHashes
	if _, err := log2.Append([]byte("entry 0")); err != nil {
		t.Fatal(err)
	}
	c, err := log2.Checkpoint("example.com/domicile")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := c.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := auditlog.OpenCheckpoint(signed, verifier)
	if err != nil {
		t.Fatalf("OpenCheckpoint with the generated public key: %v", err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("OpenCheckpoint mismatch (-want +got):\n%s", diff)
	}

	// A second pair is a different key.
	key2, pub2 := filepath.Join(dir, "2.key"), filepath.Join(dir, "2.pub")
	if code, _, log := auditRun(t, "keygen", "-name", "example.com/domicile", "-key", key2, "-pub", pub2); code != 0 {
		t.Fatalf("second keygen exited %d: %s", code, log)
	}
	other, err := readVerifier(pub2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auditlog.OpenCheckpoint(signed, other); !errors.Is(err, auditlog.ErrUnknownKey) {
		t.Errorf("OpenCheckpoint with another pair's key: error = %v, want ErrUnknownKey", err)
	}
}

func TestKeygenRefusesToOverwrite(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing string // "key" or "pub"
	}{
		{"private key exists", "key"},
		{"public key exists", "pub"},
	} {
		dir := t.TempDir()
		files := map[string]string{"key": filepath.Join(dir, "log.key"), "pub": filepath.Join(dir, "log.pub")}
		const old = "precious\n"
		if err := os.WriteFile(files[tc.existing], []byte(old), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, log := auditRun(t, "keygen", "-name", "n", "-key", files["key"], "-pub", files["pub"])
		if code != 1 || !strings.Contains(log, "not overwriting") {
			t.Errorf("%s: keygen exited %d, want 1 and a refusal:\n%s", tc.name, code, log)
		}
		if b, _ := os.ReadFile(files[tc.existing]); string(b) != old {
			t.Errorf("%s: the existing file now holds %q", tc.name, b)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("%s: keygen left %d files, want only the one that existed", tc.name, len(entries))
		}
	}
}

func TestKeygenUnwritable(t *testing.T) {
	dir := t.TempDir()
	// The public key's directory does not exist: no private key may be
	// left behind without its public half.
	key, pub := filepath.Join(dir, "log.key"), filepath.Join(dir, "missing", "log.pub")
	if code, _, log := auditRun(t, "keygen", "-name", "n", "-key", key, "-pub", pub); code != 1 {
		t.Errorf("keygen exited %d, want 1:\n%s", code, log)
	}
	if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("keygen left the private key %s (stat: %v)", key, err)
	}
}

func TestReadKeysRefuseOthers(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, err := note.GenerateKey(rand.Reader, "n")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad, pub, key := write("bad", "not a key\n"), write("pub", vkey+"\n"), write("key", skey+"\n")
	for _, p := range []string{bad, pub} {
		if _, err := readSigner(p); err == nil {
			t.Errorf("readSigner(%s): no error", filepath.Base(p))
		}
	}
	for _, p := range []string{bad, key} {
		if _, err := readVerifier(p); err == nil {
			t.Errorf("readVerifier(%s): no error", filepath.Base(p))
		}
	}
	if _, err := readSigner(key); err != nil {
		t.Errorf("readSigner(key): %v", err)
	}
	if _, err := readVerifier(pub); err != nil {
		t.Errorf("readVerifier(pub): %v", err)
	}
}

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`stored account "a-FR" disagrees`, `stored account "a-FR" disagrees`},
		{"linode-eu\nOK: forged", `linode-eu\u000aOK: forged`},
		{"\x1b[2J\u009b2J\u0085", `\u001b[2J\u009b2J\u0085`},
		{"rule\u202eevil\u2066", `rule\u202eevil\u2066`},
		{"a\xffb", `a\xffb`},
		{"Zürich 東京 \u00a0", "Zürich 東京 \u00a0"},
	} {
		if diff := cmp.Diff(tt.want, printable(tt.in)); diff != "" {
			t.Errorf("printable(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}
