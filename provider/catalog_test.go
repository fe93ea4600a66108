package provider_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
)

func TestDefaultCatalog(t *testing.T) {
	type row struct {
		ID       string
		Provider provider.Provider
		Legal    string
		Region   region.Region
		Location string
	}
	want := []row{
		{"aws-ap-southeast-1", provider.AWS, "Amazon Web Services, LLC", region.APAC, "Singapore"},
		{"aws-eu-west-1", provider.AWS, "Amazon Web Services, LLC", region.EU, "Ireland"},
		{"aws-us-west-1", provider.AWS, "Amazon Web Services, LLC", region.US, "Northern California"},
		{"linode-eu", provider.Linode, "Linode, LLC", region.EU, "EU location"},
		{"linode-sg", provider.Linode, "Linode, LLC", region.APAC, "Singapore"},
		{"linode-uk", provider.Linode, "Linode, LLC", region.UK, "UK location"},
		{"linode-us", provider.Linode, "Linode, LLC", region.US, "US location"},
		{"websupport-eu", provider.Websupport, "Websupport, s.r.o.", region.EU, "EU (Slovakia)"},
	}
	var got []row
	for _, d := range provider.DefaultCatalog().All() {
		if d.Weight != 1 || !d.Active() {
			t.Errorf("%s: weight %d status %s, want 1 active", d.ID, d.Weight, d.Status)
		}
		got = append(got, row{d.ID, d.Provider, d.Provider.LegalName(), d.Region, d.Location})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DefaultCatalog() mismatch (-want +got):\n%s", diff)
	}
	perRegion := map[region.Region]int{}
	for _, r := range region.All() {
		for _, d := range provider.DefaultCatalog().InRegion(r) {
			if d.Region != r {
				t.Errorf("InRegion(%s) returned %s of %s", r, d.ID, d.Region)
			}
			perRegion[r]++
		}
	}
	if diff := cmp.Diff(map[region.Region]int{region.US: 2, region.EU: 3, region.UK: 1, region.APAC: 2}, perRegion); diff != "" {
		t.Errorf("InRegion counts mismatch (-want +got):\n%s", diff)
	}
}

func TestCatalogReturnsCopies(t *testing.T) {
	c, err := provider.NewCatalog(provider.DataCenter{ID: "a", Provider: provider.AWS, Region: region.EU, Certifications: []provider.Certification{provider.TierIV}})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := c.DataCenter("a")
	d.Certifications[0] = provider.PCIDSS
	d.Weight = 99
	again, _ := c.DataCenter("a")
	if again.Certifications[0] != provider.TierIV || again.Weight != 1 {
		t.Errorf("catalog changed through a returned value: %+v", again)
	}
	if _, ok := c.DataCenter("b"); ok {
		t.Error("DataCenter(b) found an unknown data center")
	}
}

