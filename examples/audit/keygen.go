package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unicode"

	"golang.org/x/mod/sumdb/note"
)

// keygen writes a new key pair: audit keygen -name NAME -key FILE -pub FILE.
func keygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", stderr)
	name := fs.String("name", "", "the log's name, the origin of its checkpoints (e.g. example.com/domicile)")
	keyFile := fs.String("key", "", "file to write the private key to (mode 0600; must not exist)")
	pubFile := fs.String("pub", "", "file to write the public key to (must not exist)")
	if err := parse(fs, args, "name", "key", "pub"); err != nil {
		return err
	}
	if !validKeyName(*name) {
		return usageError("-name %q: a key name is non-empty UTF-8 without spaces or \"+\"", *name)
	}
	if same(*keyFile, *pubFile) {
		return usageError("-key and -pub name the same file %s", *keyFile)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, *name)
	if err != nil {
		return fmt.Errorf("generating key: %w", err)
	}
	// Neither file may exist; the private key is written first, and
	// removed again if the public key cannot be, so that a failed keygen
	// leaves no half pair behind.
	if _, err := os.Lstat(*pubFile); err == nil {
		return fmt.Errorf("%s exists: not overwriting it", *pubFile)
	}
	if err := writeNew(*keyFile, skey+"\n", 0o600); err != nil {
		return err
	}
	if err := writeNew(*pubFile, vkey+"\n", 0o644); err != nil {
		os.Remove(*keyFile)
		return err
	}
	fmt.Fprintf(stdout, "private key written to %s: keep it secret, give it only to the log that signs\n", *keyFile)
	fmt.Fprintf(stdout, "public key written to %s: give it to auditors\n", *pubFile)
	fmt.Fprintln(stdout, vkey)
	return nil
}

// validKeyName reports whether name can name a note key.
func validKeyName(name string) bool {
	return name != "" && !strings.ContainsFunc(name, unicode.IsSpace) && !strings.Contains(name, "+") &&
		!strings.ContainsFunc(name, func(r rune) bool { return r == unicode.ReplacementChar || unicode.IsControl(r) })
}

// same reports whether two paths name the same file, as far as can be
// told before either exists.
func same(a, b string) bool {
	aa, errA := filepath.Abs(a)
	bb, errB := filepath.Abs(b)
	return errA == nil && errB == nil && aa == bb
}

// writeNew creates path, which must not exist, with mode perm and the
// given content, and syncs it to disk. On failure it leaves no file.
func writeNew(path, content string, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: not overwriting it", path)
	}
	if err != nil {
		return err
	}
	// The umask may only have narrowed perm; make the mode exact, so the
	// private key is never more open than asked and the public one readable.
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.WriteString(content)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir syncs a directory, so that a file just created in it survives
// a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// readSigner reads a private key file written by keygen. Like ssh, it
// refuses a key file that others than its owner may read or write
// (outside Windows, whose files have no such mode bits): whoever can read
// it can sign checkpoints in the log's name.
func readSigner(path string) (note.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%s: private key file of mode %v, open to others than its owner: chmod 600 %s (and make a new key if others may have read it)", path, perm, path)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: not a private key written by audit keygen: %w", path, err)
	}
	return s, nil
}

// readVerifier reads a public key file written by keygen.
func readVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: not a public key written by audit keygen: %w", path, err)
	}
	return v, nil
}
