package auditlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is the head of a log at some size: the commitment to all of
// its first Size entries. It is the body of a signed note in the C2SP
// tlog-checkpoint form:
//
//	<origin>
//	<size, in decimal>
//	<root hash, in base64>
//	<extension lines, if any>
//
// The zero Checkpoint is not valid: its Origin is empty.
type Checkpoint struct {
	// Origin names the log. It is non-empty UTF-8 without control
	// characters; it should be the name of the key that signs the log's
	// checkpoints, a schema-less URL such as "example.com/domicile".
	Origin string
	// Size is the number of entries the checkpoint commits to.
	Size int64
	// Hash is the root hash of the tree of the first Size entries
	// (RFC 6962, as computed by [tlog.TreeHash]).
	Hash tlog.Hash
	// Extensions holds the opaque extension lines as they are in the
	// text, each non-empty and ending in a newline ("a\nb\n"); it is
	// empty when there are none. This package writes none of its own and
	// checks nothing about them. (A string, not a slice, so that
	// checkpoints compare with ==.)
	Extensions string
}

// NewCheckpoint returns the checkpoint of the log named origin at size
// n, whose stored hashes r reads. It reads at most log2(n)+1 hashes.
func NewCheckpoint(origin string, n int64, r tlog.HashReader) (Checkpoint, error) {
	if err := checkSize("size", n); err != nil {
		return Checkpoint{}, err
	}
	h, err := tlog.TreeHash(n, r)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("auditlog: tree hash at size %d: %w", n, err)
	}
	return Checkpoint{Origin: origin, Size: n, Hash: h}, nil
}

// Marshal returns the checkpoint's note text, ending in a newline. It
// fails with [ErrMalformedCheckpoint] when the checkpoint cannot be
// written in that form: an empty origin, a negative size, an empty
// extension line, or a control character or invalid UTF-8 in a line.
func (c Checkpoint) Marshal() ([]byte, error) {
	if err := checkLine("origin", c.Origin); err != nil {
		return nil, err
	}
	if c.Size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrMalformedCheckpoint, c.Size)
	}
	if err := checkExtensions(c.Extensions); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(c.Origin)+20+base64.StdEncoding.EncodedLen(tlog.HashSize)+3)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Hash[:])
	b = append(b, '\n')
	b = append(b, c.Extensions...)
	return b, nil
}

// MarshalText returns the checkpoint's note text, as [Checkpoint.Marshal]
// does; it makes a Checkpoint an [encoding.TextMarshaler].
func (c Checkpoint) MarshalText() ([]byte, error) { return c.Marshal() }

// UnmarshalText parses a checkpoint's note text into c, as
// [ParseCheckpoint] does; on error c is unchanged.
func (c *Checkpoint) UnmarshalText(text []byte) error {
	d, err := ParseCheckpoint(text)
	if err != nil {
		return err
	}
	*c = d
	return nil
}

// String returns the checkpoint's note text, or a description of why it
// has none.
func (c Checkpoint) String() string {
	b, err := c.Marshal()
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// checkLine checks that s can be one line of a checkpoint: non-empty,
// valid UTF-8, no control characters (note.Open refuses them too).
func checkLine(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrMalformedCheckpoint, what)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrMalformedCheckpoint, what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character %U in %s", ErrMalformedCheckpoint, r, what)
		}
	}
	return nil
}

// checkExtensions checks extension lines: each a line, ending in a
// newline.
func checkExtensions(s string) error {
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		return fmt.Errorf("%w: extension lines do not end in a newline", ErrMalformedCheckpoint)
	}
	for _, e := range strings.Split(s[:len(s)-1], "\n") {
		if err := checkLine("extension line", e); err != nil {
			return err
		}
	}
	return nil
}

// strictBase64 refuses encodings with non-zero padding bits, so that a
// parsed hash re-encodes to the very text it was read from.
var strictBase64 = base64.StdEncoding.Strict()

// ParseCheckpoint parses a checkpoint's note text (without signatures):
// the origin line, the size line in decimal without leading zeros, the
// root hash line in standard padded base64 of exactly 32 bytes, then any
// non-empty extension lines, each line ending in a newline. It accepts
// exactly the texts [Checkpoint.Marshal] writes, so Marshal after
// ParseCheckpoint returns the text parsed. Anything else is
// [ErrMalformedCheckpoint].
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return Checkpoint{}, fmt.Errorf("%w: text does not end in a newline", ErrMalformedCheckpoint)
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("%w: %d lines, want at least 3", ErrMalformedCheckpoint, len(lines))
	}
	var c Checkpoint
	if err := checkLine("origin", lines[0]); err != nil {
		return Checkpoint{}, err
	}
	c.Origin = lines[0]
	size, err := parseSize(lines[1])
	if err != nil {
		return Checkpoint{}, err
	}
	c.Size = size
	if c.Hash, err = parseHash(lines[2]); err != nil {
		return Checkpoint{}, err
	}
	for _, e := range lines[3:] {
		if err := checkLine("extension line", e); err != nil {
			return Checkpoint{}, err
		}
		c.Extensions += e + "\n"
	}
	return c, nil
}