func TestLoadCatalog(t *testing.T) {
	c, err := provider.LoadCatalog(strings.NewReader(`{"datacenters": [{"id": "linode-eu", "provider": "linode", "region": "EU"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.DataCenter{{ID: "linode-eu", Provider: provider.Linode, Region: region.EU, Weight: 1, Status: provider.Active}}
	if diff := cmp.Diff(want, c.All()); diff != "" {
		t.Errorf("smallest catalog mismatch (-want +got):\n%s", diff)
	}

	full := `{"datacenters": [
	  {"id": "aws-eu-west-1", "provider": "aws", "region": "eu", "weight": 3, "status": "draining",
	   "country": "IRL", "city": "Dublin", "location": "Ireland", "certifications": ["ISO 27001", "Tier III+"]},
	  {"id": "linode-uk", "provider": "linode", "region": "UK", "status": "offline", "country": "uk"}
	]}`
	c, err = provider.LoadCatalog(strings.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	want = []provider.DataCenter{
		{ID: "aws-eu-west-1", Provider: provider.AWS, Region: region.EU, Weight: 3, Status: provider.Draining,
			Country: region.MustParseCountry("IE"), City: "Dublin", Location: "Ireland",
			Certifications: []provider.Certification{provider.ISO27001, provider.TierIIIPlus}},
		{ID: "linode-uk", Provider: provider.Linode, Region: region.UK, Weight: 1, Status: provider.Offline, Country: region.MustParseCountry("GB")},
	}
	if diff := cmp.Diff(want, c.All()); diff != "" {
		t.Errorf("full catalog mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadCatalogRefuses(t *testing.T) {
	dc := `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU"}], `
	tests := []struct {
		name, json string
		also       error  // a second error the result must match, if any
		names      string // text the message must contain: the data center
	}{
		{"not JSON", `{`, nil, ""},
		{"empty input", ``, nil, ""},
		{"no data centers", `{"datacenters": []}`, nil, "no data centers"},
		{"unknown top-level field", `{"datacenters": [], "extra": 1}`, nil, "extra"},
		{"unknown field", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "zone": "a"}]}`, nil, "zone"},
		{"trailing data", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU"}]} {}`, nil, "after"},
		{"empty ID", `{"datacenters": [{"id": "", "provider": "aws", "region": "EU"}]}`, nil, "#1"},
		{"bad ID", `{"datacenters": [{"id": "a b", "provider": "aws", "region": "EU"}]}`, nil, `"a b"`},
		{"long ID", `{"datacenters": [{"id": "` + strings.Repeat("x", 65) + `", "provider": "aws", "region": "EU"}]}`, nil, "longer"},
		{"duplicate ID", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU"}, {"id": "x", "provider": "aws", "region": "EU"}]}`, nil, `#2 "x": duplicate`},
		{"unknown region", `{"datacenters": [{"id": "x", "provider": "aws", "region": "Mars"}]}`, region.ErrUnknownRegion, `"x"`},
		{"missing region", `{"datacenters": [{"id": "x", "provider": "aws"}]}`, region.ErrUnknownRegion, `"x"`},
		{"unknown provider", `{"datacenters": [{"id": "x", "provider": "hetzner", "region": "EU"}]}`, nil, `"x": unknown provider "hetzner": declare it`},
		{"malformed provider", `{"datacenters": [{"id": "x", "provider": "AWS", "region": "EU"}]}`, nil, `"x": provider "AWS" is not a token`},
		{"weight zero", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "weight": 0}]}`, nil, `"x": weight 0`},
		{"weight negative", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "weight": -2}]}`, nil, `"x": weight -2`},
		{"weight not integer", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "weight": 1.5}]}`, nil, ""},
		{"unknown status", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "status": "paused"}]}`, nil, `"x": unknown status`},
		{"unknown country", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "country": "EU"}]}`, region.ErrInvalidCountry, `"x"`},
		{"empty certification", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "certifications": [""]}]}`, nil, `"x": certification ""`},
		{"certification twice", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "certifications": ["Tier V", "Tier V"]}]}`, nil, `"x": certification "Tier V" listed twice`},
		{"control character", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "city": "a\nb"}]}`, nil, `"x": city: control character U+000A`},
		{"bad effective", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "effective": "1 Feb 2027"}]}`, nil, `data center #1 "x": effective "1 Feb 2027"`},
		{"effective out of range", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "effective": "2027-02-30"}]}`, nil, `"x": effective`},
		// Providers.
		{"provider without name", `{"providers": [{"id": "hetzner"}], "datacenters": [{"id": "x", "provider": "hetzner", "region": "EU"}]}`, nil, `provider #1 "hetzner": no legal name`},
		{"provider declared twice", `{"providers": [{"id": "hetzner", "name": "H"}, {"id": "hetzner", "name": "H"}], "datacenters": [{"id": "x", "provider": "hetzner", "region": "EU"}]}`, nil, `provider #2 "hetzner": declared twice`},
		{"provider unused", `{"providers": [{"id": "hetzner", "name": "H"}], "datacenters": [{"id": "x", "provider": "aws", "region": "EU"}]}`, nil, `provider #1 "hetzner": hosts no data center`},
		{"provider bad ID", `{"providers": [{"id": "Hetzner", "name": "H"}], "datacenters": [{"id": "x", "provider": "aws", "region": "EU"}]}`, nil, `provider #1 "Hetzner": ID is not`},
		{"provider unknown field", `{"providers": [{"id": "h", "name": "H", "city": "x"}], "datacenters": [{"id": "x", "provider": "h", "region": "EU"}]}`, nil, `city`},
		// Sub-processors.
		{"sub-processor empty ID", dc + `"subprocessors": [{"id": "", "name": "N", "kind": "service"}]}`, nil, `sub-processor #1 "": ID is not`},
		{"sub-processor duplicate", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "service"}, {"id": "a", "name": "N", "kind": "service"}]}`, nil, `sub-processor #2 "a": duplicate ID`},
		{"sub-processor takes a host's ID", dc + `"subprocessors": [{"id": "aws", "name": "N", "kind": "service"}]}`, nil, `sub-processor #1 "aws": duplicate ID`},
		{"sub-processor unknown kind", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "vendor"}]}`, nil, `"a": unknown kind "vendor"`},
		{"sub-processor without kind", dc + `"subprocessors": [{"id": "a", "name": "N"}]}`, nil, `"a": unknown kind ""`},
		{"sub-processor of kind host", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "host"}]}`, nil, `"a": kind "host": hosts are derived`},
		{"sub-processor without name", dc + `"subprocessors": [{"id": "a", "kind": "service"}]}`, nil, `"a": no legal name`},
		{"sub-processor unknown region", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "service", "regions": ["EU", "LATAM"]}]}`, region.ErrUnknownRegion, `sub-processor #1 "a"`},
		{"sub-processor empty regions", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "service", "regions": []}]}`, nil, `"a": "regions" is empty`},
		{"sub-processor region twice", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "service", "regions": ["EU", "eu"]}]}`, nil, `"a": region EU listed twice`},
		{"sub-processor unknown country", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "service", "countries": ["UA", "EU"]}]}`, region.ErrInvalidCountry, `sub-processor #1 "a"`},
		{"sub-processor country twice", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "service", "countries": ["UA", "UKR"]}]}`, nil, `"a": country UA listed twice`},
		{"sub-processor bad effective", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "service", "effective": "soon"}]}`, nil, `"a": effective "soon"`},
		{"sub-processor with data centers", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "service", "datacenters": ["x"]}]}`, nil, `"a": "datacenters" is for hosts only`},
		{"sub-processor unknown field", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "service", "url": "x"}]}`, nil, `url`},
		{"sub-processor consent not bool", dc + `"subprocessors": [{"id": "a", "name": "N", "kind": "service", "consent": "yes"}]}`, nil, `consent`},
	}
	for _, tt := range tests {
		c, err := provider.LoadCatalog(strings.NewReader(tt.json))
		if !errors.Is(err, provider.ErrInvalidCatalog) || c != nil {
			t.Errorf("%s: LoadCatalog() = %v, %v; want ErrInvalidCatalog", tt.name, c, err)
			continue
		}
		if tt.also != nil && !errors.Is(err, tt.also) {
			t.Errorf("%s: error %v does not match %v", tt.name, err, tt.also)
		}
		if !strings.Contains(err.Error(), tt.names) {
			t.Errorf("%s: error %q does not say %q", tt.name, err, tt.names)
		}
	}
	big := `{"datacenters": [` + strings.Repeat(" ", provider.MaxCatalogSize) + `]}`
	if _, err := provider.LoadCatalog(strings.NewReader(big)); !errors.Is(err, provider.ErrInvalidCatalog) {
		t.Errorf("oversized catalog: error = %v, want ErrInvalidCatalog", err)
	}
}

