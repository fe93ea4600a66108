package residency_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

func TestImport(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "import.db")
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	place(t, r, "existing", "FR")
	existing, _ := r.Lookup("existing")
	before := snapshot(t, r)

	rows := []residency.ImportRow{
		{AccountID: "de-1", Country: "DE"},                                          // 1: placed by hash
		{AccountID: "de-2", Country: "DEU", DataCenter: "websupport-eu"},            // 2: where it lives today
		{AccountID: "gb-1", Country: "GB", DataCenter: "linode-uk"},                 // 3
		{AccountID: "choice", Country: "US", Region: region.APAC},                   // 4: the customer's choice
		{AccountID: "", Country: "DE"},                                              // 5: invalid account
		{AccountID: "bad-country", Country: "EU"},                                   // 6
		{AccountID: "bad-dc", Country: "DE", DataCenter: "mars-1"},                  // 7
		{AccountID: "wrong-region", Country: "DE", DataCenter: "linode-us"},         // 8: data outside its region
		{AccountID: "existing", Country: "FR"},                                      // 9: already placed, same region
		{AccountID: "existing", Country: "US"},                                      // 10: conflicts
		{AccountID: "existing", Country: "FR", DataCenter: otherDC(t, r, existing)}, // 11: conflicts
		{AccountID: "de-1", Country: "AT"},                                          // 12: imported above, same region
	}
	res, err := r.Import(ctx, slices.Values(rows))
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 4 || res.Existing != 2 {
		t.Errorf("Imported %d, Existing %d; want 4 and 2", res.Imported, res.Existing)
	}
	type refusal struct {
		Row     int
		Account string
		Err     error
	}
	var got []refusal
	for _, e := range res.Refused {
		got = append(got, refusal{e.Row, e.AccountID, e.Err})
	}
	want := []refusal{
		{5, "", residency.ErrInvalidAccount},
		{6, "bad-country", region.ErrInvalidCountry},
		{7, "bad-dc", residency.ErrUnknownDataCenter},
		{8, "wrong-region", residency.ErrCrossRegion},
		{10, "existing", residency.ErrConflict},
		{11, "existing", residency.ErrConflict},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) || errors.Is(b, a) })); diff != "" {
		t.Errorf("refused rows mismatch (-want +got):\n%s", diff)
	}
	if !errors.Is(res.Refused[0], residency.ErrInvalidAccount) || res.Refused[0].Error() == "" {
		t.Errorf("RowError does not unwrap: %v", res.Refused[0])
	}

	// Good rows landed where they said; bad rows changed nothing.
	for id, dc := range map[string]string{"de-2": "websupport-eu", "gb-1": "linode-uk"} {
		if p, err := r.Lookup(id); err != nil || p.DataCenter != dc {
			t.Errorf("Lookup(%s) = %v, %v; want %s", id, p.DataCenter, err, dc)
		}
	}
	if p, _ := r.Lookup("choice"); p.Region != region.APAC || p.Rule != "customer's choice" {
		t.Errorf("choice imported as %+v", p)
	}
	for _, id := range []string{"bad-country", "bad-dc", "wrong-region"} {
		if _, err := r.Lookup(id); !errors.Is(err, residency.ErrNotFound) {
			t.Errorf("refused row %s was placed: %v", id, err)
		}
	}
	if h, _ := r.History(ctx, "existing"); len(h) != 1 {
		t.Errorf("existing account has %d events after the import", len(h))
	}
	if h, _ := r.History(ctx, "de-2"); len(h) != 1 || h[0].Kind != residency.Imported || h[0].To != "websupport-eu" || h[0].Rule != "EU member state" {
		t.Errorf("imported account's trail = %+v", h)
	}

	// All of it is durable.
	after := snapshot(t, r)
	r.Close()
	r, err = residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if diff := cmp.Diff(after, snapshot(t, r)); diff != "" {
		t.Errorf("state after reopen mismatch (-before +after):\n%s", diff)
	}
	if len(after.Placements) != len(before.Placements)+4 {
		t.Errorf("%d accounts after the import, want %d", len(after.Placements), len(before.Placements)+4)
	}
}

func TestImportManyBatches(t *testing.T) {
	ctx := context.Background()
	r, err := residency.Open(ctx, residency.WithPath(filepath.Join(t.TempDir(), "many.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const n = 20000 // more than two batches
	rows := func(yield func(residency.ImportRow) bool) {
		for i := range n {
			row := residency.ImportRow{AccountID: fmt.Sprintf("acct-%06d", i), Country: []string{"DE", "US", "JP", "GB"}[i%4]}
			if i%1000 == 999 {
				row.Country = "XX" // refused
			}
			if !yield(row) {
				return
			}
		}
	}
	res, err := r.Import(ctx, rows)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != n-20 || len(res.Refused) != 20 || res.Refused[19].Row != 20000 {
		t.Errorf("Imported %d, refused %d (last row %d)", res.Imported, len(res.Refused), res.Refused[len(res.Refused)-1].Row)
	}
	if rep, err := r.Verify(ctx); err != nil || !rep.OK() || rep.Accounts != n-20 {
		t.Errorf("Verify = %d accounts, %v, %v", rep.Accounts, rep.Violations, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Import(cancelled, rows); !errors.Is(err, context.Canceled) {
		t.Errorf("Import with a cancelled context: %v", err)
	}
}
