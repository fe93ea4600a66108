package residency_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	cat := mustCatalog(t,
		provider.DataCenter{ID: "eu-a", Provider: provider.Linode, Region: region.EU},
		provider.DataCenter{ID: "eu-b", Provider: provider.AWS, Region: region.EU, Status: provider.Draining},
		provider.DataCenter{ID: "eu-c", Provider: provider.Websupport, Region: region.EU},
		provider.DataCenter{ID: "uk", Provider: provider.Linode, Region: region.UK},
	)
	r := open(t, residency.WithCatalog(cat), residency.WithRegisterer(reg))
	a := place(t, r, "a", "DE")
	place(t, r, "b", "GB")
	place(t, r, "c", "GB")
	place(t, r, "c", "GB") // repeated: not a new placement
	r.Place(ctx, residency.PlaceRequest{AccountID: "", Country: "DE"})
	r.Place(ctx, residency.PlaceRequest{AccountID: "d", Country: "EU"})
	r.Place(ctx, residency.PlaceRequest{AccountID: "b", Country: "FR"})
	r.Place(ctx, residency.PlaceRequest{AccountID: "e", Country: "US"}) // no US data center
	r.BeginMove(ctx, "b", "eu-a")
	other := map[string]string{"eu-a": "eu-c", "eu-c": "eu-a"}[a.DataCenter]
	m, err := r.BeginMove(ctx, "a", other)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "b", To: region.EU, Reference: "T"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginMove(ctx, "b", "eu-a"); err != nil {
		t.Fatal(err)
	}

	want := `
# HELP domicile_accounts Accounts living on each data center, at scrape time.
# TYPE domicile_accounts gauge
domicile_accounts{datacenter="eu-a",provider="linode",region="EU"} $eu-a
domicile_accounts{datacenter="eu-b",provider="aws",region="EU"} 0
domicile_accounts{datacenter="eu-c",provider="websupport",region="EU"} $eu-c
domicile_accounts{datacenter="uk",provider="linode",region="UK"} 2
# HELP domicile_moves_open Moves begun and not yet completed or aborted, at scrape time.
# TYPE domicile_moves_open gauge
domicile_moves_open 2
# HELP domicile_moves_total Account moves by outcome (begun, completed, aborted) and scope (in_region, cross_region).
# TYPE domicile_moves_total counter
domicile_moves_total{outcome="aborted",scope="cross_region"} 0
domicile_moves_total{outcome="aborted",scope="in_region"} 0
domicile_moves_total{outcome="begun",scope="cross_region"} 1
domicile_moves_total{outcome="begun",scope="in_region"} 1
domicile_moves_total{outcome="completed",scope="cross_region"} 0
domicile_moves_total{outcome="completed",scope="in_region"} 0
# HELP domicile_refusals_total Calls refused, by reason.
# TYPE domicile_refusals_total counter
domicile_refusals_total{reason="conflict"} 1
domicile_refusals_total{reason="cross_region"} 1
domicile_refusals_total{reason="invalid_account"} 1
domicile_refusals_total{reason="invalid_consent"} 0
domicile_refusals_total{reason="invalid_country"} 1
domicile_refusals_total{reason="invalid_objection"} 0
domicile_refusals_total{reason="invalid_reason"} 0
domicile_refusals_total{reason="invalid_region"} 0
domicile_refusals_total{reason="invalid_transfer"} 0
domicile_refusals_total{reason="move_in_progress"} 0
domicile_refusals_total{reason="no_datacenter"} 1
domicile_refusals_total{reason="no_region"} 0
domicile_refusals_total{reason="not_found"} 0
domicile_refusals_total{reason="other"} 0
domicile_refusals_total{reason="unknown_datacenter"} 0
# HELP domicile_transfer_agreements_total Transfer agreements granted and revoked.
# TYPE domicile_transfer_agreements_total counter
domicile_transfer_agreements_total{action="granted"} 1
domicile_transfer_agreements_total{action="revoked"} 0
`
	want = onA(want, a.DataCenter)
	names := []string{"domicile_accounts", "domicile_moves_open", "domicile_moves_total", "domicile_refusals_total", "domicile_transfer_agreements_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	placements := `
# HELP domicile_placements_total Accounts placed, by home region, data center and provider.
# TYPE domicile_placements_total counter
domicile_placements_total{datacenter="eu-a",provider="linode",region="EU"} $eu-a
domicile_placements_total{datacenter="eu-b",provider="aws",region="EU"} 0
domicile_placements_total{datacenter="eu-c",provider="websupport",region="EU"} $eu-c
domicile_placements_total{datacenter="uk",provider="linode",region="UK"} 2
`
	placements = onA(placements, a.DataCenter)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(placements), "domicile_placements_total"); err != nil {
		t.Error(err)
	}
	if got := accountsOn(t, reg, other); got != 1 {
		t.Errorf("accounts on %s after the move = %v, want 1", other, got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) != 0 {
		t.Errorf("GatherAndLint = %v, %v", problems, err)
	}
	out, _ := reg.Gather()
	for _, mf := range out {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "a" || l.GetValue() == "b" || l.GetValue() == "c" {
					t.Errorf("%s has an account ID as label value: %v", mf.GetName(), m)
				}
			}
		}
	}

	// Close unregisters, so that a new Router can use the same registry.
	r.Close()
	r2, err := residency.Open(ctx, residency.WithCatalog(cat), residency.WithRegisterer(reg))
	if err != nil {
		t.Fatalf("Open on the registry of a closed Router: %v", err)
	}
	defer r2.Close()
	// A second Router on a registry in use is refused.
	if _, err := residency.Open(ctx, residency.WithCatalog(cat), residency.WithRegisterer(reg)); err == nil {
		t.Error("two Routers registered on one registry")
	}
}

// onA fills in the expected counts of eu-a and eu-c: account "a" is on dc,
// one of them, as the placement hash decides.
func onA(exposition, dc string) string {
	count := map[bool]string{true: "1", false: "0"}
	return strings.NewReplacer("$eu-a", count[dc == "eu-a"], "$eu-c", count[dc == "eu-c"]).Replace(exposition)
}

// accountsOn returns the domicile_accounts gauge of one data center.
func accountsOn(t *testing.T, reg *prometheus.Registry, dc string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "domicile_accounts" && l.GetName() == "datacenter" && l.GetValue() == dc {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no domicile_accounts for %s", dc)
	return 0
}

func TestNoMetricsWithoutRegisterer(t *testing.T) {
	r := open(t)
	place(t, r, "a", "DE")
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "domicile_") {
			t.Errorf("%s registered on the default registry", mf.GetName())
		}
	}
}

// TestSecondRouterOnOneRegistry: as WithRegisterer says, a second Router
// on the same registry fails to open with ErrInvalidOption, and so does
// one on the registry wrapped with a label of its own (the metrics' label
// names would differ); one whose metric names get a prefix opens.
func TestSecondRouterOnOneRegistry(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	r, err := residency.Open(ctx, residency.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r2, err := residency.Open(ctx, residency.WithRegisterer(reg)); !errors.Is(err, residency.ErrInvalidOption) {
		if r2 != nil {
			r2.Close()
		}
		t.Fatalf("a second Router on one registry: %v, want ErrInvalidOption", err)
	}
	labelled := prometheus.WrapRegistererWith(prometheus.Labels{"router": "second"}, reg)
	if r2, err := residency.Open(ctx, residency.WithRegisterer(labelled)); !errors.Is(err, residency.ErrInvalidOption) {
		if r2 != nil {
			r2.Close()
		}
		t.Fatalf("a second Router on the registry with a label of its own: %v, want ErrInvalidOption", err)
	}
	r3, err := residency.Open(ctx, residency.WithRegisterer(prometheus.WrapRegistererWithPrefix("second_", reg)))
	if err != nil {
		t.Fatalf("a second Router with a prefix on the registry: %v", err)
	}
	r3.Close()
}

// flakyStore is a MemoryStore whose Apply fails, applying nothing, with
// applyErr while it is set, and whose reads back of accounts fail while
// unreadable is set.
type flakyStore struct {
	*residency.MemoryStore
	applyErr   atomic.Pointer[error]
	unreadable atomic.Bool
}

func (s *flakyStore) Apply(ctx context.Context, cs []residency.Change) error {
	if err := s.applyErr.Load(); err != nil {
		return *err
	}
	return s.MemoryStore.Apply(ctx, cs)
}

func (s *flakyStore) LoadAccounts(ctx context.Context, ids []string, fn func(residency.StoredAccount) error) error {
	if s.unreadable.Load() {
		return errors.New("test: connection refused")
	}
	return s.MemoryStore.LoadAccounts(ctx, ids, fn)
}

// TestWriteErrorsCounted: domicile_write_errors_total counts a write whose
// outcome is unknown (the store failed and could not be read back) as
// unavailable, and one the store says it did not apply as store_failed;
// a write refused for its input is not counted there.
func TestWriteErrorsCounted(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	s := &flakyStore{MemoryStore: residency.NewMemoryStore()}
	r, err := residency.Open(ctx, residency.WithStore(s), residency.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "US"}); !errors.Is(err, residency.ErrConflict) {
		t.Fatalf("Place in another region = %v, want ErrConflict", err)
	}

	reset := errors.New("test: connection reset")
	s.applyErr.Store(&reset)
	s.unreadable.Store(true)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "globex", Country: "DE"}); !errors.Is(err, residency.ErrUnavailable) {
		t.Fatalf("Place, the store failing and unreadable = %v, want ErrUnavailable", err)
	}
	refused := fmt.Errorf("%w: test: permission denied", residency.ErrStoreFailed)
	s.applyErr.Store(&refused)
	s.unreadable.Store(false)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "initech", Country: "DE"}); !errors.Is(err, residency.ErrStoreFailed) {
		t.Fatalf("Place, the store refusing it = %v, want ErrStoreFailed", err)
	}
	const want = `
# HELP domicile_write_errors_total Writes that failed for the store, not for their input: stale (ErrStale: the lease on a shared store ran out), store_failed (ErrStoreFailed: the store refused the change), unavailable (ErrUnavailable: the store out of reach or too slow; the outcome was unknown when the call returned).
# TYPE domicile_write_errors_total counter
domicile_write_errors_total{error="stale"} 0
domicile_write_errors_total{error="store_failed"} 1
domicile_write_errors_total{error="unavailable"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "domicile_write_errors_total"); err != nil {
		t.Error(err)
	}
}
