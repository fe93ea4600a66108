package auditlog_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The example of C2SP tlog-checkpoint.
const c2spExample = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

func mustHash(t *testing.T, b64 string) tlog.Hash {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) != tlog.HashSize {
		t.Fatalf("bad test hash %q", b64)
	}
	return tlog.Hash(b)
}

func TestParseCheckpoint(t *testing.T) {
	h := mustHash(t, "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
	hash := "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
	for _, tc := range []struct {
		name string
		text string
		want auditlog.Checkpoint
	}{
		{"C2SP example", c2spExample, auditlog.Checkpoint{Origin: "example.com/behind-the-sofa", Size: 20852163, Hash: h}},
		{"empty tree", "o\n0\n" + hash + "\n", auditlog.Checkpoint{Origin: "o", Hash: h}},
		{"extension lines", "o\n1\n" + hash + "\nx\ny z\n", auditlog.Checkpoint{Origin: "o", Size: 1, Hash: h, Extensions: "x\ny z\n"}},
		{"origin with spaces and plus", "a b+c\n1\n" + hash + "\n", auditlog.Checkpoint{Origin: "a b+c", Size: 1, Hash: h}},
		{"largest size", "o\n4611686018427387903\n" + hash + "\n", auditlog.Checkpoint{Origin: "o", Size: auditlog.MaxSize, Hash: h}},
	} {
		got, err := auditlog.ParseCheckpoint([]byte(tc.text))
		if err != nil {
			t.Errorf("%s: ParseCheckpoint: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: ParseCheckpoint mismatch (-want +got):\n%s", tc.name, diff)
		}
		text, err := got.Marshal()
		if err != nil || string(text) != tc.text {
			t.Errorf("%s: Marshal() = %q, %v; want %q", tc.name, text, err, tc.text)
		}
	}
}

func TestParseCheckpointMalformed(t *testing.T) {
	hash := "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
	for _, tc := range []struct {
		name, text string
	}{
		{"empty", ""},
		{"no final newline", "o\n1\n" + hash},
		{"two lines", "o\n1\n"},
		{"empty origin", "\n1\n" + hash + "\n"},
		{"empty size", "o\n\n" + hash + "\n"},
		{"leading zero", "o\n01\n" + hash + "\n"},
		{"plus sign", "o\n+1\n" + hash + "\n"},
		{"negative size", "o\n-1\n" + hash + "\n"},
		{"size overflows", "o\n9223372036854775808\n" + hash + "\n"},
		{"size above MaxSize", "o\n4611686018427387904\n" + hash + "\n"},
		{"size of MaxInt64", "o\n9223372036854775807\n" + hash + "\n"},
		{"hex size", "o\n0x10\n" + hash + "\n"},
		{"short hash", "o\n1\nAAAA\n"},
		{"hash without padding", "o\n1\n" + strings.TrimSuffix(hash, "=") + "\n"},
		{"hash with non-zero padding bits", "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n"},
		{"URL base64", "o\n1\n" + strings.ReplaceAll(hash, "/", "_") + "\n"},
		{"48-byte hash", "o\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 48)) + "\n"},
		{"carriage return", "o\r\n1\n" + hash + "\n"},
		{"empty extension line", "o\n1\n" + hash + "\n\n"},
		{"empty line between extensions", "o\n1\n" + hash + "\nx\n\ny\n"},
		{"control character", "o\x01\n1\n" + hash + "\n"},
		{"invalid UTF-8", "o\xff\n1\n" + hash + "\n"},
		{"signed note", c2spExample + "\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"},
	} {
		c, err := auditlog.ParseCheckpoint([]byte(tc.text))
		if !errors.Is(err, auditlog.ErrMalformedCheckpoint) {
			t.Errorf("%s: ParseCheckpoint(%q) = %v, %v; want ErrMalformedCheckpoint", tc.name, tc.text, c, err)
		}
	}
}

func TestMarshalMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    auditlog.Checkpoint
	}{
		{"zero", auditlog.Checkpoint{}},
		{"newline in origin", auditlog.Checkpoint{Origin: "a\nb"}},
		{"negative size", auditlog.Checkpoint{Origin: "o", Size: -1}},
		{"empty extension line", auditlog.Checkpoint{Origin: "o", Extensions: "\n"}},
		{"empty line between extensions", auditlog.Checkpoint{Origin: "o", Extensions: "a\n\nb\n"}},
		{"extension without newline", auditlog.Checkpoint{Origin: "o", Extensions: "a"}},
		{"control character in extension", auditlog.Checkpoint{Origin: "o", Extensions: "a\tb\n"}},
		{"invalid UTF-8", auditlog.Checkpoint{Origin: "\xff"}},
	} {
		if b, err := tc.c.Marshal(); !errors.Is(err, auditlog.ErrMalformedCheckpoint) {
			t.Errorf("%s: Marshal() = %q, %v; want ErrMalformedCheckpoint", tc.name, b, err)
		}
		signer, _ := keyPair(t, origin, 1)
		if b, err := tc.c.Sign(signer); !errors.Is(err, auditlog.ErrMalformedCheckpoint) {
			t.Errorf("%s: Sign() = %q, %v; want ErrMalformedCheckpoint", tc.name, b, err)
		}
	}
}

