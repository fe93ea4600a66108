package provider_test

import (
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
)

func TestDefaultSubProcessors(t *testing.T) {
	c := provider.DefaultCatalog()
	ua := []region.Country{region.MustParseCountry("UA")}
	sg, ie, sk, us := region.MustParseCountry("SG"), region.MustParseCountry("IE"), region.MustParseCountry("SK"), region.MustParseCountry("US")
	const hosts = "hosts service data in its data centers"
	want := []provider.SubProcessor{
		{ID: "aws", Name: "Amazon Web Services, LLC", Kind: provider.Host, Purpose: hosts, Data: "service data",
			Countries: []region.Country{ie, sg, us}, Regions: region.SetOf(region.US, region.EU, region.APAC),
			Provider: provider.AWS, DataCenters: []string{"aws-ap-southeast-1", "aws-eu-west-1", "aws-us-west-1"}},
		{ID: "linode", Name: "Linode, LLC", Kind: provider.Host, Purpose: hosts, Data: "service data",
			Countries: []region.Country{sg}, Regions: region.AllRegions,
			Provider: provider.Linode, DataCenters: []string{"linode-eu", "linode-sg", "linode-uk", "linode-us"}},
		{ID: "websupport", Name: "Websupport, s.r.o.", Kind: provider.Host, Purpose: hosts, Data: "service data",
			Countries: []region.Country{sk}, Regions: region.SetOf(region.EU),
			Provider: provider.Websupport, DataCenters: []string{"websupport-eu"}},
		{ID: "quality-unit-llc", Name: "Quality Unit, LLC", Kind: provider.ServiceProcessor,
			Purpose: "member entity of the provider's group; provides the service", Data: "service data", Regions: region.AllRegions},
		{ID: "quality-unit-ukraine", Name: "Quality Unit Ukraine", Kind: provider.Subcontractor,
			Purpose: "subcontractor delivering the service", Data: "service data", Countries: ua, Regions: region.AllRegions},
		{ID: "twilio", Name: "Twilio, Inc.", Kind: provider.ServiceProcessor,
			Purpose: "VoIP (voice over IP) transport", Data: "service data", Regions: region.AllRegions},
		{ID: "support-247", Name: "24/7 support subcontractors", Kind: provider.Subcontractor,
			Purpose: "round-the-clock customer support", Data: "service data", Regions: region.AllRegions, RequiresConsent: true},
	}
	if diff := cmp.Diff(want, c.SubProcessors()); diff != "" {
		t.Errorf("SubProcessors() mismatch (-want +got):\n%s", diff)
	}
	for _, w := range want {
		got, ok := c.SubProcessor(w.ID)
		if diff := cmp.Diff(w, got); !ok || diff != "" {
			t.Errorf("SubProcessor(%s) = %v; mismatch (-want +got):\n%s", w.ID, ok, diff)
		}
	}
	if _, ok := c.SubProcessor("linode-eu"); ok {
		t.Error("SubProcessor(linode-eu): a data center ID found a sub-processor")
	}
	if len(provider.Obligations()) != 6 {
		t.Errorf("Obligations() = %q", provider.Obligations())
	}
}

func TestCatalogHost(t *testing.T) {
	c := provider.DefaultCatalog()
	// An EU account on linode-eu with a move open to aws-eu-west-1.
	got, ok := c.Host(provider.Linode, "linode-eu", "aws-eu-west-1")
	want := provider.SubProcessor{ID: "linode", Name: "Linode, LLC", Kind: provider.Host, Purpose: "hosts service data in its data centers",
		Data: "service data", Regions: region.SetOf(region.EU), Provider: provider.Linode, DataCenters: []string{"linode-eu"}}
	if diff := cmp.Diff(want, got); !ok || diff != "" {
		t.Errorf("Host(linode) = %v; mismatch (-want +got):\n%s", ok, diff)
	}
	if _, ok := c.Host(provider.Websupport, "linode-eu", "aws-eu-west-1"); ok {
		t.Error("Host(websupport) found a host for data centers it does not run")
	}
	if _, ok := c.Host("twilio", "linode-eu"); ok {
		t.Error("Host(twilio) found a host")
	}
}

func TestOutsideRegion(t *testing.T) {
	s := provider.SubProcessor{Countries: []region.Country{region.MustParseCountry("UA"), region.MustParseCountry("NO"), region.MustParseCountry("US")}}
	tests := []struct {
		r    region.Region
		want []region.Country
	}{
		{region.EU, []region.Country{region.MustParseCountry("UA"), region.MustParseCountry("US")}},
		{region.US, []region.Country{region.MustParseCountry("UA"), region.MustParseCountry("NO")}},
		{region.UK, s.Countries},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, s.OutsideRegion(tt.r)); diff != "" {
			t.Errorf("OutsideRegion(%s) mismatch (-want +got):\n%s", tt.r, diff)
		}
	}
	if got := (provider.SubProcessor{}).OutsideRegion(region.EU); got != nil {
		t.Errorf("OutsideRegion with no countries = %v, want nil", got)
	}
}

