package auditlog_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log"

	"github.com/domicile-go/domicile/auditlog"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A log signs its head; an auditor opens it with the log's public key.
func ExampleCheckpoint_Sign() {
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/domicile")
	if err != nil {
		log.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		log.Fatal(err)
	}
	var hashes auditlog.MemoryHashes
	if _, err := hashes.Append([]byte("acct-1 placed in fra1"), []byte("acct-2 placed in dub1")); err != nil {
		log.Fatal(err)
	}
	c, err := hashes.Checkpoint("example.com/domicile")
	if err != nil {
		log.Fatal(err)
	}
	signed, err := c.Sign(signer)
	if err != nil {
		log.Fatal(err)
	}

	// The auditor's side: the signed checkpoint and the public key.
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		log.Fatal(err)
	}
	opened, err := auditlog.OpenCheckpoint(signed, verifier)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(opened)

	// Another key's signature is not the log's.
	_, otherKey, _ := note.GenerateKey(rand.Reader, "example.com/domicile")
	other, _ := note.NewVerifier(otherKey)
	_, err = auditlog.OpenCheckpoint(signed, other)
	fmt.Println(errors.Is(err, auditlog.ErrUnknownKey))
	// Output:
	// example.com/domicile
	// 2
	// JSvYqGl7pkY+SILdRsPMRzjIbiCJrHPiaefF+ZD/GjY=
	// true
}

// A store appends an entry and its hashes in the transaction that commits
// the change the entry records. Here the "store" is a map.
func ExampleAppendHashes() {
	stored := map[int64]tlog.Hash{} // stored hash index → hash
	var entries [][]byte
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			h, ok := stored[x]
			if !ok {
				return nil, fmt.Errorf("hash %d not stored", x)
			}
			out[i] = h
		}
		return out, nil
	})
	for _, e := range []string{"acct-1 placed in fra1", "acct-1 moved to ams1", "acct-1 deleted"} {
		// In a store: inside the write transaction, serialised.
		n := int64(len(entries))
		first, hashes, err := auditlog.AppendHashes(n, reader, []byte(e))
		if err != nil {
			log.Fatal(err)
		}
		entries = append(entries, []byte(e))
		for i, h := range hashes {
			stored[first+int64(i)] = h
		}
		fmt.Printf("entry %d: %d hashes stored from index %d\n", n, len(hashes), first)
	}
	c, err := auditlog.NewCheckpoint("example.com/domicile", int64(len(entries)), reader)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Size, c.Hash)
	// Output:
	// entry 0: 1 hashes stored from index 0
	// entry 1: 2 hashes stored from index 1
	// entry 2: 1 hashes stored from index 3
	// 3 rBpgwrWez7o8JOzm3ZgZ7NNCwH6Dtzn04vr18C8pQc4=
}

// An auditor proves an account's entry is in the checkpoint it holds.
func ExampleProveEntry() {
	var hashes auditlog.MemoryHashes
	entries := [][]byte{[]byte("acct-1 placed in fra1"), []byte("acct-2 placed in dub1"), []byte("acct-1 moved to ams1")}
	if _, err := hashes.Append(entries...); err != nil {
		log.Fatal(err)
	}
	c, err := hashes.Checkpoint("example.com/domicile")
	if err != nil {
		log.Fatal(err)
	}
	proof, err := auditlog.ProveEntry(2, c.Size, &hashes)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(auditlog.CheckEntry(proof, c, 2, entries[2]))
	err = auditlog.CheckEntry(proof, c, 2, []byte("acct-1 moved to fra1"))
	fmt.Println(err)
	fmt.Println(errors.Is(err, auditlog.ErrInvalidProof))
	// Output:
	// <nil>
	// auditlog: entry 2: invalid proof: not in checkpoint of size 3: invalid transparency proof
	// true
}

// An auditor keeps the last checkpoint it verified. An honest log that
// grew extends it; a log rebuilt with a rewritten entry does not, though
// its operator can sign its new head.
func ExampleCheckExtension() {
	entries := [][]byte{[]byte("acct-1 placed in fra1"), []byte("acct-2 placed in dub1")}
	var honest auditlog.MemoryHashes
	if _, err := honest.Append(entries...); err != nil {
		log.Fatal(err)
	}
	kept, _ := honest.Checkpoint("example.com/domicile") // the auditor keeps this

	// Later: the log grew.
	if _, err := honest.Append([]byte("acct-1 moved to ams1")); err != nil {
		log.Fatal(err)
	}
	newer, _ := honest.Checkpoint("example.com/domicile")
	proof, _ := auditlog.ProveExtension(kept.Size, newer.Size, &honest)
	fmt.Println("grown:", auditlog.CheckExtension(proof, kept, newer))

	// An operator rewrites where acct-1 was first placed and rebuilds.
	var rebuilt auditlog.MemoryHashes
	if _, err := rebuilt.Append([]byte("acct-1 placed in ams1"), entries[1], []byte("acct-1 moved to ams1")); err != nil {
		log.Fatal(err)
	}
	forged, _ := rebuilt.Checkpoint("example.com/domicile")
	proof, _ = auditlog.ProveExtension(kept.Size, forged.Size, &rebuilt)
	err := auditlog.CheckExtension(proof, kept, forged)
	fmt.Println("rebuilt:", errors.Is(err, auditlog.ErrInvalidProof))
	// Output:
	// grown: <nil>
	// rebuilt: true
}

// An auditor with a copy of every entry recomputes the whole log.
func ExampleCheckLog() {
	entries := [][]byte{[]byte("acct-1 placed in fra1"), []byte("acct-2 placed in dub1"), []byte("acct-1 moved to ams1")}
	var stored auditlog.MemoryHashes
	if _, err := stored.Append(entries...); err != nil {
		log.Fatal(err)
	}
	kept, _ := auditlog.NewCheckpoint("example.com/domicile", 2, &stored)

	head, err := auditlog.CheckLog(kept, auditlog.Entries(entries), &stored)
	fmt.Println(head.Size, err)

	entries[1] = []byte("acct-2 placed in fra1") // rewritten in place
	_, err = auditlog.CheckLog(kept, auditlog.Entries(entries), &stored)
	fmt.Println(err)
	// Output:
	// 3 <nil>
	// auditlog: entry 1: entry does not match its stored hashes
}
