// Command mkdeleted writes the store file of
// TestOlderDeletionLeavesNoConsentToRevive, kept gzipped as
// residency/testdata/deleted-expired.db.gz: a store of a domicile
// before commit 6603193, whose Delete revoked only the consents and
// transfer agreements live by its clock. It was run once, at commit
// 6f2a2ed, from the repository's root:
//
//	go run ./residency/testdata/mkdeleted /tmp/deleted.db && gzip -9c /tmp/deleted.db > residency/testdata/deleted-expired.db.gz
//
// Run today it would revoke the expired records too, so do not run it
// again. At 2026-11-28 09:00 UTC it places "acme" in Germany and records
// the consent TICKET-1 to support-247 and the transfer agreement DPA-1 to
// the US, both to expire at 10:00; at 11:00 it deletes the account.
package main

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: mkdeleted file")
	}
	ctx := context.Background()
	base := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	now := base
	r, err := residency.Open(ctx, residency.WithPath(os.Args[1]), residency.WithClock(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		log.Fatal(err)
	}
	if err := r.GrantAccess(ctx, residency.Consent{AccountID: "acme", SubProcessor: "support-247", Reference: "TICKET-1", ExpiresAt: base.Add(time.Hour)}); err != nil {
		log.Fatal(err)
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "DPA-1", ExpiresAt: base.Add(time.Hour)}); err != nil {
		log.Fatal(err)
	}
	now = base.Add(2 * time.Hour)
	if err := r.Delete(ctx, "acme", "customer left"); err != nil {
		log.Fatal(err)
	}
	if err := r.Close(); err != nil {
		log.Fatal(err)
	}
}
