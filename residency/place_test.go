package residency_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

func TestPlaceHomeRegion(t *testing.T) {
	tests := []struct {
		name    string
		req     residency.PlaceRequest
		region  region.Region
		rule    string
		country string
	}{
		{"EU member by alpha-2", residency.PlaceRequest{AccountID: "a1", Country: "de"}, region.EU, "EU member state", "DE"},
		{"EEA by alpha-3", residency.PlaceRequest{AccountID: "a2", Country: "NOR"}, region.EU, "EEA member", "NO"},
		{"UK alias", residency.PlaceRequest{AccountID: "a3", Country: " uk "}, region.UK, "United Kingdom", "GB"},
		{"US territory by number", residency.PlaceRequest{AccountID: "a4", Country: "630"}, region.US, "US territory", "PR"},
		{"APAC", residency.PlaceRequest{AccountID: "a5", Country: "JP"}, region.APAC, "APAC: East Asia", "JP"},
		{"nearest rule", residency.PlaceRequest{AccountID: "a6", Country: "BR"}, region.US, "nearest region: Americas", "BR"},
		{"choice wins over country", residency.PlaceRequest{AccountID: "a7", Country: "US", Region: region.EU}, region.EU, "customer's choice", "US"},
		{"choice without country", residency.PlaceRequest{AccountID: "a8", Region: region.APAC}, region.APAC, "customer's choice", ""},
	}
	r := open(t)
	for _, tt := range tests {
		p, err := r.Place(context.Background(), tt.req)
		if err != nil {
			t.Errorf("%s: Place: %v", tt.name, err)
			continue
		}
		dc, ok := r.Catalog().DataCenter(p.DataCenter)
		if p.Region != tt.region || p.Rule != tt.rule || p.Country.String() != tt.country || !ok || dc.Region != tt.region || dc.Provider != p.Provider {
			t.Errorf("%s: Place = %+v; want region %s, rule %q, country %q, a data center of the region", tt.name, p, tt.region, tt.rule, tt.country)
		}
		if p.Version != 1 || p.Created.IsZero() || !p.Created.Equal(p.Updated) || p.Moving() || p.Transfer != "" {
			t.Errorf("%s: new placement %+v: want version 1, created == updated, no move, no transfer", tt.name, p)
		}
		got, err := r.Lookup(tt.req.AccountID)
		if diff := cmp.Diff(p, got); err != nil || diff != "" {
			t.Errorf("%s: Lookup mismatch (-place +lookup), err %v:\n%s", tt.name, err, diff)
		}
	}
}

func TestPlaceRefuses(t *testing.T) {
	ctx := context.Background()
	r := open(t, residency.WithPolicy(region.StrictPolicy()))
	place(t, r, "existing", "FR")
	before := snapshot(t, r)
	tests := []struct {
		name string
		req  residency.PlaceRequest
		want error
	}{
		{"empty account", residency.PlaceRequest{Country: "DE"}, residency.ErrInvalidAccount},
		{"oversized account", residency.PlaceRequest{AccountID: strings.Repeat("a", 256), Country: "DE"}, residency.ErrInvalidAccount},
		{"invalid UTF-8", residency.PlaceRequest{AccountID: "a\xff", Country: "DE"}, residency.ErrInvalidAccount},
		{"control character", residency.PlaceRequest{AccountID: "a\nb", Country: "DE"}, residency.ErrInvalidAccount},
		{"C1 control character", residency.PlaceRequest{AccountID: "a\u0085", Country: "DE"}, residency.ErrInvalidAccount},
		{"unknown country", residency.PlaceRequest{AccountID: "n1", Country: "EU"}, region.ErrInvalidCountry},
		{"no country, no region", residency.PlaceRequest{AccountID: "n2"}, region.ErrInvalidCountry},
		{"bad country even with a region", residency.PlaceRequest{AccountID: "n3", Country: "Atlantis", Region: region.EU}, region.ErrInvalidCountry},
		{"invalid region", residency.PlaceRequest{AccountID: "n4", Country: "DE", Region: 9}, region.ErrUnknownRegion},
		{"no rule in a strict policy", residency.PlaceRequest{AccountID: "n5", Country: "CH"}, region.ErrNoRegion},
		{"existing account, other region", residency.PlaceRequest{AccountID: "existing", Country: "US"}, residency.ErrConflict},
		{"existing account, other region by choice", residency.PlaceRequest{AccountID: "existing", Region: region.UK}, residency.ErrConflict},
	}
	for _, tt := range tests {
		p, err := r.Place(ctx, tt.req)
		if !errors.Is(err, tt.want) || p != (residency.Placement{}) {
			t.Errorf("%s: Place = %+v, %v; want %v", tt.name, p, err, tt.want)
		}
	}
	unchanged(t, r, before, "refused Place calls")
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "existing", Country: "US"}); err == nil || !strings.Contains(err.Error(), `"existing" lives in EU`) {
		t.Errorf("conflict error %q does not name the account and its region", err)
	}
}