func TestDisclosure(t *testing.T) {
	c, err := provider.LoadCatalog(strings.NewReader(hetznerCatalog))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID          string
		DataCenters []string
		Regions     region.Set
	}
	rows := func(d provider.Disclosure) (dcs []string, subs []row) {
		for _, dc := range d.DataCenters {
			dcs = append(dcs, dc.ID)
		}
		for _, s := range d.SubProcessors {
			subs = append(subs, row{s.ID, s.DataCenters, s.Regions})
		}
		return dcs, subs
	}
	all, euUK := region.AllRegions, region.SetOf(region.EU, region.UK)
	tests := []struct {
		r    region.Region
		dcs  []string
		subs []row
	}{
		{region.EU, []string{"hetzner-fsn1", "linode-eu"}, []row{
			{"hetzner", []string{"hetzner-fsn1"}, region.SetOf(region.EU)},
			{"linode", []string{"linode-eu"}, region.SetOf(region.EU)},
			{"qu-ua", nil, euUK}, {"night-desk", nil, all}}},
		{region.UK, nil, []row{{"qu-ua", nil, euUK}, {"night-desk", nil, all}}},
		{region.APAC, []string{"aws-me-central-1"}, []row{
			{"aws", []string{"aws-me-central-1"}, region.SetOf(region.APAC)}, {"night-desk", nil, all}}},
	}
	for _, tt := range tests {
		d := c.Disclosure(tt.r)
		dcs, subs := rows(d)
		if diff := cmp.Diff(tt.dcs, dcs); diff != "" {
			t.Errorf("Disclosure(%s) data centers mismatch (-want +got):\n%s", tt.r, diff)
		}
		if diff := cmp.Diff(tt.subs, subs); diff != "" {
			t.Errorf("Disclosure(%s) sub-processors mismatch (-want +got):\n%s", tt.r, diff)
		}
		if d.Region != tt.r || len(d.Obligations) != 6 {
			t.Errorf("Disclosure(%s) = region %s, %d obligations", tt.r, d.Region, len(d.Obligations))
		}
	}
}

func TestChanges(t *testing.T) {
	old := provider.DefaultCatalog()
	ct := old.Contents()
	feb := time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	ct.SubProcessors[1].Countries = append(ct.SubProcessors[1].Countries, region.MustParseCountry("PL")) // quality-unit-ukraine
	ct.SubProcessors[1].Effective = feb
	ct.SubProcessors[2].Regions = region.SetOf(region.US) // twilio leaves EU
	ct.SubProcessors = append(ct.SubProcessors, provider.SubProcessor{ID: "night-desk", Name: "Night Desk Ltd", Kind: provider.Subcontractor, Effective: feb})
	ct.DataCenters[0].Status = provider.Draining // aws-ap-southeast-1: not disclosed
	ct.DataCenters[0].Weight = 5
	for i := range ct.DataCenters {
		if ct.DataCenters[i].ID == "websupport-eu" {
			ct.DataCenters[i].Certifications = []provider.Certification{provider.ISO27001}
		}
	}
	next, err := provider.NewCatalogFrom(ct)
	if err != nil {
		t.Fatal(err)
	}
	want := map[region.Region][]provider.Change{
		region.EU: {
			{Kind: provider.Changed, Entry: "datacenter", ID: "websupport-eu", Name: "EU (Slovakia)",
				Fields: []provider.FieldChange{{Field: "certifications", New: "ISO 27001"}}},
			{Kind: provider.Added, Entry: "subprocessor", ID: "night-desk", Name: "Night Desk Ltd", Effective: feb},
			{Kind: provider.Changed, Entry: "subprocessor", ID: "quality-unit-ukraine", Name: "Quality Unit Ukraine", Effective: feb,
				Fields: []provider.FieldChange{{Field: "countries", Old: "UA", New: "UA, PL"}, {Field: "effective", New: "2027-02-01"}}},
			{Kind: provider.Removed, Entry: "subprocessor", ID: "twilio", Name: "Twilio, Inc."},
		},
		region.US: {
			{Kind: provider.Added, Entry: "subprocessor", ID: "night-desk", Name: "Night Desk Ltd", Effective: feb},
			{Kind: provider.Changed, Entry: "subprocessor", ID: "quality-unit-ukraine", Name: "Quality Unit Ukraine", Effective: feb,
				Fields: []provider.FieldChange{{Field: "countries", Old: "UA", New: "UA, PL"}, {Field: "effective", New: "2027-02-01"}}},
			{Kind: provider.Changed, Entry: "subprocessor", ID: "twilio", Name: "Twilio, Inc.",
				Fields: []provider.FieldChange{{Field: "regions", Old: "US, EU, UK, APAC", New: "US"}}},
		},
	}
	for r, w := range want {
		if diff := cmp.Diff(w, provider.Changes(old, next, r)); diff != "" {
			t.Errorf("Changes(%s) mismatch (-want +got):\n%s", r, diff)
		}
	}
	// A host that gains a data center changes when the data center takes
	// effect.
	ct = old.Contents()
	ct.DataCenters = append(ct.DataCenters, provider.DataCenter{ID: "aws-me-central-1", Provider: provider.AWS,
		Region: region.APAC, Country: region.MustParseCountry("AE"), Effective: feb})
	if next, err = provider.NewCatalogFrom(ct); err != nil {
		t.Fatal(err)
	}
	wantAPAC := []provider.Change{
		{Kind: provider.Added, Entry: "datacenter", ID: "aws-me-central-1", Name: "AE", Effective: feb},
		{Kind: provider.Changed, Entry: "subprocessor", ID: "aws", Name: "Amazon Web Services, LLC", Effective: feb,
			Fields: []provider.FieldChange{{Field: "countries", Old: "SG", New: "AE, SG"},
				{Field: "datacenters", Old: "aws-ap-southeast-1", New: "aws-ap-southeast-1, aws-me-central-1"}}},
	}
	if diff := cmp.Diff(wantAPAC, provider.Changes(old, next, region.APAC)); diff != "" {
		t.Errorf("Changes(APAC) with a new data center mismatch (-want +got):\n%s", diff)
	}
	if got := provider.Changes(old, next, region.US); got != nil {
		t.Errorf("Changes(US) with a new APAC data center = %v, want none", got)
	}
	if got := provider.Changes(old, provider.DefaultCatalog(), region.APAC); got != nil {
		t.Errorf("Changes of an unchanged catalog = %v, want none", got)
	}
}