// hetznerCatalog names a provider that is not a default one, an APAC data
// center standing in the UAE, an announced data center and sub-processors
// with every field.
const hetznerCatalog = `{
  "providers": [
    {"id": "hetzner", "name": "Hetzner Online GmbH", "contact": "data-protection@example.test", "data": "service data"},
    {"id": "aws", "name": "Amazon Web Services, LLC", "transfer": "SCCs (placeholder: not from the seed)"}
  ],
  "datacenters": [
    {"id": "hetzner-fsn1", "provider": "hetzner", "region": "EU", "country": "DE", "city": "Falkenstein", "certifications": ["ISO 27001"]},
    {"id": "aws-me-central-1", "provider": "aws", "region": "APAC", "country": "AE", "effective": "2027-02-01"},
    {"id": "linode-eu", "provider": "linode", "region": "EU", "effective": "2026-01-01T12:30:00+02:00"}
  ],
  "subprocessors": [
    {"id": "qu-ua", "name": "Quality Unit Ukraine", "kind": "subcontractor", "purpose": "delivers the service",
     "countries": ["UKR"], "regions": ["eu", "UK"], "effective": "2027-02-01", "transfer": "standard contractual clauses"},
    {"id": "night-desk", "name": "Night Desk Ltd", "kind": "service", "consent": true}
  ]
}`