// parseSize parses a tree size: ASCII digits, no sign, no leading zero.
func parseSize(s string) (int64, error) {
	bad := s == "" || len(s) > 1 && s[0] == '0'
	for i := 0; i < len(s) && !bad; i++ {
		bad = s[i] < '0' || s[i] > '9'
	}
	if bad {
		return 0, fmt.Errorf("%w: size %q is not a decimal number", ErrMalformedCheckpoint, s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil && n > MaxSize {
		err = checkSize("size", n)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: size %q: %w", ErrMalformedCheckpoint, s, err)
	}
	return n, nil
}

// parseHash parses a root hash line.
func parseHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	if err := checkLine("root hash", s); err != nil {
		return h, err
	}
	// The decoder skips '\r' and '\n'; checkLine has refused them.
	if len(s) != base64.StdEncoding.EncodedLen(tlog.HashSize) {
		return h, fmt.Errorf("%w: root hash %q is not 32 bytes in base64", ErrMalformedCheckpoint, s)
	}
	// 44 characters without padding decode to 33 bytes: make room.
	var buf [tlog.HashSize + 1]byte
	n, err := strictBase64.Decode(buf[:], []byte(s))
	copy(h[:], buf[:])
	if err != nil || n != tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("%w: root hash %q is not 32 bytes in base64", ErrMalformedCheckpoint, s)
	}
	return h, nil
}

// Sign returns the checkpoint as a note signed by each of signers, the
// form to publish and to hand to auditors. The signer's name should be
// the checkpoint's origin. Sign checks nothing about the tree: sign only
// checkpoints computed from the log, and never two that are not one the
// extension of the other.
func (c Checkpoint) Sign(signers ...note.Signer) ([]byte, error) {
	text, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	if len(signers) == 0 {
		return nil, errors.New("auditlog: Sign needs at least one signer")
	}
	if slices.Contains(signers, nil) {
		return nil, errors.New("auditlog: Sign: a nil signer")
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signers...)
	if err != nil {
		return nil, fmt.Errorf("auditlog: signing checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint and returns it. It needs at
// least one signature by one of verifiers, and every signature by one of
// them to verify; signatures by other keys are ignored, so that a log
// can rotate its key (sign with both old and new for a while) and
// witnesses can cosign. It fails with
//   - [ErrUnknownKey] when no signature is by one of verifiers;
//   - [ErrBadSignature] when a signature by one of them does not verify
//     (the text was changed after signing);
//   - [ErrMalformedCheckpoint] when msg is not a signed note, or its text
//     not a checkpoint.
//
// OpenCheckpoint does not check the origin: a caller that trusts a key
// for one log only should compare the returned Origin with that log's.
func OpenCheckpoint(msg []byte, verifiers ...note.Verifier) (Checkpoint, error) {
	// note.VerifierList refuses two verifiers of the same name and key
	// hash as ambiguous; keep the first (a caller giving one key twice
	// means no harm).
	list := make([]note.Verifier, 0, len(verifiers))
	for _, v := range verifiers {
		if v == nil {
			continue // no key: signatures by it cannot be checked
		}
		dup := false
		for _, w := range list {
			dup = dup || w.Name() == v.Name() && w.KeyHash() == v.KeyHash()
		}
		if !dup {
			list = append(list, v)
		}
	}
	n, err := note.Open(msg, note.VerifierList(list...))
	if err == nil && len(n.Sigs)+len(n.UnverifiedSigs) < bytes.Count(msg[len(n.Text):], []byte("\n"))-1 {
		// note.Open checks the first signature of each key and drops
		// its others unchecked: check every signature line on its own.
		err = openEachSignature(msg, len(n.Text), list)
	}
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			// Name the keys on both sides: an auditor holding the wrong
			// public key file sees which one the log signs with.
			// note.Open finds a note without signatures malformed, so
			// by holds at least one key.
			var by, given []string
			for _, sig := range unverified.Note.UnverifiedSigs {
				by = append(by, keyName(sig.Name, sig.Hash))
			}
			for _, v := range list {
				given = append(given, keyName(v.Name(), v.KeyHash()))
			}
			notBy := "and no key was given to verify it"
			if len(given) > 0 {
				notBy = "not by " + strings.Join(given, " or ")
			}
			return Checkpoint{}, fmt.Errorf("%w: signed by %s, %s: %w", ErrUnknownKey,
				strings.Join(by, " and "), notBy, err)
		case errors.As(err, &invalid):
			return Checkpoint{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
		default:
			return Checkpoint{}, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
		}
	}
	return ParseCheckpoint([]byte(n.Text))
}

// openEachSignature opens the note msg, whose text is msg[:textLen],
// with each of its signature lines alone, and returns the first error.
func openEachSignature(msg []byte, textLen int, list []note.Verifier) error {
	text, sigs := msg[:textLen+1], msg[textLen+1:] // the text and the blank line
	for line := range bytes.Lines(sigs) {
		_, err := note.Open(append(bytes.Clone(text), line...), note.VerifierList(list...))
		if _, unknown := err.(*note.UnverifiedNoteError); err != nil && !unknown {
			return err
		}
	}
	return nil
}

// keyName is how a note key is named in its text: name+hash.
func keyName(name string, hash uint32) string { return fmt.Sprintf("%s+%08x", name, hash) }
