package auditlog_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/domicile-go/domicile/auditlog"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const origin = "example.com/domicile"

// entry returns the bytes of the test log's entry i.
func entry(i int64) []byte { return fmt.Appendf(nil, "entry %d", i) }

// entries returns the test log's first n entries.
func entries(n int64) [][]byte {
	es := make([][]byte, n)
	for i := range es {
		es[i] = entry(int64(i))
	}
	return es
}

// memLog returns a MemoryHashes holding the given entries.
func memLog(t testing.TB, es [][]byte) *auditlog.MemoryHashes {
	t.Helper()
	m := new(auditlog.MemoryHashes)
	if len(es) == 0 {
		return m
	}
	if _, err := m.Append(es...); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkpoint returns the checkpoint of m at size n.
func checkpoint(t testing.TB, m *auditlog.MemoryHashes, n int64) auditlog.Checkpoint {
	t.Helper()
	c, err := auditlog.NewCheckpoint(origin, n, m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// naiveRoot computes the RFC 6962 Merkle tree hash of the entries by its
// definition (section 2.1), independently of tlog.
func naiveRoot(es [][]byte) tlog.Hash {
	switch len(es) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, es[0]...))
	}
	k := 1
	for k*2 < len(es) {
		k *= 2
	}
	l, r := naiveRoot(es[:k]), naiveRoot(es[k:])
	return sha256.Sum256(bytes.Join([][]byte{{1}, l[:], r[:]}, nil))
}

// detReader is a deterministic source of "randomness" for key generation
// in examples and tests whose output must not change.
type detReader byte

func (d detReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(d) + byte(i)
	}
	return len(p), nil
}

// keyPair returns a signer and a verifier for a key named name, made
// from seed.
func keyPair(t testing.TB, name string, seed byte) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(detReader(seed), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}