func TestSignOpen(t *testing.T) {
	signer, verifier := keyPair(t, origin, 1)
	newSigner, newVerifier := keyPair(t, origin, 2)
	_, otherVerifier := keyPair(t, "example.com/other", 3)
	_, sameNameVerifier := keyPair(t, origin, 4)
	m := memLog(t, entries(10))
	c := checkpoint(t, m, 10)
	signed, err := c.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	rotating, err := c.Sign(signer, newSigner)
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the size line of the signed note, keeping the signature.
	forged := bytes.Replace(signed, []byte("\n10\n"), []byte("\n9\n"), 1)
	if bytes.Equal(forged, signed) {
		t.Fatal("forging failed")
	}
	// A note signed by the right key whose text is not a checkpoint.
	notCheckpoint, err := note.Sign(&note.Note{Text: "hello\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		msg       []byte
		verifiers []note.Verifier
		want      error
	}{
		{"signed by the key", signed, []note.Verifier{verifier}, nil},
		{"the key among others", signed, []note.Verifier{otherVerifier, verifier}, nil},
		{"the key given twice", signed, []note.Verifier{verifier, verifier}, nil},
		{"rotation: old key only", rotating, []note.Verifier{verifier}, nil},
		{"rotation: new key only", rotating, []note.Verifier{newVerifier}, nil},
		{"rotation: both keys", rotating, []note.Verifier{verifier, newVerifier}, nil},
		{"another key", signed, []note.Verifier{otherVerifier}, auditlog.ErrUnknownKey},
		{"another key of the same name", signed, []note.Verifier{sameNameVerifier}, auditlog.ErrUnknownKey},
		{"no verifiers", signed, nil, auditlog.ErrUnknownKey},
		{"forged body", forged, []note.Verifier{verifier}, auditlog.ErrBadSignature},
		{"forged body, rotation", bytes.Replace(rotating, []byte("\n10\n"), []byte("\n11\n"), 1), []note.Verifier{newVerifier}, auditlog.ErrBadSignature},
		{"unsigned text", []byte(c.String()), []note.Verifier{verifier}, auditlog.ErrMalformedCheckpoint},
		{"garbage", []byte("\x00\x01"), []note.Verifier{verifier}, auditlog.ErrMalformedCheckpoint},
		{"signature line mangled", bytes.Replace(signed, []byte("— "), []byte("- "), 1), []note.Verifier{verifier}, auditlog.ErrMalformedCheckpoint},
		{"not a checkpoint", notCheckpoint, []note.Verifier{verifier}, auditlog.ErrMalformedCheckpoint},
	} {
		got, err := auditlog.OpenCheckpoint(tc.msg, tc.verifiers...)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: OpenCheckpoint: %v", tc.name, err)
			} else if diff := cmp.Diff(c, got); diff != "" {
				t.Errorf("%s: OpenCheckpoint mismatch (-want +got):\n%s", tc.name, diff)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: OpenCheckpoint error = %v, want %v", tc.name, err, tc.want)
		}
		// The sentinels are distinct: no error matches two of them.
		for _, other := range []error{auditlog.ErrUnknownKey, auditlog.ErrBadSignature, auditlog.ErrMalformedCheckpoint} {
			if other != tc.want && errors.Is(err, other) {
				t.Errorf("%s: OpenCheckpoint error %v also matches %v", tc.name, err, other)
			}
		}
	}
	if _, err := c.Sign(); err == nil {
		t.Error("Sign() with no signer: no error")
	}
	// A checkpoint of other keys names the keys that signed it and those
	// given: an auditor holding the wrong public key file sees which.
	name := func(v note.Verifier) string { return fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()) }
	for _, tc := range []struct {
		name      string
		msg       []byte
		verifiers []note.Verifier
		want      string
	}{
		{"another key", signed, []note.Verifier{sameNameVerifier},
			"signed by " + name(verifier) + ", not by " + name(sameNameVerifier) + ":"},
		{"two other keys", signed, []note.Verifier{sameNameVerifier, otherVerifier},
			"signed by " + name(verifier) + ", not by " + name(sameNameVerifier) + " or " + name(otherVerifier) + ":"},
		{"two signatures", rotating, []note.Verifier{sameNameVerifier},
			"signed by " + name(verifier) + " and " + name(newVerifier) + ", not by " + name(sameNameVerifier) + ":"},
		{"no verifiers", signed, nil,
			"signed by " + name(verifier) + ", and no key was given to verify it:"},
	} {
		_, err := auditlog.OpenCheckpoint(tc.msg, tc.verifiers...)
		if !errors.Is(err, auditlog.ErrUnknownKey) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: OpenCheckpoint error = %v, want ErrUnknownKey saying %q", tc.name, err, tc.want)
		}
	}
}

