package residency_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/residency"
	"golang.org/x/mod/sumdb/note"
)

// A Router signs its log's checkpoints; an auditor keeps one, and later
// checks that the log extends it and that an entry is in it.
func ExampleRouter_SignedCheckpoint() {
	ctx := context.Background()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/domicile")
	if err != nil {
		log.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	r, err := residency.Open(ctx, residency.WithStore(residency.NewMemoryStore()), residency.WithLogSigner(signer))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		log.Fatal(err)
	}
	kept, err := r.SignedCheckpoint(ctx) // the auditor keeps this
	if err != nil {
		log.Fatal(err)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "globex", Country: "US"}); err != nil {
		log.Fatal(err)
	}

	// Later, the auditor, with the public key vkey.
	verifier, _ := note.NewVerifier(vkey)
	older, err := auditlog.OpenCheckpoint(kept, verifier)
	if err != nil {
		log.Fatal(err)
	}
	signed, err := r.SignedCheckpoint(ctx)
	if err != nil {
		log.Fatal(err)
	}
	newer, err := auditlog.OpenCheckpoint(signed, verifier)
	if err != nil {
		log.Fatal(err)
	}
	proof, err := r.ProveExtension(ctx, older.Size, newer.Size)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("extends:", auditlog.CheckExtension(proof, older, newer) == nil)

	// The entry of globex's placement is in the newer checkpoint.
	err = r.LogEntries(ctx, 1, func(i int64, entry []byte) error {
		c, err := residency.DecodeEntry(entry)
		if err != nil {
			return err
		}
		p, err := r.ProveEntry(ctx, i, newer.Size)
		if err != nil {
			return err
		}
		fmt.Println(i, c.Event.Kind, c.Placement.AccountID, "proved:", auditlog.CheckEntry(p, newer, i, entry) == nil)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// extends: true
	// 1 placed globex proved: true
}
