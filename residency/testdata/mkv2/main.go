// Command mkv2 writes the store file of the upgrade test from format
// version 2, kept gzipped as residency/testdata/v2.db.gz. It was run once,
// at commit f3d1834 (the last commit writing format 2), from the
// repository's root:
//
//	go run ./residency/testdata/mkv2 /tmp/v2.db && gzip -9c /tmp/v2.db > residency/testdata/v2.db.gz
//
// Run today it would write the current format, so do not run it again. The
// changes it makes are those of fixtureChanges in residency's
// filestore_test.go, which checks the upgraded file against the same
// changes made on a Router in memory: keep the two in step.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: mkv2 file")
	}
	now := time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC)
	r, err := residency.Open(context.Background(), residency.WithPath(os.Args[1]), residency.WithClock(func() time.Time {
		now = now.Add(time.Second + time.Nanosecond)
		return now
	}))
	if err != nil {
		log.Fatal(err)
	}
	if err := fixtureChanges(r); err != nil {
		log.Fatal(err)
	}
	if err := r.Close(); err != nil {
		log.Fatal(err)
	}
}

func fixtureChanges(r *residency.Router) error {
	ctx := context.Background()
	for i, c := range []string{"DE", "GB", "US", "JP", "FR", "SG", "IT", "CA"} {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprintf("acct-%d", i), Country: c}); err != nil {
			return err
		}
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "chooser", Country: "US", Region: region.APAC}); err != nil {
		return err
	}
	// acct-0 moves to the US under an agreement that expires in 2200.
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acct-0", To: region.US, Reference: "T-0",
		ExpiresAt: time.Date(2200, 1, 2, 3, 4, 5, 6, time.UTC)}); err != nil {
		return err
	}
	m, err := r.BeginMove(ctx, "acct-0", "aws-us-west-1")
	if err != nil {
		return err
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		return err
	}
	// acct-4 has a move left open, acct-6 one aborted, acct-1 an agreement
	// revoked, acct-3 a live one without expiry.
	other := func(id string) string {
		p, _ := r.Lookup(id)
		if p.DataCenter == "websupport-eu" {
			return "aws-eu-west-1"
		}
		return "websupport-eu"
	}
	if _, err := r.BeginMove(ctx, "acct-4", other("acct-4")); err != nil {
		return err
	}
	m, err = r.BeginMove(ctx, "acct-6", other("acct-6"))
	if err != nil {
		return err
	}
	if _, err := r.AbortMove(ctx, m.ID); err != nil {
		return err
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acct-1", To: region.EU, Reference: "T-1"}); err != nil {
		return err
	}
	if err := r.RevokeTransfer(ctx, "acct-1", "T-1"); err != nil {
		return err
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acct-3", To: region.EU, Reference: "T-3"}); err != nil {
		return err
	}
	return r.Drain(ctx, "linode-sg")
}