// FuzzParseCheckpoint: whatever ParseCheckpoint accepts, Marshal writes
// back byte for byte, and parsing that gives the same checkpoint.
func FuzzParseCheckpoint(f *testing.F) {
	hash := "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
	for _, seed := range []string{
		c2spExample,                 // the specification's example
		"o\n0\n" + hash + "\n",      // an empty tree
		"o\n1\n" + hash + "\next\n", // an extension line
		"o\n01\n" + hash + "\n",     // leading zero: refused
		"o\n1\n" + hash,             // no final newline: refused
		"o\n1\n" + hash + "\n\n",    // empty extension: refused
		"o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", // padding bits: refused
		"\n\n\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := auditlog.ParseCheckpoint(text)
		if err != nil {
			if !errors.Is(err, auditlog.ErrMalformedCheckpoint) {
				t.Fatalf("ParseCheckpoint(%q) error %v is not ErrMalformedCheckpoint", text, err)
			}
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal(ParseCheckpoint(%q)): %v", text, err)
		}
		if !bytes.Equal(out, text) {
			t.Fatalf("Marshal(ParseCheckpoint(%q)) = %q", text, out)
		}
		again, err := auditlog.ParseCheckpoint(out)
		if err != nil {
			t.Fatalf("ParseCheckpoint(Marshal(...)) of %q: %v", text, err)
		}
		if c != again { // checkpoints are comparable
			t.Fatalf("round trip of %q mismatch (-want +got):\n%s", text, cmp.Diff(c, again))
		}
		// MarshalText and UnmarshalText are Marshal and ParseCheckpoint.
		mt, err := c.MarshalText()
		if err != nil || !bytes.Equal(mt, text) {
			t.Fatalf("MarshalText(ParseCheckpoint(%q)) = %q, %v", text, mt, err)
		}
		var u auditlog.Checkpoint
		if err := u.UnmarshalText(mt); err != nil {
			t.Fatalf("UnmarshalText(%q): %v", mt, err)
		}
		if diff := cmp.Diff(c, u); diff != "" {
			t.Fatalf("UnmarshalText(%q) mismatch (-want +got):\n%s", mt, diff)
		}
		// A checkpoint text can be signed and opened again.
		signer, verifier := keyPair(t, "fuzz", 1)
		signed, err := c.Sign(signer)
		if err != nil {
			t.Fatalf("Sign(%q): %v", text, err)
		}
		opened, err := auditlog.OpenCheckpoint(signed, verifier)
		if err != nil {
			t.Fatalf("OpenCheckpoint(Sign(%q)): %v", text, err)
		}
		if diff := cmp.Diff(c, opened); diff != "" {
			t.Fatalf("sign and open of %q mismatch (-want +got):\n%s", text, diff)
		}
	})
}

