package residency_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

func TestDrainAndActivate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "status.db")
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Drain(ctx, "linode-eu"); err != nil {
		t.Fatal(err)
	}
	if err := r.Drain(ctx, "linode-eu"); err != nil {
		t.Errorf("second Drain: %v", err)
	}
	if s, err := r.Status("linode-eu"); err != nil || s != provider.Draining {
		t.Errorf("Status = %v, %v; want draining", s, err)
	}
	for i := range 200 {
		if p := place(t, r, fmt.Sprintf("acct-%d", i), "DE"); p.DataCenter == "linode-eu" || p.Backup == "linode-eu" {
			t.Fatalf("placed on the draining data center: %+v", p)
		}
	}
	if _, err := r.BeginMove(ctx, "acct-0", "linode-eu"); !errors.Is(err, residency.ErrNoDataCenter) {
		t.Errorf("BeginMove to a draining data center: %v; want ErrNoDataCenter", err)
	}
	for _, bad := range []string{"", "mars-1"} {
		if err := r.Drain(ctx, bad); !errors.Is(err, residency.ErrUnknownDataCenter) {
			t.Errorf("Drain(%q) = %v; want ErrUnknownDataCenter", bad, err)
		}
		if _, err := r.Status(bad); !errors.Is(err, residency.ErrUnknownDataCenter) {
			t.Errorf("Status(%q) = %v; want ErrUnknownDataCenter", bad, err)
		}
	}
	r.Close()

	// The status is kept in the store.
	r, err = residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if s, _ := r.Status("linode-eu"); s != provider.Draining {
		t.Errorf("Status after reopen = %v; want draining", s)
	}
	if err := r.Activate(ctx, "linode-eu"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginMove(ctx, "acct-0", "linode-eu"); err != nil {
		t.Errorf("BeginMove to the activated data center: %v", err)
	}
	// Activate overrides the catalog's status too.
	cat := mustCatalog(t,
		provider.DataCenter{ID: "uk-1", Provider: provider.Linode, Region: region.UK, Status: provider.Offline})
	r2 := open(t, residency.WithCatalog(cat))
	if _, err := r2.Place(ctx, residency.PlaceRequest{AccountID: "a", Country: "GB"}); !errors.Is(err, residency.ErrNoDataCenter) {
		t.Fatalf("Place on an offline catalog: %v", err)
	}
	if err := r2.Activate(ctx, "uk-1"); err != nil {
		t.Fatal(err)
	}
	if p := place(t, r2, "a", "GB"); p.DataCenter != "uk-1" {
		t.Errorf("Place after Activate = %s", p.DataCenter)
	}
}

func TestPlanEvacuation(t *testing.T) {
	ctx := context.Background()
	cat := mustCatalog(t,
		provider.DataCenter{ID: "eu-src", Provider: provider.Linode, Region: region.EU, Weight: 100},
		provider.DataCenter{ID: "eu-1", Provider: provider.AWS, Region: region.EU, Weight: 1},
		provider.DataCenter{ID: "eu-3", Provider: provider.Websupport, Region: region.EU, Weight: 3},
		provider.DataCenter{ID: "uk-1", Provider: provider.Linode, Region: region.UK},
	)
	r := open(t, residency.WithCatalog(cat))
	const n = 4000
	var moving string
	for i := range n {
		p := place(t, r, fmt.Sprintf("acct-%d", i), "DE")
		if p.DataCenter == "eu-src" && moving == "" {
			moving = p.AccountID
			if _, err := r.BeginMove(ctx, moving, "eu-1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := snapshot(t, r)
	if err := r.Drain(ctx, "eu-src"); err != nil {
		t.Fatal(err)
	}
	before.Statuses["eu-src"] = provider.Draining
	plan, err := r.PlanEvacuation(ctx, "eu-src")
	if err != nil {
		t.Fatal(err)
	}
	onSrc := len(collect(r.Accounts("eu-src")))
	if len(plan.Moves)+len(plan.Stranded) != onSrc || len(plan.Stranded) != 1 || plan.Stranded[0].AccountID != moving ||
		!errors.Is(plan.Stranded[0].Err, residency.ErrMoveInProgress) {
		t.Fatalf("plan: %d moves, stranded %v; %d accounts on eu-src", len(plan.Moves), plan.Stranded, onSrc)
	}
	to := map[string]int{}
	for _, m := range plan.Moves {
		if m.From != "eu-src" {
			t.Fatalf("planned move %+v", m)
		}
		to[m.To]++
	}
	if share := float64(to["eu-3"]) / float64(len(plan.Moves)); math.Abs(share-0.75) > 0.05 {
		t.Errorf("eu-3 gets %.2f of the moves, want 0.75 by weight (%v)", share, to)
	}
	if len(to) != 2 {
		t.Errorf("targets %v; want eu-1 and eu-3 only", to)
	}
	// Planning changed nothing (Drain changed only the status).
	unchanged(t, r, before, "PlanEvacuation")

	// The UK has nowhere to go: every account stranded, nothing planned.
	for i := range 5 {
		place(t, r, fmt.Sprintf("brit-%d", i), "GB")
	}
	plan, err = r.PlanEvacuation(ctx, "uk-1")
	if err != nil || len(plan.Moves) != 0 || len(plan.Stranded) != 5 || !errors.Is(plan.Stranded[0].Err, residency.ErrNoDataCenter) {
		t.Errorf("UK plan = %+v, %v", plan, err)
	}
	if _, err := r.PlanEvacuation(ctx, "nowhere"); !errors.Is(err, residency.ErrUnknownDataCenter) {
		t.Errorf("PlanEvacuation(nowhere) = %v", err)
	}
}

func TestCreateReportsNew(t *testing.T) {
	ctx := context.Background()
	r := open(t)
	req := residency.PlaceRequest{AccountID: "acme", Country: "DE"}
	p, created, err := r.Create(ctx, req)
	if err != nil || !created {
		t.Fatalf("first Create = %v, %v", created, err)
	}
	again, created, err := r.Create(ctx, req)
	if err != nil || created || again != p {
		t.Errorf("second Create = %+v, %v, %v", again, created, err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"account_id":"acme"`, `"country":"DE"`, `"region":"EU"`, `"datacenter":"` + p.DataCenter + `"`, `"provider":"`, `"version":1`, `"rule":"EU member state"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("placement JSON %s lacks %s", b, field)
		}
	}
	var back residency.Placement
	if err := json.Unmarshal(b, &back); err != nil || back != p {
		t.Errorf("JSON round trip = %+v, %v", back, err)
	}
}