func TestPlaceMaxLengthAccount(t *testing.T) {
	r := open(t)
	id := strings.Repeat("é", 127) + "x" // 255 bytes
	if p := place(t, r, id, "FR"); p.AccountID != id {
		t.Errorf("AccountID = %q", p.AccountID)
	}
}

func TestPlaceIdempotent(t *testing.T) {
	r := open(t)
	first := place(t, r, "acme", "DE")
	for _, req := range []residency.PlaceRequest{
		{AccountID: "acme", Country: "DE"},
		{AccountID: "acme", Country: "FR"},     // another EU country: same region
		{AccountID: "acme", Region: region.EU}, // the same region by choice
		{AccountID: "acme", Country: "GB", Region: region.EU},
	} {
		got, err := r.Place(context.Background(), req)
		if err != nil {
			t.Fatalf("Place(%+v): %v", req, err)
		}
		if diff := cmp.Diff(first, got); diff != "" {
			t.Errorf("Place(%+v) mismatch (-first +again):\n%s", req, diff)
		}
	}
	h, _ := r.History(context.Background(), "acme")
	if len(h) != 1 {
		t.Errorf("repeated Place recorded %d events, want 1", len(h))
	}
}

func TestPlaceNeverLeavesRegion(t *testing.T) {
	// The UK's only data center is draining: UK accounts are refused, not
	// sent to another region.
	cat := mustCatalog(t,
		provider.DataCenter{ID: "linode-uk", Provider: provider.Linode, Region: region.UK, Status: provider.Draining},
		provider.DataCenter{ID: "linode-eu", Provider: provider.Linode, Region: region.EU},
	)
	r := open(t, residency.WithCatalog(cat))
	before := snapshot(t, r)
	_, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: "brit", Country: "GB"})
	if !errors.Is(err, residency.ErrNoDataCenter) || !strings.Contains(err.Error(), "UK") {
		t.Errorf("Place(GB) error = %v; want ErrNoDataCenter naming UK", err)
	}
	_, err = r.Place(context.Background(), residency.PlaceRequest{AccountID: "aussie", Country: "AU"})
	if !errors.Is(err, residency.ErrNoDataCenter) {
		t.Errorf("Place(AU) with no APAC data center: error = %v; want ErrNoDataCenter", err)
	}
	unchanged(t, r, before, "Place without a data center")
	if p := place(t, r, "french", "FR"); p.DataCenter != "linode-eu" || p.Backup != "" {
		t.Errorf("Place(FR) = %s backup %q; want linode-eu without backup", p.DataCenter, p.Backup)
	}
}

func TestPlaceSpreadsByWeight(t *testing.T) {
	cat := mustCatalog(t,
		provider.DataCenter{ID: "eu-1", Provider: provider.Linode, Region: region.EU, Weight: 1},
		provider.DataCenter{ID: "eu-2", Provider: provider.AWS, Region: region.EU, Weight: 2},
		provider.DataCenter{ID: "eu-3", Provider: provider.Websupport, Region: region.EU, Weight: 3},
		provider.DataCenter{ID: "eu-off", Provider: provider.AWS, Region: region.EU, Weight: 50, Status: provider.Offline},
		provider.DataCenter{ID: "eu-drain", Provider: provider.AWS, Region: region.EU, Weight: 50, Status: provider.Draining},
	)
	r := open(t, residency.WithCatalog(cat))
	const n = 30000
	count := map[string]int{}
	for i := range n {
		count[place(t, r, fmt.Sprintf("acct-%d", i), "DE").DataCenter]++
	}
	if count["eu-off"]+count["eu-drain"] != 0 {
		t.Errorf("inactive data centers got accounts: %v", count)
	}
	for id, w := range map[string]float64{"eu-1": 1, "eu-2": 2, "eu-3": 3} {
		share := float64(count[id]) / n
		if want := w / 6; math.Abs(share-want) > 0.015 {
			t.Errorf("%s got %.3f of the accounts, want %.3f ± 0.015 (%v)", id, share, want, count)
		}
	}
}