func TestLoadCatalogProvidersAndSubProcessors(t *testing.T) {
	c, err := provider.LoadCatalog(strings.NewReader(hetznerCatalog))
	if err != nil {
		t.Fatal(err)
	}
	feb := time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	want := provider.Contents{
		Providers: []provider.HostingProvider{
			{ID: provider.AWS, Name: "Amazon Web Services, LLC", Transfer: "SCCs (placeholder: not from the seed)"},
			{ID: "hetzner", Name: "Hetzner Online GmbH", Contact: "data-protection@example.test", Data: "service data"},
			{ID: provider.Linode, Name: "Linode, LLC", Data: "service data"},
		},
		DataCenters: []provider.DataCenter{
			{ID: "aws-me-central-1", Provider: provider.AWS, Region: region.APAC, Weight: 1, Status: provider.Active,
				Country: region.MustParseCountry("AE"), Effective: feb},
			{ID: "hetzner-fsn1", Provider: "hetzner", Region: region.EU, Weight: 1, Status: provider.Active,
				Country: region.MustParseCountry("DE"), City: "Falkenstein", Certifications: []provider.Certification{provider.ISO27001}},
			{ID: "linode-eu", Provider: provider.Linode, Region: region.EU, Weight: 1, Status: provider.Active,
				Effective: time.Date(2026, 1, 1, 10, 30, 0, 0, time.UTC)},
		},
		SubProcessors: []provider.SubProcessor{
			{ID: "qu-ua", Name: "Quality Unit Ukraine", Kind: provider.Subcontractor, Purpose: "delivers the service",
				Countries: []region.Country{region.MustParseCountry("UA")}, Regions: region.SetOf(region.EU, region.UK),
				Effective: feb, Transfer: "standard contractual clauses"},
			{ID: "night-desk", Name: "Night Desk Ltd", Kind: provider.ServiceProcessor, Regions: region.AllRegions, RequiresConsent: true},
		},
	}
	if diff := cmp.Diff(want, c.Contents()); diff != "" {
		t.Errorf("Contents() mismatch (-want +got):\n%s", diff)
	}
	hetzner, ok := c.SubProcessor("hetzner")
	wantHost := provider.SubProcessor{ID: "hetzner", Name: "Hetzner Online GmbH", Kind: provider.Host,
		Purpose: "hosts service data in its data centers", Countries: []region.Country{region.MustParseCountry("DE")},
		Regions: region.SetOf(region.EU), Contact: "data-protection@example.test", Data: "service data",
		Provider: "hetzner", DataCenters: []string{"hetzner-fsn1"}}
	if diff := cmp.Diff(wantHost, hetzner); !ok || diff != "" {
		t.Errorf("SubProcessor(hetzner) = %v; mismatch (-want +got):\n%s", ok, diff)
	}
	var ids []string
	for _, s := range c.SubProcessors() {
		ids = append(ids, s.ID)
	}
	if diff := cmp.Diff([]string{"aws", "hetzner", "linode", "qu-ua", "night-desk"}, ids); diff != "" {
		t.Errorf("SubProcessors() IDs mismatch (-want +got):\n%s", diff)
	}
	// The host's effective date is its earliest data center's.
	if aws, _ := c.SubProcessor("aws"); !aws.Effective.Equal(feb) {
		t.Errorf("aws host effective %v, want %v", aws.Effective, feb)
	}
	if _, ok := c.SubProcessor("websupport"); ok {
		t.Error("SubProcessor(websupport): a default provider without data centers is a host")
	}
}

