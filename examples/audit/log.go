package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/internal/storeflag"
	"github.com/domicile-go/domicile/residency"
)

// checkpointCmd prints the log's current checkpoint signed with -key.
func checkpointCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("checkpoint", stderr)
	db := fs.String("db", "", "the store: a file path or a PostgreSQL URL")
	key := fs.String("key", "", "the log's private key file, written by keygen")
	timeout := fs.Duration("timeout", 0, timeoutUsage)
	if err := parse(fs, args, "db", "key"); err != nil {
		return err
	}
	signer, err := readSigner(*key)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(*timeout)
	defer cancel()
	ls, err := storeflag.OpenLog(ctx, *db)
	if err != nil {
		return err
	}
	defer ls.Close()
	n, err := ls.LogSize(ctx)
	if err != nil {
		return err
	}
	c, err := auditlog.NewCheckpoint(signer.Name(), n, residency.HashReader(ctx, ls))
	if err != nil {
		return err
	}
	signed, err := c.Sign(signer)
	if err != nil {
		return err
	}
	_, err = stdout.Write(signed)
	return err
}

// timeoutUsage is the help text of the -timeout flag.
const timeoutUsage = "give up after this long (e.g. 10m), exit 1: the database is the operator's, and one that never answers would hold the tool forever (default: no limit)"

// withTimeout returns the context of a command: ended after d, or never
// when d is 0 or less.
func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(context.Background())
	}
	return context.WithTimeout(context.Background(), d)
}

// readCheckpoint opens the signed checkpoint file with the public key file.
func readCheckpoint(pubFile, file string) (auditlog.Checkpoint, error) {
	v, err := readVerifier(pubFile)
	if err != nil {
		return auditlog.Checkpoint{}, err
	}
	msg, err := os.ReadFile(file)
	if err != nil {
		return auditlog.Checkpoint{}, err
	}
	c, err := auditlog.OpenCheckpoint(msg, v)
	if err != nil {
		return auditlog.Checkpoint{}, fmt.Errorf("checkpoint %s: %w", file, err)
	}
	if c.Origin != v.Name() {
		return auditlog.Checkpoint{}, fmt.Errorf("checkpoint %s: origin %q is not the key's log %q", file, c.Origin, v.Name())
	}
	return c, nil
}

// verifyCmd checks the log against a checkpoint kept earlier, and the
// stored state against the log.
func verifyCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", stderr)
	db := fs.String("db", "", "the store: a file path or a PostgreSQL URL")
	pub := fs.String("pub", "", "the log's public key file")
	file := fs.String("checkpoint", "", "a signed checkpoint kept earlier")
	timeout := fs.Duration("timeout", 0, timeoutUsage)
	if err := parse(fs, args, "db", "pub", "checkpoint"); err != nil {
		return err
	}
	old, err := readCheckpoint(*pub, *file)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(*timeout)
	defer cancel()
	ls, err := storeflag.OpenLog(ctx, *db)
	if err != nil {
		return err
	}
	defer ls.Close()
	// The stored state first, with the log's size it is of: the log only
	// grows, so the log read next holds all of what the state is of.
	accounts, m, dcs, err := readState(ctx, ls)
	if err != nil {
		return err
	}
	stored := residency.HashReader(ctx, ls)
	n, err := ls.LogSize(ctx)
	if err != nil {
		return err
	}
	head, err := auditlog.NewCheckpoint(old.Origin, n, stored)
	if err != nil {
		return fmt.Errorf("the log's stored head: %w", err)
	}
	// The log's own head must extend the checkpoint kept: a consistency
	// proof from the stored hashes, checked with nothing but the two heads.
	if head.Size < old.Size {
		return fmt.Errorf("the log holds %d entries, the checkpoint counts %d (entries removed, an older copy of the store, or the checkpoint is of another log): %w", head.Size, old.Size, auditlog.ErrShortLog)
	}
	proof, err := auditlog.ProveExtension(old.Size, head.Size, stored)
	if err != nil {
		return fmt.Errorf("proving that the log extends the checkpoint: %w", err)
	}
	if err := auditlog.CheckExtension(proof, old, head); err != nil {
		return fmt.Errorf("the log of %d entries does not extend the checkpoint of %d (the log was rewritten since, or the checkpoint is of another log): %w", head.Size, old.Size, err)
	}
	// Every stored entry must hash to the tree, and the tree to the
	// checkpoint kept and to the log's head; replay meanwhile the entries
	// the stored state is of.
	state := newReplayed()
	replay := func(i int64, e []byte) error {
		if i < m {
			return state.add(i, e)
		}
		return nil
	}
	got, err := auditlog.CheckLog(old, logEntries(ctx, ls, head.Size, replay), stored)
	if err != nil {
		return err
	}
	if got != head {
		return fmt.Errorf("the log's entries hash to %v, its stored head is %v: %w", got, head, auditlog.ErrTreeMismatch)
	}
	if err := checkState(accounts, dcs, state); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: the log of %d entries extends the checkpoint of %d; every entry hashes to the tree; %d accounts and %d data center statuses agree with the log\n", head.Size, old.Size, len(accounts), len(state.statuses))
	fmt.Fprintf(stdout, "current head:\n%s", head)
	return nil
}

