package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/domicile-go/domicile/residency"
	bolt "go.etcd.io/bbolt"
)

// skipTime returns p after the file store's encoding of one time at its
// start: a uvarint n and, unless n is 0, a varint (residency/codec.go).
func skipTime(p []byte) []byte {
	n, k := binary.Uvarint(p)
	p = p[k:]
	if n != 0 {
		_, k = binary.Varint(p)
		p = p[k:]
	}
	return p
}

// skipStr returns p after a string encoded as a uvarint length and bytes.
func skipStr(p []byte) []byte {
	n, k := binary.Uvarint(p)
	return p[k+int(n):]
}

// TestVerifyRefusesRewrittenAccountRecords: verify compares each stored
// account's whole state with the log, not only its placement: a rewritten
// event of its audit trail (what Router.History answers), a consent
// revived after its revocation, an agreement's region, each in the file
// with its checksum made right, is refused (exit 1, naming the account).
// Each rewrite changes what a Router answers.
func TestVerifyRefusesRewrittenAccountRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key, pub := keys(t, dir, "log")
	db := filepath.Join(dir, "domicile.db")
	growFile(t, db, "a") // a-DE: agreement T-a to US, moved to aws-us-west-1
	r, err := residency.Open(ctx, residency.WithPath(db))
	if err != nil {
		t.Fatal(err)
	}
	revokedConsent(t, r)
	c := filepath.Join(dir, "c")
	writeCheckpoint(t, db, key, c)
	wantVerify(t, "honest", 0, db, pub, c, "OK: the log of 10 entries extends the checkpoint of 10")

	tests := []struct {
		name    string
		account string
		rewrite func(tx *bolt.Tx) error
		// effect checks, on the rewritten file, that the Router now
		// answers what the log does not say.
		effect func(r *residency.Router) error
	}{
		{
			name:    "trail event: the move's target rewritten",
			account: "a-DE",
			rewrite: func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("events"))
				found := false
				err := b.ForEach(func(k, v []byte) error {
					if bytes.HasPrefix(k, []byte("a-DE\x00")) && bytes.Contains(v, []byte("move-completed")) {
						found = true
						p := bytes.ReplaceAll(v[:len(v)-4], []byte("aws-us-west-1"), []byte("aws-eu-west-1"))
						return b.Put(bytes.Clone(k), seal('e', k, p))
					}
					return nil
				})
				if err == nil && !found {
					err = errors.New("no move-completed event of a-DE")
				}
				return err
			},
			effect: movedTo("a-DE", "aws-eu-west-1"),
		},
		{
			name:    "consent revoked in the log, live in the file",
			account: "a-FR",
			rewrite: func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("consents"))
				k := []byte("a-FR\x00C-1")
				v := b.Get(k)
				if v == nil {
					return errors.New("no consent C-1 of a-FR")
				}
				p := v[:len(v)-4]
				rest := skipTime(skipTime(skipStr(p))) // sub-processor, expires, granted
				p = append(bytes.Clone(p[:len(p)-len(rest)]), 0)
				return b.Put(k, seal('g', k, p)) // revoked: the zero time
			},
			effect: mayAccess("a-FR", "support-247"),
		},
		{
			name:    "transfer agreement's region rewritten",
			account: "a-DE",
			rewrite: func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("agreements"))
				k := []byte("a-DE\x00T-a")
				v := b.Get(k)
				if v == nil {
					return errors.New("no agreement T-a of a-DE")
				}
				p := bytes.Clone(v[:len(v)-4])
				p[0] = 4 // region APAC, was US
				return b.Put(k, seal('a', k, p))
			},
			effect: agreesTo("a-DE", "APAC"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := tamper(t, db, tt.rewrite)
			// The rewrite is real: the Router reads it as it is.
			r, err := residency.Open(ctx, residency.WithPath(bad))
			if err != nil {
				t.Fatal(err)
			}
			err = tt.effect(r)
			r.Close()
			if err != nil {
				t.Fatalf("the rewrite has no effect: %v", err)
			}
			wantVerify(t, tt.name, 1, bad, pub, c, `"`+tt.account+`"`)
		})
	}
}

// revokedConsent grants a-FR's consent C-1 to support-247, revokes it and
// closes r: a record a rewrite may revive.
func revokedConsent(t *testing.T, r *residency.Router) {
	t.Helper()
	ctx := context.Background()
	if err := r.GrantAccess(ctx, residency.Consent{AccountID: "a-FR", SubProcessor: "support-247", Reference: "C-1"}); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeAccess(ctx, "a-FR", "C-1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// The effects of the rewrites of the tests on both stores: each returns
// nil when a Router on the rewritten store answers what the log does not
// say.

// movedTo: account's history shows a move completed to dc.
func movedTo(account, dc string) func(*residency.Router) error {
	return func(r *residency.Router) error {
		h, err := r.History(context.Background(), account)
		if err != nil {
			return err
		}
		for _, e := range h {
			if e.Kind == residency.MoveCompleted && e.To == dc {
				return nil
			}
		}
		return fmt.Errorf("History does not show a move of %s to %s", account, dc)
	}
}

// mayAccess: sp may access account's data.
func mayAccess(account, sp string) func(*residency.Router) error {
	return func(r *residency.Router) error { return r.MayAccess(account, sp) }
}

// agreesTo: an agreement of account allows a move to region.
func agreesTo(account, region string) func(*residency.Router) error {
	return func(r *residency.Router) error {
		ags, err := r.Agreements(account)
		if err != nil {
			return err
		}
		for _, a := range ags {
			if a.To.String() == region {
				return nil
			}
		}
		return fmt.Errorf("Agreements does not show an agreement of %s to %s", account, region)
	}
}