func TestPlaceDeterministic(t *testing.T) {
	a, b := open(t), open(t)
	for i := range 200 {
		id := fmt.Sprintf("acct-%d", i)
		pa, pb := place(t, a, id, "DE"), place(t, b, id, "DE")
		if pa.DataCenter != pb.DataCenter || pa.Backup != pb.Backup {
			t.Fatalf("%s: %s/%s in one router, %s/%s in another", id, pa.DataCenter, pa.Backup, pb.DataCenter, pb.Backup)
		}
	}
}

func TestPlaceBackup(t *testing.T) {
	r := open(t)
	seenBackup := map[string]bool{}
	for i := range 300 {
		for _, country := range []string{"DE", "US", "SG", "GB"} {
			p := place(t, r, fmt.Sprintf("%s-%d", country, i), country)
			if p.Region == region.UK {
				if p.Backup != "" {
					t.Fatalf("UK account %s has backup %s; the UK has one data center", p.AccountID, p.Backup)
				}
				continue
			}
			b, ok := r.Catalog().DataCenter(p.Backup)
			if !ok || b.Region != p.Region || b.ID == p.DataCenter || b.Provider == p.Provider {
				t.Fatalf("%s on %s (%s): backup %q; want another provider's data center in %s", p.AccountID, p.DataCenter, p.Provider, p.Backup, p.Region)
			}
			seenBackup[b.ID] = true
		}
	}
	// Every data center but the UK's serves as a backup for someone.
	if len(seenBackup) != 7 {
		t.Errorf("backups used: %v; want all 7 non-UK data centers", seenBackup)
	}
}

func TestPlaceConcurrentOneAccount(t *testing.T) {
	r := open(t)
	const n = 64
	results := make([]residency.Placement, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: "shared", Country: "IT"})
			if err != nil {
				t.Error(err)
			}
			results[i] = p
		})
	}
	wg.Wait()
	for i := range results {
		if diff := cmp.Diff(results[0], results[i]); diff != "" {
			t.Fatalf("goroutine %d got another placement (-0 +%d):\n%s", i, i, diff)
		}
	}
	if h, _ := r.History(context.Background(), "shared"); len(h) != 1 {
		t.Errorf("%d events for one account, want 1", len(h))
	}
}