// otherLog explains err of CheckLog when the log's entries, stored hashes
// included, hash to another tree than the checkpoint's.
func otherLog(err error) string {
	if errors.Is(err, auditlog.ErrTreeMismatch) {
		return " (the log was rewritten since, or the checkpoint is of another log)"
	}
	return ""
}

// logEntries yields the log's first n entries, calling each(index, entry)
// on each before yielding it; each's error stops the iteration and is
// yielded.
func logEntries(ctx context.Context, ls residency.LogStore, n int64, each func(int64, []byte) error) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		errStop := errors.New("stop")
		err := ls.LogEntries(ctx, 0, func(i int64, e []byte) error {
			if i >= n {
				return errStop
			}
			if err := each(i, e); err != nil {
				yield(nil, err)
				return errStop
			}
			if !yield(e, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			yield(nil, err)
		}
	}
}

// historyCmd prints an account's entries, each proved to be in the
// checkpoint's tree.
func historyCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("history", stderr)
	db := fs.String("db", "", "the store: a file path or a PostgreSQL URL")
	pub := fs.String("pub", "", "the log's public key file")
	file := fs.String("checkpoint", "", "a signed checkpoint")
	account := fs.String("account", "", "the account ID")
	timeout := fs.Duration("timeout", 0, timeoutUsage)
	if err := parse(fs, args, "db", "pub", "checkpoint", "account"); err != nil {
		return err
	}
	c, err := readCheckpoint(*pub, *file)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(*timeout)
	defer cancel()
	ls, err := storeflag.OpenLog(ctx, *db)
	if err != nil {
		return err
	}
	defer ls.Close()
	stored := residency.HashReader(ctx, ls)
	type found struct {
		index int64
		entry []byte
	}
	var mine []found
	// An entry that does not decode may be of this account: it fails
	// history, but only once CheckLog has said whether it is the
	// checkpoint's (then this tool cannot read the log) or was rewritten.
	var undecoded error
	collect := func(i int64, e []byte) error {
		ch, err := residency.DecodeEntry(e)
		if err != nil {
			if undecoded == nil {
				undecoded = fmt.Errorf("entry %d, in the checkpoint, does not decode: %w", i, err)
			}
			return nil
		}
		if ch.Placement.AccountID == *account {
			mine = append(mine, found{i, slices.Clone(e)})
		}
		return nil
	}
	// Every entry the checkpoint covers must hash to it, those of other
	// accounts too: an entry of this account rewritten as another's, or
	// removed, would otherwise go unseen, and so would a checkpoint of
	// another log.
	_, err = auditlog.CheckLog(c, logEntries(ctx, ls, c.Size, collect), stored)
	switch {
	case errors.Is(err, auditlog.ErrEntryMismatch), errors.Is(err, auditlog.ErrTreeMismatch), errors.Is(err, auditlog.ErrShortLog):
		return fmt.Errorf("the log's first %d entries are not those of the checkpoint%s: %w", c.Size, otherLog(err), err)
	case err != nil:
		return fmt.Errorf("reading the log's first %d entries: %w", c.Size, err)
	case undecoded != nil:
		return undecoded
	}
	for _, f := range mine {
		proof, err := auditlog.ProveEntry(f.index, c.Size, stored)
		if err == nil {
			err = auditlog.CheckEntry(proof, c, f.index, f.entry)
		}
		if err != nil {
			return fmt.Errorf("entry %d of account %q is not proved in the checkpoint of %d: %w", f.index, *account, c.Size, err)
		}
		fmt.Fprintf(stdout, "%d %s\n", f.index, printable(string(f.entry)))
	}
	// Entries after the checkpoint are not listed: say so when there are
	// (a note only: an error reading the size, after CheckLog read the
	// log, leaves it out).
	later := ""
	if n, err := ls.LogSize(ctx); err == nil && n > c.Size {
		later = fmt.Sprintf("; the log now holds %d, keep a newer checkpoint to see later ones", n)
	}
	switch len(mine) {
	case 0:
		// Not an error (the account may never have existed), but say
		// so plainly: a mistyped ID would otherwise look like an answer.
		fmt.Fprintf(stdout, "no entries of account %q in the checkpoint of %d entries (account IDs are case-sensitive%s)\n", *account, c.Size, later)
	case 1:
		fmt.Fprintf(stdout, "1 entry of account %q, proved in the checkpoint of %d entries%s\n", *account, c.Size, later)
	default:
		fmt.Fprintf(stdout, "%d entries of account %q, each proved in the checkpoint of %d entries%s\n", len(mine), *account, c.Size, later)
	}
	return nil
}
