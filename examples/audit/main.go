// Command audit is the auditor's tool for domicile's audit log: every
// change domicile commits is an entry of an append-only log hashed into a
// Merkle tree, whose signed head (a checkpoint) an auditor keeps and later
// checks the log against (see package auditlog).
//
//	audit keygen -name NAME -key FILE -pub FILE
//
// keygen writes a new Ed25519 key pair for signing checkpoints, as signed
// note keys: the private key to -key (mode 0600; give it to the log's
// operator, keep it secret), the public key to -pub (give it to auditors)
// and to standard output. NAME is the log's name, the origin line of its
// checkpoints, such as "example.com/domicile"; it may contain neither
// spaces nor "+". keygen never overwrites a file.
//
//	audit checkpoint -db DB -key FILE
//
// checkpoint prints the log's current checkpoint (its origin, the key's
// name; its size; its root hash) signed with the private key, the text an
// auditor keeps. A key file that others than its owner may read or write
// is refused (chmod 600 it), as ssh refuses such a key.
//
//	audit verify -db DB -pub FILE -checkpoint FILE
//
// verify opens the signed checkpoint with the public key, checks that the
// log now held extends it (a consistency proof from the stored hashes,
// checked against both heads), recomputes the tree from every stored entry
// and compares it with the stored hashes and with the checkpoint, and
// replays the entries: every stored account must be its latest entry's
// placement, its trail the events of its entries (from its first entry:
// the events before an upgraded store's snapshot are not in the log), and
// its agreements, consents and objections the latest its entries carry;
// the data center statuses must be those the log says. On PostgreSQL the
// state is read in one snapshot, with the log's size then, and compared
// with that many entries: services may go on writing meanwhile. It
// prints the log's current head.
//
//	audit history -db DB -pub FILE -checkpoint FILE -account ID
//
// history prints each entry of the account in the checkpoint's log, with
// its index, each proved to be in the checkpoint's tree (control and
// bidirectional formatting characters escaped as \uXXXX, which keeps the
// JSON's value). It first checks
// that every entry the checkpoint covers, of any account, hashes to it, so
// that the list is the account's whole history: an entry rewritten as
// another account's, or removed, fails (exit 1), as a checkpoint of
// another log does, and so does an entry the tool cannot decode (it might
// be the account's).
//
// DB is a store file (it must not be open in a running service) or a
// PostgreSQL URL (postgres:// or postgresql://). Either is opened
// read-only: the tool never creates, upgrades or writes anything, so a
// store that needs an upgrade (a file of format 4 or older, tables of an
// older format), or a database without domicile's tables, is refused
// (files of formats 5 to 8 are read as they are); on PostgreSQL a role with SELECT on domicile's tables (and
// USAGE on their schema) is enough, and the stored hashes of the latest
// entries that no writer stored yet are computed in memory.
//
// What the tool prints of the database (entries, and errors naming stored
// values) has its control characters escaped: the database is the
// operator's, and a newline or an escape sequence in a stored value would
// otherwise print a line of its choosing on the auditor's terminal.
//
// checkpoint, verify and history take -timeout D (such as 10m): past it
// they give up, exit 1. Without it they wait as long as the database makes
// them: one that never answers (a table its operator keeps locked, say)
// holds them forever, so give it to a run nobody watches.
//
// Exit status: 0 when all was done (verify: when all holds), 1 when it
// failed, naming the first entry or proof that fails, 2 for a usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is a subcommand.
type command struct {
	name, args, summary string
	// run parses its flags from args and does the work. A returned error
	// wrapping errUsage exits with status 2, any other with 1.
	run func(args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"keygen", "-name NAME -key FILE -pub FILE", "write a new key pair for signing checkpoints", keygen},
	{"checkpoint", "-db DB -key FILE [-timeout D]", "print the log's current checkpoint, signed", checkpointCmd},
	{"verify", "-db DB -pub FILE -checkpoint FILE [-timeout D]", "check that the log extends a checkpoint kept, hashes to its tree, and agrees with the stored state", verifyCmd},
	{"history", "-db DB -pub FILE -checkpoint FILE -account ID [-timeout D]", "print an account's entries, each proved in the checkpoint", historyCmd},
}

// errUsage marks errors that exit with status 2.
var errUsage = errors.New("usage")

// errUsageShown is a usage error the flag package has already printed,
// with the command's flags: only the command's usage line is left to say.
var errUsageShown = fmt.Errorf("%w (shown)", errUsage)

// usageError returns a usage error with the given text.
func usageError(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsageShown):
			fmt.Fprintf(stderr, "usage: audit %s %s\n", c.name, c.args)
			return 2
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "audit %s: %v\n", name, err)
			fmt.Fprintf(stderr, "usage: audit %s %s\n", c.name, c.args)
			return 2
		default:
			// The error may name what the operator's database holds.
			fmt.Fprintf(stderr, "audit %s: %s\n", name, printable(err.Error()))
			return 1
		}
	}
	fmt.Fprintf(stderr, "audit: unknown command %q\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: audit COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %s %s\n      %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Exit status: 0 when all holds, 1 when something failed, 2 for a usage error.")
}

// newFlagSet returns the flag set of a subcommand; its errors and help
// go to stderr.
func newFlagSet(c string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("audit "+c, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args into fs and checks that each of required was given
// a non-empty value and that no argument is left.
func parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsageShown, err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	var missing []string
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			missing = append(missing, "-"+name)
		}
	}
	if len(missing) > 0 {
		return usageError("%s required", strings.Join(missing, ", "))
	}
	return nil
}

// printable returns s with what a terminal would act on instead of show
// escaped: control characters (C0, DEL and C1, newlines included), the
// line and paragraph separators, the bidirectional formatting characters
// (which reorder what follows them), as \uXXXX, and bytes of invalid
// UTF-8 as \xNN. The tool prints what an operator's database holds, which
// the auditor does not trust: a newline would start a line of its choosing
// ("OK: ..."), an escape sequence could clear the screen. Inside a JSON
// string, such as an entry's, the \uXXXX escapes keep the value.
func printable(s string) string {
	if !strings.ContainsFunc(s, unprintable) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unprintable(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// unprintable reports whether printable escapes r.
func unprintable(r rune) bool {
	switch {
	case unicode.IsControl(r), r == '\u2028', r == '\u2029', r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}