func TestDataCenterEffectiveAt(t *testing.T) {
	feb := time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		effective time.Time
		at        time.Time
		want      bool
	}{
		{"always", time.Time{}, time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"before", feb, feb.Add(-time.Nanosecond), false},
		{"at", feb, feb, true},
		{"at, other zone", feb, feb.In(time.FixedZone("UTC+2", 7200)), true},
		{"after", feb, feb.AddDate(1, 0, 0), true},
	}
	for _, tt := range tests {
		d := provider.DataCenter{Effective: tt.effective}
		s := provider.SubProcessor{Effective: tt.effective}
		if d.EffectiveAt(tt.at) != tt.want || s.EffectiveAt(tt.at) != tt.want || s.Scope().EffectiveAt(tt.at) != tt.want {
			t.Errorf("%s: EffectiveAt(%v) with effective %v: want %v", tt.name, tt.at, tt.effective, tt.want)
		}
	}
}

func TestCatalogScope(t *testing.T) {
	c := provider.DefaultCatalog()
	tests := []struct {
		id   string
		want provider.Scope
	}{
		{"linode", provider.Scope{Kind: provider.Host, Regions: region.AllRegions}},
		{"websupport", provider.Scope{Kind: provider.Host, Regions: region.SetOf(region.EU)}},
		{"quality-unit-ukraine", provider.Scope{Kind: provider.Subcontractor, Regions: region.AllRegions}},
		{"twilio", provider.Scope{Kind: provider.ServiceProcessor, Regions: region.AllRegions}},
		{"support-247", provider.Scope{Kind: provider.Subcontractor, Regions: region.AllRegions, RequiresConsent: true}},
	}
	for _, tt := range tests {
		got, err := c.Scope(tt.id)
		if err != nil {
			t.Errorf("Scope(%s): %v", tt.id, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Scope(%s) mismatch (-want +got):\n%s", tt.id, diff)
		}
		s, _ := c.SubProcessor(tt.id)
		if s.Scope() != got {
			t.Errorf("Scope(%s) = %v, SubProcessor().Scope() = %v", tt.id, got, s.Scope())
		}
	}
	for _, id := range []string{"", "linode-eu", "Twilio"} {
		if _, err := c.Scope(id); !errors.Is(err, provider.ErrUnknownSubProcessor) || !strings.Contains(err.Error(), fmt.Sprintf("%q", id)) {
			t.Errorf("Scope(%q) error = %v, want ErrUnknownSubProcessor naming the ID", id, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		if s, err := c.Scope("support-247"); err != nil || !s.Serves(region.EU) || !s.EffectiveAt(time.Time{}) {
			panic("unexpected scope")
		}
	}); n != 0 {
		t.Errorf("Scope allocates %v times per call, want 0", n)
	}
}

func BenchmarkCatalogScope(b *testing.B) {
	c := provider.DefaultCatalog()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.Scope("twilio")
		if err != nil || !s.Serves(region.UK) || !s.EffectiveAt(now) {
			b.Fatal("unexpected scope")
		}
	}
}

// TestDefaultCatalogCannotBeChanged shows that what a caller does to the
// default catalog it got, or to any value reachable from it (issue 7),
// cannot change what the next caller gets.
func TestDefaultCatalogCannotBeChanged(t *testing.T) {
	want, err := json.Marshal(provider.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	wantContents := provider.DefaultCatalog().Contents()

	c := provider.DefaultCatalog()
	*c = provider.Catalog{} // overwrite the value the handle points to
	if len(c.All()) != 0 {
		t.Fatalf("zeroed handle still has %d data centers", len(c.All()))
	}
	d := provider.DefaultCatalog()
	all := d.All()
	all[0].ID, all[0].Weight = "changed", 99
	ins := d.InRegion(region.EU)
	ins[0].Certifications = append(ins[0].Certifications, provider.TierIV)
	subs := d.SubProcessors()
	subs[0].DataCenters[0] = "changed"
	subs[len(subs)-1].RequiresConsent = false
	ua, _ := d.SubProcessor("quality-unit-ukraine")
	ua.Countries[0] = region.MustParseCountry("RU")
	ct := d.Contents()
	ct.Providers[0].Name = "changed"
	ct.SubProcessors[1].Countries[0] = region.MustParseCountry("RU")
	ct.DataCenters[0].Region = region.US
	dis := d.Disclosure(region.EU)
	dis.SubProcessors[0].DataCenters[0] = "changed"
	dis.Obligations[0] = "changed"
	provider.Obligations()[0] = "changed"

	got, err := json.Marshal(provider.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("DefaultCatalog changed by a caller:\nwant %s\n got %s", want, got)
	}
	if diff := cmp.Diff(wantContents, provider.DefaultCatalog().Contents()); diff != "" {
		t.Errorf("DefaultCatalog().Contents() changed by a caller (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantContents, d.Contents()); diff != "" {
		t.Errorf("a handle's catalog changed through values it returned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(provider.DefaultCatalog().Disclosure(region.EU), d.Disclosure(region.EU)); diff != "" {
		t.Errorf("Disclosure changed by a caller (-want +got):\n%s", diff)
	}
}

// roundTrip writes c as JSON and loads it again, and fails unless the
// result is an equal catalog.
func roundTrip(t testing.TB, c *provider.Catalog) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	again, err := provider.LoadCatalog(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("reloading %s: %v", b, err)
	}
	if diff := cmp.Diff(c.Contents(), again.Contents()); diff != "" {
		t.Fatalf("round trip mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(c.SubProcessors(), again.SubProcessors()); diff != "" {
		t.Fatalf("round trip sub-processors mismatch (-want +got):\n%s", diff)
	}
	b2, err := json.Marshal(again)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("second MarshalJSON differs: %v\n%s\n%s", err, b, b2)
	}
	built, err := provider.NewCatalogFrom(c.Contents())
	if err != nil {
		t.Fatalf("NewCatalogFrom(Contents()): %v", err)
	}
	if diff := cmp.Diff(c.SubProcessors(), built.SubProcessors()); diff != "" {
		t.Fatalf("NewCatalogFrom(Contents()) mismatch (-want +got):\n%s", diff)
	}
}

func TestCatalogJSONRoundTrip(t *testing.T) {
	roundTrip(t, provider.DefaultCatalog())
	c, err := provider.LoadCatalog(strings.NewReader(hetznerCatalog))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
	odd, err := provider.NewCatalogFrom(provider.Contents{
		DataCenters: []provider.DataCenter{{ID: "x", Provider: provider.AWS, Region: region.UK,
			Effective: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -3600))}},
		SubProcessors: []provider.SubProcessor{{ID: "y", Name: "Ü | *n*", Kind: provider.ServiceProcessor,
			Effective: time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC)}},
	})
	if err == nil {
		t.Errorf("NewCatalogFrom accepted an effective time past 9999 (in UTC): %v", odd.All())
	}
	odd, err = provider.NewCatalogFrom(provider.Contents{
		DataCenters: []provider.DataCenter{{ID: "x", Provider: provider.AWS, Region: region.UK,
			Effective: time.Date(9999, 12, 31, 22, 59, 59, 999999999, time.FixedZone("", -3600))}},
		SubProcessors: []provider.SubProcessor{{ID: "y", Name: "Ü | *n*", Kind: provider.ServiceProcessor,
			Effective: time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, odd)
}

func FuzzLoadCatalog(f *testing.F) {
	// Seeds: the smallest catalog, a full one, near misses, and catalogs
	// with providers and sub-processors.
	f.Add(`{"datacenters": [{"id": "linode-eu", "provider": "linode", "region": "EU"}]}`)
	f.Add(`{"datacenters": [{"id": "a", "provider": "aws", "region": "us", "weight": 5, "status": "draining", "country": "840", "certifications": ["PCI DSS"]}]}`)
	f.Add(`{"datacenters": [{"id": "a", "provider": "aws", "region": "UK", "weight": 0}]}`)
	f.Add(`{"datacenters": [{"id": "a", "provider": "aws", "region": "EU"}, {"id": "a", "provider": "aws", "region": "EU"}]}`)
	f.Add(`{"datacenters": null}`)
	f.Add(`[]`)
	f.Add(hetznerCatalog)
	f.Add(`{"datacenters": [{"id": "a", "provider": "aws", "region": "EU", "effective": "2027-02-01T00:00:00.5-01:00"}], "subprocessors": [{"id": "b", "name": "B", "kind": "subcontractor", "regions": ["APAC"], "consent": true, "countries": ["ua", "804"]}]}`)
	f.Add(`{"datacenters": [{"id": "a", "provider": "aws", "region": "EU"}], "subprocessors": [{"id": "aws", "name": "B", "kind": "service"}]}`)
	if b, err := json.Marshal(provider.DefaultCatalog()); err == nil {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := provider.LoadCatalog(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, provider.ErrInvalidCatalog) || c != nil {
				t.Fatalf("LoadCatalog(%q) = %v, %v; want ErrInvalidCatalog", in, c, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, d := range c.All() {
			if d.ID == "" || seen[d.ID] || !d.Region.IsValid() || d.Weight < 1 || !d.Status.IsValid() || !d.Provider.IsValid() {
				t.Fatalf("LoadCatalog(%q) accepted an invalid data center %+v", in, d)
			}
			if _, ok := c.SubProcessor(string(d.Provider)); !ok {
				t.Fatalf("LoadCatalog(%q): no host for data center %+v", in, d)
			}
			seen[d.ID] = true
		}
		seen = map[string]bool{}
		for _, s := range c.SubProcessors() {
			if s.ID == "" || seen[s.ID] || !s.Kind.IsValid() || s.Name == "" || s.Regions == 0 || !s.Regions.IsValid() {
				t.Fatalf("LoadCatalog(%q) accepted an invalid sub-processor %+v", in, s)
			}
			if sc, err := c.Scope(s.ID); err != nil || sc != s.Scope() {
				t.Fatalf("Scope(%q) = %v, %v; want %v", s.ID, sc, err, s.Scope())
			}
			seen[s.ID] = true
		}
		roundTrip(t, c)
	})
}

// TestLoadCatalogRefusesProviderTokenAsSubProcessorID: the package doc
// says a sub-processor may not take a provider's token as ID. Linode, AWS
// and Websupport are providers every catalog knows, whether or not this
// one hosts a data center with them; a sub-processor "aws" accepted here
// becomes a different party the day the catalog gains an AWS data center,
// and an objection a customer raised against it is then silently ignored
// (MayAccess does not consult objections for hosts).
func TestLoadCatalogRefusesProviderTokenAsSubProcessorID(t *testing.T) {
	for _, token := range []provider.Provider{provider.AWS, provider.Websupport} {
		json := `{"datacenters": [{"id": "linode-eu", "provider": "linode", "region": "EU"}],
			"subprocessors": [{"id": "` + string(token) + `", "name": "N", "kind": "service"}]}`
		c, err := provider.LoadCatalog(strings.NewReader(json))
		if !errors.Is(err, provider.ErrInvalidCatalog) {
			t.Errorf("sub-processor with the ID %q of a provider the catalog hosts nothing with: LoadCatalog() = %v, %v; want ErrInvalidCatalog", token, c != nil, err)
		}
	}
}