// A Checkpoint is a text value in JSON, its note text.
// TestNilKeys: a nil signer is an error of Sign, and a nil verifier is no
// key to OpenCheckpoint; neither panics (from an adversarial trial).
func TestNilKeys(t *testing.T) {
	signer, verifier := keyPair(t, origin, 1)
	c := checkpoint(t, memLog(t, entries(3)), 3)
	if _, err := c.Sign(nil); err == nil {
		t.Error("Sign(nil) succeeded")
	}
	if _, err := c.Sign(signer, nil); err == nil {
		t.Error("Sign(signer, nil) succeeded")
	}
	signed, err := c.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auditlog.OpenCheckpoint(signed, nil); !errors.Is(err, auditlog.ErrUnknownKey) {
		t.Errorf("OpenCheckpoint with a nil verifier = %v, want ErrUnknownKey", err)
	}
	if got, err := auditlog.OpenCheckpoint(signed, nil, verifier); err != nil || got != c {
		t.Errorf("OpenCheckpoint with a nil verifier and the right one = %+v, %v; want %+v", got, err, c)
	}
}

func TestCheckpointJSON(t *testing.T) {
	c, err := auditlog.ParseCheckpoint([]byte(c2spExample))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]auditlog.Checkpoint{"head": c})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"head":"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"}`
	if string(b) != want {
		t.Errorf("json.Marshal = %s, want %s", b, want)
	}
	var got map[string]auditlog.Checkpoint
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got["head"]); diff != "" {
		t.Errorf("json round trip mismatch (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"head":"nope"}`), &got); !errors.Is(err, auditlog.ErrMalformedCheckpoint) {
		t.Errorf("json.Unmarshal(malformed) error = %v, want ErrMalformedCheckpoint", err)
	}
	if _, err := json.Marshal(auditlog.Checkpoint{}); !errors.Is(err, auditlog.ErrMalformedCheckpoint) {
		t.Errorf("json.Marshal(zero Checkpoint) error = %v, want ErrMalformedCheckpoint", err)
	}
}

// TestOpenCheckpointEverySignatureOfTheKey: OpenCheckpoint checks every
// signature by a known key, not only the first (note.Open drops a key's
// later signatures unchecked): an invalid one is ErrBadSignature in
// either order.
func TestOpenCheckpointEverySignatureOfTheKey(t *testing.T) {
	signer, verifier := keyPair(t, origin, 1)
	c := checkpoint(t, memLog(t, entries(4)), 4)
	signed, err := c.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	// signed is the text, a blank line and one signature line.
	i := bytes.LastIndex(signed, []byte("\n\n")) + 2
	text, good := signed[:i], signed[i:]
	bad := bytes.Clone(good)
	bad[len(bad)-6] ^= 'A' ^ 'B' // a base64 letter of the signature changed
	if bytes.Equal(bad, good) {
		t.Fatal("no signature changed")
	}
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"invalid, then valid", bytes.Join([][]byte{text, bad, good}, nil)},
		{"valid, then invalid", bytes.Join([][]byte{text, good, bad}, nil)},
	} {
		if _, err := auditlog.OpenCheckpoint(tc.msg, verifier); !errors.Is(err, auditlog.ErrBadSignature) {
			t.Errorf("%s: OpenCheckpoint error = %v, want ErrBadSignature", tc.name, err)
		}
	}
}
