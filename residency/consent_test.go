package residency_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// accessCatalog is a catalog with announced entries: two EU data centers
// (Linode, AWS) usable now, one (Websupport) announced for 30 days after
// start, and a US one; and sub-processors of every kind of access.
func accessCatalog(t testing.TB, start time.Time) *provider.Catalog {
	t.Helper()
	later := start.Add(30 * 24 * time.Hour)
	c, err := provider.NewCatalogFrom(provider.Contents{
		DataCenters: []provider.DataCenter{
			{ID: "eu-a", Provider: provider.Linode, Region: region.EU},
			{ID: "eu-b", Provider: provider.AWS, Region: region.EU},
			{ID: "eu-new", Provider: provider.Websupport, Region: region.EU, Effective: later},
			{ID: "us-a", Provider: provider.Linode, Region: region.US},
		},
		SubProcessors: []provider.SubProcessor{
			{ID: "svc", Name: "Service, Inc.", Kind: provider.ServiceProcessor},
			{ID: "sub-us", Name: "US Subcontractor", Kind: provider.Subcontractor, Regions: region.SetOf(region.US)},
			{ID: "later", Name: "Later, Ltd.", Kind: provider.ServiceProcessor, Effective: later},
			{ID: "gated", Name: "Support", Kind: provider.Subcontractor, RequiresConsent: true},
			{ID: "gated-later", Name: "Support Later", Kind: provider.Subcontractor, RequiresConsent: true, Effective: later},
			{ID: "gated-us", Name: "US Support", Kind: provider.Subcontractor, RequiresConsent: true, Regions: region.SetOf(region.US)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const month = 31 * 24 * time.Hour

// accessRouter opens a Router on accessCatalog with a test clock and
// places "acme" in the EU.
func accessRouter(t testing.TB, opts ...residency.Option) (*residency.Router, *clock, residency.Placement) {
	t.Helper()
	c := newClock()
	r := open(t, append([]residency.Option{residency.WithCatalog(accessCatalog(t, c.Now())), residency.WithClock(c.Now)}, opts...)...)
	return r, c, place(t, r, "acme", "DE")
}

// hostOf returns the provider token of a data center of accessCatalog.
func hostOf(dc string) string {
	return map[string]string{"eu-a": "linode", "eu-b": "aws", "eu-new": "websupport", "us-a": "linode"}[dc]
}

func TestMayAccess(t *testing.T) {
	ctx := context.Background()
	r, clk, p := accessRouter(t)
	if p.DataCenter == "eu-new" || p.Backup == "eu-new" || p.Backup == "" {
		t.Fatalf("acme placed on %s with backup %q: the announced eu-new must not be used, eu-a and eu-b must", p.DataCenter, p.Backup)
	}
	place(t, r, "initech", "US")
	if err := r.GrantAccess(ctx, residency.Consent{AccountID: "acme", SubProcessor: "gated-later", Reference: "C-early"}); err != nil {
		t.Fatalf("a consent before the effective date: %v", err)
	}
	tests := []struct {
		name    string
		account string
		sp      string
		setup   func(t *testing.T)
		want    []error // nil: allowed; else every error the refusal matches
	}{
		{name: "host of the data center", account: "acme", sp: hostOf(p.DataCenter)},
		{name: "host of the backup", account: "acme", sp: hostOf(p.Backup)},
		{name: "host of no data center of the account", account: "acme", sp: "websupport", want: []error{residency.ErrNoAccess}},
		{name: "service processor of every region", account: "acme", sp: "svc"},
		{name: "subcontractor of another region", account: "acme", sp: "sub-us", want: []error{residency.ErrNoAccess}},
		{name: "subcontractor of the home region", account: "initech", sp: "sub-us"},
		{name: "announced service processor", account: "acme", sp: "later", want: []error{residency.ErrNoAccess, residency.ErrNotEffective}},
		{name: "consent-gated without consent", account: "acme", sp: "gated", want: []error{residency.ErrNoAccess, residency.ErrNoConsent}},
		{name: "consent-gated, consent of another account", account: "initech", sp: "gated", want: []error{residency.ErrNoConsent},
			setup: func(t *testing.T) { grant(t, r, "acme", "gated", "C-acme", time.Time{}) }},
		{name: "consent-gated with a live consent", account: "acme", sp: "gated"},
		{name: "consent-gated, consent revoked", account: "acme", sp: "gated", want: []error{residency.ErrNoConsent},
			setup: func(t *testing.T) {
				if err := r.RevokeAccess(ctx, "acme", "C-acme"); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "consent-gated, consent expired", account: "acme", sp: "gated", want: []error{residency.ErrNoConsent},
			setup: func(t *testing.T) {
				grant(t, r, "acme", "gated", "C-short", clk.Now().Add(time.Hour))
				if err := r.MayAccess("acme", "gated"); err != nil {
					t.Fatalf("under the short consent: %v", err)
				}
				clk.Add(time.Hour)
			}},
		{name: "consent-gated of another region, consent or not", account: "acme", sp: "gated-us", want: []error{residency.ErrNoAccess}},
		{name: "consent before the effective date", account: "acme", sp: "gated-later", want: []error{residency.ErrNotEffective}},
		{name: "unknown sub-processor", account: "acme", sp: "nobody", want: []error{provider.ErrUnknownSubProcessor}},
		{name: "unknown account", account: "nobody", sp: "svc", want: []error{residency.ErrNotFound}},
		{name: "invalid account", account: "", sp: "svc", want: []error{residency.ErrInvalidAccount}},
		{name: "announced entries once effective", account: "acme", sp: "later",
			setup: func(t *testing.T) { clk.Add(month) }},
		{name: "consent given early, once effective", account: "acme", sp: "gated-later"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			err := r.MayAccess(tc.account, tc.sp)
			if tc.want == nil && err != nil {
				t.Fatalf("MayAccess(%s, %s) = %v, want nil", tc.account, tc.sp, err)
			}
			if tc.want != nil && err == nil {
				t.Fatalf("MayAccess(%s, %s) = nil, want an error matching %v", tc.account, tc.sp, tc.want)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("MayAccess(%s, %s) = %v, does not match %v", tc.account, tc.sp, err, w)
				}
			}
		})
	}
}

func grant(t testing.TB, r *residency.Router, account, sp, ref string, expires time.Time) {
	t.Helper()
	if err := r.GrantAccess(context.Background(), residency.Consent{AccountID: account, SubProcessor: sp, Reference: ref, ExpiresAt: expires}); err != nil {
		t.Fatalf("GrantAccess(%s, %s, %s): %v", account, sp, ref, err)
	}
}

func object(t testing.TB, r *residency.Router, account, sp, ref string) {
	t.Helper()
	if err := r.Object(context.Background(), residency.Objection{AccountID: account, SubProcessor: sp, Reference: ref}); err != nil {
		t.Fatalf("Object(%s, %s, %s): %v", account, sp, ref, err)
	}
}

// TestMayAccessMove checks that the host of an open move's target may
// access the account's data, and only while the move is open, and that
// an announced data center takes no move.
func TestMayAccessMove(t *testing.T) {
	ctx := context.Background()
	r, clk, p := accessRouter(t)
	_, err := r.BeginMove(ctx, "acme", "eu-new")
	if !errors.Is(err, residency.ErrNoDataCenter) || !errors.Is(err, residency.ErrNotEffective) {
		t.Fatalf("BeginMove to the announced eu-new = %v, want ErrNoDataCenter and ErrNotEffective", err)
	}
	if err := r.MayAccess("acme", "websupport"); !errors.Is(err, residency.ErrNoAccess) {
		t.Fatalf("MayAccess(websupport) before the move = %v, want ErrNoAccess", err)
	}
	clk.Add(month)
	m, err := r.BeginMove(ctx, "acme", "eu-new")
	if err != nil {
		t.Fatalf("BeginMove to eu-new once effective: %v", err)
	}
	for _, sp := range []string{"websupport", hostOf(p.DataCenter), hostOf(p.Backup)} {
		if err := r.MayAccess("acme", sp); err != nil {
			t.Errorf("MayAccess(%s) while moving to eu-new = %v, want nil", sp, err)
		}
	}
	if _, err := r.AbortMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.MayAccess("acme", "websupport"); !errors.Is(err, residency.ErrNoAccess) {
		t.Errorf("MayAccess(websupport) after the move was aborted = %v, want ErrNoAccess", err)
	}
}

// TestAnnouncedDataCenterTakesNoAccounts checks that placements and imports
// avoid a data center before its effective date, and use it after.
func TestAnnouncedDataCenterTakesNoAccounts(t *testing.T) {
	ctx := context.Background()
	r, clk, _ := accessRouter(t)
	count := func(prefix string) map[string]int {
		n := map[string]int{}
		for i := range 300 {
			p := place(t, r, fmt.Sprintf("%s-%d", prefix, i), "FR")
			n[p.DataCenter]++
			n["backup "+p.Backup]++
		}
		return n
	}
	before := count("before")
	if before["eu-new"] != 0 || before["backup eu-new"] != 0 {
		t.Errorf("placements before eu-new's effective date: %v, want none on eu-new", before)
	}
	_, err := r.Import(ctx, func(yield func(residency.ImportRow) bool) {
		yield(residency.ImportRow{AccountID: "imported", Country: "FR", DataCenter: "eu-new"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lookup("imported"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("an import onto the announced eu-new was accepted (Lookup = %v)", err)
	}
	clk.Add(month)
	after := count("after")
	if after["eu-new"] == 0 || after["backup eu-new"] == 0 {
		t.Errorf("placements after eu-new's effective date: %v, want some on eu-new", after)
	}
}

func TestSubProcessors(t *testing.T) {
	ctx := context.Background()
	r, clk, p := accessRouter(t)
	cat := r.Catalog()
	host := func(dc string) provider.SubProcessor {
		sp, ok := cat.Host(provider.Provider(hostOf(dc)), dc)
		if !ok {
			t.Fatalf("no host for %s", dc)
		}
		return sp
	}
	other := func(id string) provider.SubProcessor {
		sp, ok := cat.SubProcessor(id)
		if !ok {
			t.Fatalf("no sub-processor %s", id)
		}
		return sp
	}
	hosts := []provider.SubProcessor{host(p.DataCenter), host(p.Backup)}
	if hosts[0].ID > hosts[1].ID {
		hosts[0], hosts[1] = hosts[1], hosts[0]
	}
	check := func(step string, want ...provider.SubProcessor) {
		t.Helper()
		got, err := r.SubProcessors("acme")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: SubProcessors mismatch (-want +got):\n%s", step, diff)
		}
		for _, sp := range got {
			if err := r.MayAccess("acme", sp.ID); err != nil {
				t.Errorf("%s: SubProcessors lists %s, MayAccess says %v", step, sp.ID, err)
			}
		}
	}
	check("at placement", hosts[0], hosts[1], other("svc"))
	grant(t, r, "acme", "gated", "C-1", time.Time{})
	check("with a consent", hosts[0], hosts[1], other("svc"), other("gated"))
	object(t, r, "acme", "svc", "O-1")
	check("with an objection", hosts[0], hosts[1], other("gated"))
	clk.Add(month)
	check("once effective", hosts[0], hosts[1], other("later"), other("gated"))
	if err := r.WithdrawObjection(ctx, "acme", "O-1"); err != nil {
		t.Fatal(err)
	}
	check("objection withdrawn", hosts[0], hosts[1], other("svc"), other("later"), other("gated"))
	if _, err := r.SubProcessors("nobody"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("SubProcessors(nobody) = %v, want ErrNotFound", err)
	}
}

// TestObjection checks that a standing objection refuses access to a
// sub-processor, consent or not, until withdrawn.
func TestObjection(t *testing.T) {
	ctx := context.Background()
	r, _, _ := accessRouter(t)
	grant(t, r, "acme", "gated", "C-1", time.Time{})
	object(t, r, "acme", "svc", "O-svc")
	object(t, r, "acme", "gated", "O-gated")
	object(t, r, "acme", "svc", "O-svc-2")   // a second objection to the same one
	object(t, r, "acme", "later", "O-later") // announced: the notice period is for this
	for _, sp := range []string{"svc", "gated"} {
		if err := r.MayAccess("acme", sp); !errors.Is(err, residency.ErrObjected) || !errors.Is(err, residency.ErrNoAccess) {
			t.Errorf("MayAccess(%s) under an objection = %v, want ErrObjected", sp, err)
		}
	}
	if err := r.WithdrawObjection(ctx, "acme", "O-svc"); err != nil {
		t.Fatal(err)
	}
	if err := r.MayAccess("acme", "svc"); !errors.Is(err, residency.ErrObjected) {
		t.Errorf("MayAccess(svc) with one of two objections withdrawn = %v, want ErrObjected", err)
	}
	for _, ref := range []string{"O-svc-2", "O-gated", "O-svc"} { // O-svc again: changes nothing
		if err := r.WithdrawObjection(ctx, "acme", ref); err != nil {
			t.Fatal(err)
		}
	}
	for _, sp := range []string{"svc", "gated"} {
		if err := r.MayAccess("acme", sp); err != nil {
			t.Errorf("MayAccess(%s) once the objections are withdrawn = %v, want nil", sp, err)
		}
	}
	got, err := r.Objections("acme")
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, o := range got {
		if o.Live() {
			refs = append(refs, "live "+o.Reference)
		} else {
			refs = append(refs, o.Reference)
		}
	}
	if diff := cmp.Diff([]string{"O-gated", "live O-later", "O-svc", "O-svc-2"}, refs); diff != "" {
		t.Errorf("Objections mismatch (-want +got):\n%s", diff)
	}
}

// TestConsentTrail checks the audit trail and the records of consents and
// objections, and that repeating a grant or a revocation changes nothing.
func TestConsentTrail(t *testing.T) {
	ctx := context.Background()
	r, clk, p := accessRouter(t)
	t0 := clk.Now()
	expires := t0.Add(90 * 24 * time.Hour)
	grant(t, r, "acme", "gated", "TICKET-1", expires)
	grant(t, r, "acme", "gated", "TICKET-1", expires) // the same again: nothing
	clk.Add(time.Minute)
	if err := r.RevokeAccess(ctx, "acme", "TICKET-1"); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeAccess(ctx, "acme", "TICKET-1"); err != nil { // again: nothing
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	object(t, r, "acme", "svc", "LETTER-7")
	object(t, r, "acme", "svc", "LETTER-7")
	clk.Add(time.Minute)
	if err := r.WithdrawObjection(ctx, "acme", "LETTER-7"); err != nil {
		t.Fatal(err)
	}
	h, err := r.History(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	want := []residency.Event{
		{Time: t0, Kind: residency.Placed, AccountID: "acme", To: p.DataCenter, Rule: p.Rule, Version: 1},
		{Time: at(0), Kind: residency.AccessGranted, AccountID: "acme", To: "gated", Reference: "TICKET-1", Version: 2},
		{Time: at(1), Kind: residency.AccessRevoked, AccountID: "acme", To: "gated", Reference: "TICKET-1", Version: 3},
		{Time: at(2), Kind: residency.Objected, AccountID: "acme", To: "svc", Reference: "LETTER-7", Version: 4},
		{Time: at(3), Kind: residency.ObjectionWithdrawn, AccountID: "acme", To: "svc", Reference: "LETTER-7", Version: 5},
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("History mismatch (-want +got):\n%s", diff)
	}
	consents, err := r.Consents("acme")
	if err != nil {
		t.Fatal(err)
	}
	wantConsents := []residency.ConsentRecord{{
		Consent: residency.Consent{AccountID: "acme", SubProcessor: "gated", Reference: "TICKET-1", ExpiresAt: expires},
		Granted: at(0), Revoked: at(1),
	}}
	if diff := cmp.Diff(wantConsents, consents); diff != "" {
		t.Errorf("Consents mismatch (-want +got):\n%s", diff)
	}
	objections, err := r.Objections("acme")
	if err != nil {
		t.Fatal(err)
	}
	wantObjections := []residency.ObjectionRecord{{
		Objection: residency.Objection{AccountID: "acme", SubProcessor: "svc", Reference: "LETTER-7"},
		Raised:    at(2), Withdrawn: at(3),
	}}
	if diff := cmp.Diff(wantObjections, objections); diff != "" {
		t.Errorf("Objections mismatch (-want +got):\n%s", diff)
	}
	if lp, _ := r.Lookup("acme"); lp.Version != 5 {
		t.Errorf("placement version = %d, want 5 (one per change)", lp.Version)
	}
}

// TestAccessBadInput checks that every malformed or impossible consent,
// objection or deletion is refused with a typed error and changes
// nothing: no record, no event, no metric but the refusal.
func TestAccessBadInput(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	r, clk, p := accessRouter(t, residency.WithRegisterer(reg))
	grant(t, r, "acme", "gated", "C-1", time.Time{})
	object(t, r, "acme", "svc", "O-1")
	m, err := r.BeginMove(ctx, "acme", map[string]string{"eu-a": "eu-b", "eu-b": "eu-a"}[p.DataCenter])
	if err != nil {
		t.Fatal(err)
	}
	consent := func(mod func(*residency.Consent)) func() error {
		c := residency.Consent{AccountID: "acme", SubProcessor: "gated", Reference: "C-2"}
		mod(&c)
		return func() error { return r.GrantAccess(ctx, c) }
	}
	objection := func(mod func(*residency.Objection)) func() error {
		o := residency.Objection{AccountID: "acme", SubProcessor: "svc", Reference: "O-2"}
		mod(&o)
		return func() error { return r.Object(ctx, o) }
	}
	tests := []struct {
		name string
		call func() error
		want []error
	}{
		{"consent without a reference", consent(func(c *residency.Consent) { c.Reference = "" }), []error{residency.ErrInvalidConsent}},
		{"consent with a control character in its reference", consent(func(c *residency.Consent) { c.Reference = "C\n2" }), []error{residency.ErrInvalidConsent}},
		{"consent already expired", consent(func(c *residency.Consent) { c.ExpiresAt = clk.Now() }), []error{residency.ErrInvalidConsent}},
		{"consent expiring after the year 9999", consent(func(c *residency.Consent) { c.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), []error{residency.ErrInvalidConsent}},
		{"consent to a sub-processor that needs none", consent(func(c *residency.Consent) { c.SubProcessor = "svc" }), []error{residency.ErrInvalidConsent}},
		{"consent to a host", consent(func(c *residency.Consent) { c.SubProcessor = "linode" }), []error{residency.ErrInvalidConsent}},
		{"consent to an unknown sub-processor", consent(func(c *residency.Consent) { c.SubProcessor = "nobody" }), []error{residency.ErrInvalidConsent, provider.ErrUnknownSubProcessor}},
		{"consent to one that does not serve the home region", consent(func(c *residency.Consent) { c.SubProcessor = "gated-us" }), []error{residency.ErrInvalidConsent}},
		{"consent for an unknown account", consent(func(c *residency.Consent) { c.AccountID = "nobody" }), []error{residency.ErrNotFound}},
		{"consent for an invalid account", consent(func(c *residency.Consent) { c.AccountID = "" }), []error{residency.ErrInvalidAccount}},
		{"consent under a used reference", consent(func(c *residency.Consent) { c.Reference = "C-1"; c.ExpiresAt = clk.Now().Add(time.Hour) }), []error{residency.ErrConflict}},
		{"revoking an unknown reference", func() error { return r.RevokeAccess(ctx, "acme", "C-9") }, []error{residency.ErrNotFound}},
		{"revoking for an unknown account", func() error { return r.RevokeAccess(ctx, "nobody", "C-1") }, []error{residency.ErrNotFound}},
		{"objection without a reference", objection(func(o *residency.Objection) { o.Reference = "" }), []error{residency.ErrInvalidObjection}},
		{"objection to a host", objection(func(o *residency.Objection) { o.SubProcessor = "aws" }), []error{residency.ErrInvalidObjection}},
		{"objection to an unknown sub-processor", objection(func(o *residency.Objection) { o.SubProcessor = "nobody" }), []error{residency.ErrInvalidObjection, provider.ErrUnknownSubProcessor}},
		{"objection for an unknown account", objection(func(o *residency.Objection) { o.AccountID = "nobody" }), []error{residency.ErrNotFound}},
		{"objection under a used reference", objection(func(o *residency.Objection) { o.Reference = "O-1"; o.SubProcessor = "gated" }), []error{residency.ErrConflict}},
		{"withdrawing an unknown reference", func() error { return r.WithdrawObjection(ctx, "acme", "O-9") }, []error{residency.ErrNotFound}},
		{"deleting an unknown account", func() error { return r.Delete(ctx, "nobody", "left") }, []error{residency.ErrNotFound}},
		{"deleting an invalid account", func() error { return r.Delete(ctx, "", "left") }, []error{residency.ErrInvalidAccount}},
		{"deleting without a reason", func() error { return r.Delete(ctx, "acme", "") }, []error{residency.ErrInvalidReason}},
		{"deleting while a move is open", func() error { return r.Delete(ctx, "acme", "left") }, []error{residency.ErrMoveInProgress}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, beforeMetrics := snapshot(t, r), metricValues(t, reg, "domicile_consents_total", "domicile_objections_total", "domicile_deletions_total")
			err := tc.call()
			if err == nil {
				t.Fatalf("got nil, want an error matching %v", tc.want)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, does not match %v", err, w)
				}
			}
			if diff := cmp.Diff(before, snapshot(t, r)); diff != "" {
				t.Errorf("the refused call changed the state (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(beforeMetrics, metricValues(t, reg, "domicile_consents_total", "domicile_objections_total", "domicile_deletions_total")); diff != "" {
				t.Errorf("the refused call changed the metrics (-before +after):\n%s", diff)
			}
		})
	}
	if _, err := r.AbortMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
}

// metricValues returns the values of the named metrics' series, by name
// and labels.
func metricValues(t testing.TB, reg prometheus.Gatherer, names ...string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	for _, f := range families {
		if !want[f.GetName()] {
			continue
		}
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += fmt.Sprintf(" %s=%s", l.GetName(), l.GetValue())
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestConsentMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	r, _, p := accessRouter(t, residency.WithRegisterer(reg))
	grant(t, r, "acme", "gated", "C-1", time.Time{})
	grant(t, r, "acme", "gated", "C-1", time.Time{}) // repeated: not counted
	if err := r.RevokeAccess(ctx, "acme", "C-1"); err != nil {
		t.Fatal(err)
	}
	object(t, r, "acme", "svc", "O-1")
	r.MayAccess("acme", hostOf(p.DataCenter)) // allowed
	r.MayAccess("acme", "svc")                // objected
	r.MayAccess("acme", "gated")              // no consent
	r.MayAccess("acme", "later")              // not effective
	r.MayAccess("acme", "sub-us")             // refused
	r.MayAccess("acme", "nobody")             // unknown
	r.MayAccess("nobody", "svc")              // not found
	grant(t, r, "acme", "gated", "C-2", time.Time{})
	if err := r.Delete(ctx, "acme", "trial expired"); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"domicile_consents_total action=granted":                            2,
		"domicile_consents_total action=revoked":                            2, // C-1, and C-2 by the deletion
		"domicile_objections_total action=raised":                           1,
		"domicile_objections_total action=withdrawn":                        1, // by the deletion
		"domicile_deletions_total":                                          1,
		"domicile_access_checks_total result=allowed":                       1,
		"domicile_access_checks_total result=objected":                      1,
		"domicile_access_checks_total result=no_consent":                    1,
		"domicile_access_checks_total result=not_effective":                 1,
		"domicile_access_checks_total result=refused":                       1,
		"domicile_access_checks_total result=unknown_subprocessor":          1,
		"domicile_access_checks_total result=not_found":                     1,
		"domicile_accounts datacenter=eu-a provider=linode region=EU":       0,
		"domicile_accounts datacenter=eu-b provider=aws region=EU":          0,
		"domicile_accounts datacenter=eu-new provider=websupport region=EU": 0,
		"domicile_accounts datacenter=us-a provider=linode region=US":       0,
	}
	got := metricValues(t, reg, "domicile_consents_total", "domicile_objections_total", "domicile_deletions_total", "domicile_access_checks_total", "domicile_accounts")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics mismatch (-want +got):\n%s", diff)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) != 0 {
		t.Errorf("GatherAndLint = %v, %v", problems, err)
	}
}

// TestMayAccessAllocatesNothing checks that an allowed access check is a
// memory read without allocation, as Lookup is, metrics included.
func TestMayAccessAllocatesNothing(t *testing.T) {
	r, _, p := accessRouter(t, residency.WithRegisterer(prometheus.NewRegistry()))
	for i := range 1000 {
		place(t, r, fmt.Sprintf("acct-%d", i), "DE")
	}
	grant(t, r, "acme", "gated", "C-1", time.Time{})
	object(t, r, "acme", "later", "O-1")
	for _, sp := range []string{hostOf(p.DataCenter), hostOf(p.Backup), "svc", "gated"} {
		if n := testing.AllocsPerRun(1000, func() {
			if err := r.MayAccess("acme", sp); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("MayAccess(acme, %s) allocates %v times per call, want 0", sp, n)
		}
	}
}

// TestMayAccessConcurrent checks answers while consents come and go from
// another goroutine: each is nil or ErrNoConsent, never anything else, and
// the last answer follows the last write (run with -race).
func TestMayAccessConcurrent(t *testing.T) {
	ctx := context.Background()
	r, _, _ := accessRouter(t)
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(done)
		for i := range 200 {
			ref := fmt.Sprintf("C-%d", i)
			if err := r.GrantAccess(ctx, residency.Consent{AccountID: "acme", SubProcessor: "gated", Reference: ref}); err != nil {
				errs <- err
				return
			}
			if err := r.RevokeAccess(ctx, "acme", ref); err != nil {
				errs <- err
				return
			}
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if err := r.MayAccess("acme", "gated"); err != nil && !errors.Is(err, residency.ErrNoConsent) {
			t.Fatalf("MayAccess while consents change = %v", err)
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if err := r.MayAccess("acme", "gated"); !errors.Is(err, residency.ErrNoConsent) {
		t.Errorf("MayAccess after the last revocation = %v, want ErrNoConsent", err)
	}
	cs, _ := r.Consents("acme")
	if len(cs) != 200 {
		t.Errorf("%d consents recorded, want 200", len(cs))
	}
}

// TestVerifyEffectiveDates checks that Verify counts only effective data
// centers as a region's active ones, and reports an account whose data
// center a new catalog announces for a date ahead.
func TestVerifyEffectiveDates(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	later := clk.Now().Add(month)
	path := filepath.Join(t.TempDir(), "store.db")
	uk := func(effective time.Time) *provider.Catalog {
		return mustCatalog(t,
			provider.DataCenter{ID: "uk-a", Provider: provider.Linode, Region: region.UK, Effective: effective},
			provider.DataCenter{ID: "uk-b", Provider: provider.AWS, Region: region.UK, Effective: later})
	}
	r, err := residency.Open(ctx, residency.WithPath(path), residency.WithCatalog(uk(time.Time{})), residency.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	p := place(t, r, "globex", "GB")
	if p.DataCenter != "uk-a" || p.Backup != "" {
		t.Fatalf("globex placed on %s, backup %q; want uk-a and no backup while uk-b is announced", p.DataCenter, p.Backup)
	}
	rep, err := r.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []residency.Finding{{Region: region.UK, DataCenter: "uk-a", Problem: "region UK has one active data center: 1 accounts have no backup"}}
	if diff := cmp.Diff(want, rep.Warnings); diff != "" || !rep.OK() {
		t.Errorf("Verify with uk-b announced: violations %v, warnings mismatch (-want +got):\n%s", rep.Violations, diff)
	}
	r.Close()

	// A catalog that announces globex's data center for later.
	r, err = residency.Open(ctx, residency.WithPath(path), residency.WithCatalog(uk(later)), residency.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err = r.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Violations) != 1 || rep.Violations[0].AccountID != "globex" || !strings.Contains(rep.Violations[0].Problem, "announced") {
		t.Errorf("Verify with globex's data center announced: violations %v, want one for globex", rep.Violations)
	}
	if err := r.MayAccess("globex", "linode"); !errors.Is(err, residency.ErrNotEffective) {
		t.Errorf("MayAccess of the host of an announced data center = %v, want ErrNotEffective", err)
	}
}

// TestGrantAccessExpiredRetry: granting again, under the same reference
// and with the same content, a consent whose expiry has passed must not
// report success. GrantAccess documents that an expiry must be in the
// future (ErrInvalidConsent); returning nil tells the support tool that
// access was granted while MayAccess keeps refusing it (ErrNoConsent).
func TestGrantAccessExpiredRetry(t *testing.T) {
	ctx := context.Background()
	r, clk, _ := accessRouter(t)
	c := residency.Consent{AccountID: "acme", SubProcessor: "gated", Reference: "C-1", ExpiresAt: clk.Now().Add(time.Hour)}
	if err := r.GrantAccess(ctx, c); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour)
	if err := r.MayAccess("acme", "gated"); !errors.Is(err, residency.ErrNoConsent) {
		t.Fatalf("MayAccess after expiry = %v, want ErrNoConsent", err)
	}
	before := snapshot(t, r)
	err := r.GrantAccess(ctx, c)
	if !errors.Is(err, residency.ErrInvalidConsent) {
		t.Errorf("GrantAccess(the same consent, expired an hour ago) = %v, want ErrInvalidConsent (MayAccess now says %v)", err, r.MayAccess("acme", "gated"))
	}
	unchanged(t, r, before, "GrantAccess of an expired consent")
}

// TestObjectionToWhatBecameAHost: a customer objected to a service
// sub-processor "hetzner"; a later catalog declares Hetzner as a hosting
// provider, so "hetzner" is now a host, and MayAccess ignores objections
// for hosts. The objection still stands (Objections says so), yet the
// account may be moved onto Hetzner and MayAccess lets Hetzner in, and
// nothing tells the operator. Open (without WithUnverifiedState) or
// Verify must say so. LoadCatalog cannot prevent it: the two catalogs are
// each valid.
func TestObjectionToWhatBecameAHost(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "domicile.db")
	before, err := provider.LoadCatalog(strings.NewReader(`{
		"datacenters": [{"id": "linode-eu", "provider": "linode", "region": "EU"}],
		"subprocessors": [{"id": "hetzner", "name": "Hetzner Analytics", "kind": "service"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, residency.WithPath(path), residency.WithCatalog(before))
	place(t, r, "acme", "DE")
	object(t, r, "acme", "hetzner", "LETTER-1")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	after, err := provider.LoadCatalog(strings.NewReader(`{
		"providers": [{"id": "hetzner", "name": "Hetzner Online GmbH"}],
		"datacenters": [{"id": "linode-eu", "provider": "linode", "region": "EU"},
		                {"id": "hetzner-fsn1", "provider": "hetzner", "region": "EU"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err = residency.Open(ctx, residency.WithPath(path), residency.WithCatalog(after))
	if err != nil {
		return // refused: the operator is told
	}
	defer r.Close()
	rep, err := r.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(rep.Violations, rep.Warnings...) {
		if f.AccountID == "acme" && strings.Contains(f.Problem, `objection "LETTER-1" to hetzner stands`) {
			return
		}
	}
	if _, err := r.BeginMove(ctx, "acme", "hetzner-fsn1"); err != nil {
		t.Fatalf("BeginMove: %v", err)
	}
	obj, _ := r.Objections("acme")
	t.Errorf("objection %+v to \"hetzner\" stands, \"hetzner\" is now a host, MayAccess(acme, hetzner) = %v after a move onto it, and neither Open nor Verify (%+v) says anything", obj, r.MayAccess("acme", "hetzner"), rep)
}

// TestReferencesOutliveDeletion pins what the GrantAccess and Object docs
// say: a reference names one consent or objection of the account ID for
// good, also after the account is deleted and placed afresh.
func TestReferencesOutliveDeletion(t *testing.T) {
	ctx := context.Background()
	r, _, _ := accessRouter(t)
	grant(t, r, "acme", "gated", "C-1", time.Time{})
	object(t, r, "acme", "svc", "O-1")
	if err := r.Delete(ctx, "acme", "left"); err != nil {
		t.Fatal(err)
	}
	place(t, r, "acme", "DE")
	before := snapshot(t, r)
	if err := r.GrantAccess(ctx, residency.Consent{AccountID: "acme", SubProcessor: "gated", Reference: "C-1"}); !errors.Is(err, residency.ErrConflict) {
		t.Errorf("GrantAccess under a reference of before the deletion = %v, want ErrConflict", err)
	}
	if err := r.Object(ctx, residency.Objection{AccountID: "acme", SubProcessor: "svc", Reference: "O-1"}); !errors.Is(err, residency.ErrConflict) {
		t.Errorf("Object under a reference of before the deletion = %v, want ErrConflict", err)
	}
	unchanged(t, r, before, "reusing references")
	if err := r.MayAccess("acme", "gated"); !errors.Is(err, residency.ErrNoConsent) {
		t.Errorf("MayAccess(gated) after re-placement = %v, want ErrNoConsent", err)
	}
	if err := r.MayAccess("acme", "svc"); err != nil {
		t.Errorf("MayAccess(svc) after re-placement = %v, want nil", err)
	}
}

// TestGrantAccessAgainAfterMoveOutOfItsRegions: GrantAccess's doc says
// the sub-processor "must ... serve the account's home region ...
// otherwise ErrInvalidConsent", and "Granting the same consent again,
// while it stands, changes nothing". Once a move under a transfer
// agreement has taken the account to a region the sub-processor does not
// serve, the consent no longer lets it in (MayAccess: ErrNoAccess), so
// granting it again must be refused as a new one would be, not answered
// nil.
//
// Before, GrantAccess compared with the stored consent before it checked
// the region, and returned nil: the support tool was told the grant held
// while MayAccess refused (the fault TestGrantAccessExpiredRetry pins for
// expiry: "nil would tell the caller it does").
func TestGrantAccessAgainAfterMoveOutOfItsRegions(t *testing.T) {
	ctx := context.Background()
	cat, err := provider.NewCatalogFrom(provider.Contents{
		DataCenters: []provider.DataCenter{
			{ID: "eu-a", Provider: provider.Linode, Region: region.EU},
			{ID: "us-a", Provider: provider.AWS, Region: region.US},
		},
		SubProcessors: []provider.SubProcessor{
			{ID: "support-eu", Name: "EU Support", Kind: provider.Subcontractor, RequiresConsent: true, Regions: region.SetOf(region.EU)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, residency.WithCatalog(cat))
	place(t, r, "acme", "DE")
	c := residency.Consent{AccountID: "acme", SubProcessor: "support-eu", Reference: "TICKET-1"}
	if err := r.GrantAccess(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "DPA-1"}); err != nil {
		t.Fatal(err)
	}
	m, err := r.BeginMove(ctx, "acme", "us-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.MayAccess("acme", "support-eu"); !errors.Is(err, residency.ErrNoAccess) {
		t.Fatalf("MayAccess(acme, support-eu) in the US = %v, want ErrNoAccess", err)
	}
	err = r.GrantAccess(ctx, c)
	if !errors.Is(err, residency.ErrInvalidConsent) {
		t.Errorf("GrantAccess(the same consent) after the account moved to the US, which support-eu does not serve = %v, want ErrInvalidConsent (MayAccess says %v)", err, r.MayAccess("acme", "support-eu"))
	}
}