func TestPlaceConcurrentManyAccounts(t *testing.T) {
	r := open(t)
	var wg sync.WaitGroup
	countries := []string{"DE", "US", "GB", "JP", "BR", "ZA"}
	for g := range 8 {
		wg.Go(func() {
			for i := range 250 {
				id := fmt.Sprintf("acct-%d", i) // every goroutine places the same accounts
				c := countries[i%len(countries)]
				p, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: id, Country: c})
				if err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
				if got, err := r.Lookup(id); err != nil || got.DataCenter != p.DataCenter {
					t.Errorf("Lookup(%s) = %v, %v after Place returned %s", id, got.DataCenter, err, p.DataCenter)
					return
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, reg := range region.All() {
		for range r.AccountsInRegion(reg) {
			total++
		}
	}
	if total != 250 {
		t.Errorf("%d accounts recorded, want 250", total)
	}
}

func TestLookup(t *testing.T) {
	r := open(t)
	if _, err := r.Lookup("nobody"); !errors.Is(err, residency.ErrNotFound) || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("Lookup(nobody) error = %v; want ErrNotFound naming the account", err)
	}
	for _, bad := range []string{"", strings.Repeat("x", 256), "\x00", "a\tb"} {
		if _, err := r.Lookup(bad); !errors.Is(err, residency.ErrInvalidAccount) {
			t.Errorf("Lookup(%q) error = %v; want ErrInvalidAccount", bad, err)
		}
	}
}

func TestClose(t *testing.T) {
	r := open(t)
	place(t, r, "a", "DE")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Lookup("a"); !errors.Is(err, residency.ErrClosed) {
		t.Errorf("Lookup after Close: %v", err)
	}
	if _, err := r.Place(context.Background(), residency.PlaceRequest{AccountID: "b", Country: "DE"}); !errors.Is(err, residency.ErrClosed) {
		t.Errorf("Place after Close: %v", err)
	}
	if _, err := r.Verify(context.Background()); !errors.Is(err, residency.ErrClosed) {
		t.Errorf("Verify after Close: %v", err)
	}
}

func TestOpenOptions(t *testing.T) {
	for name, opt := range map[string]residency.Option{
		"nil catalog": residency.WithCatalog(nil),
		"nil policy":  residency.WithPolicy(nil),
		"nil clock":   residency.WithClock(nil),
		// These panicked or were taken (from an adversarial trial).
		"nil Option":                nil,
		"nil store":                 residency.WithStore((*residency.MemoryStore)(nil)),
		"log origin with a newline": residency.WithLogOrigin("a\nb"),
		"log origin with a NUL":     residency.WithLogOrigin("a\x00b"),
		"log origin not UTF-8":      residency.WithLogOrigin("a\xffb"),
	} {
		if r, err := residency.Open(context.Background(), opt); !errors.Is(err, residency.ErrInvalidOption) || r != nil {
			t.Errorf("%s: Open = %v, %v; want ErrInvalidOption", name, r, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := residency.Open(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Open(cancelled) error = %v", err)
	}
	r := open(t)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "a", Country: "DE"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Place(cancelled) error = %v", err)
	}
	if res, err := r.Import(context.Background(), nil); err != nil || res.Imported+res.Existing+len(res.Refused) != 0 {
		t.Errorf("Import of nil rows = %+v, %v; want nothing imported, no error", res, err)
	}
}

// TestLookupAllocatesNothing checks the hot path's promise: a Lookup of an
// existing account allocates nothing, and nor does Ready, which makes
// Lookup's own check.
func TestLookupAllocatesNothing(t *testing.T) {
	r := open(t)
	for i := range 1000 {
		place(t, r, fmt.Sprintf("acct-%d", i), "DE")
	}
	var sink residency.Placement
	if n := testing.AllocsPerRun(1000, func() {
		p, err := r.Lookup("acct-417")
		if err != nil {
			t.Fatal(err)
		}
		sink = p
	}); n != 0 {
		t.Errorf("Lookup allocates %v times per call, want 0", n)
	}
	_ = sink
	if n := testing.AllocsPerRun(1000, func() {
		if err := r.Ready(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Ready allocates %v times per call, want 0", n)
	}
}

// TestScansSeeEveryCommittedRow checks that iterators and Verify see every
// committed change although account rows reach memdb's table in batches
// (write.go): across several batches, with rows changed again while they
// wait; after Close they see nothing.
func TestScansSeeEveryCommittedRow(t *testing.T) {
	ctx := context.Background()
	r := open(t)
	const n = 10_000 // more than two batches of rows
	for i := range n {
		p := place(t, r, fmt.Sprintf("acct-%05d", i), "DE")
		if i%997 == 0 {
			if _, err := r.BeginMove(ctx, p.AccountID, otherDC(t, r, p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(when string) {
		t.Helper()
		seen := 0
		for p := range r.AccountsInRegion(region.EU) {
			seen++
			if want, err := r.Lookup(p.AccountID); err == nil && !cmp.Equal(want, p) {
				t.Fatalf("%s: scan has %+v, Lookup %+v", when, p, want)
			}
		}
		if seen != n {
			t.Errorf("%s: scan saw %d accounts, want %d", when, seen, n)
		}
	}
	check("open")
	if rep, err := r.Verify(ctx); err != nil || !rep.OK() || rep.Accounts != n || rep.Moves != 11 {
		t.Errorf("Verify = %d accounts, %d moves, %v, %v", rep.Accounts, rep.Moves, rep.Violations, err)
	}
	place(t, r, "last", "FR")
	seen := 0
	for range r.AccountsInRegion(region.EU) {
		seen++
	}
	if seen != n+1 {
		t.Errorf("after the last placement the scan saw %d accounts, want %d", seen, n+1)
	}
	// After Close, a scan yields nothing and Err says why.
	r.Close()
	seen = 0
	for range r.AccountsInRegion(region.EU) {
		seen++
	}
	if err := r.Err(); seen != 0 || !errors.Is(err, residency.ErrClosed) {
		t.Errorf("after Close the scan saw %d accounts, Err %v; want 0, ErrClosed", seen, err)
	}
}
