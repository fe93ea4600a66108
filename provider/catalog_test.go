package provider_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

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
		{"unknown provider", `{"datacenters": [{"id": "x", "provider": "hetzner", "region": "EU"}]}`, nil, `"x": unknown provider "hetzner"`},
		{"weight zero", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "weight": 0}]}`, nil, `"x": weight 0`},
		{"weight negative", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "weight": -2}]}`, nil, `"x": weight -2`},
		{"weight not integer", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "weight": 1.5}]}`, nil, ""},
		{"unknown status", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "status": "paused"}]}`, nil, `"x": unknown status`},
		{"unknown country", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "country": "EU"}]}`, region.ErrInvalidCountry, `"x"`},
		{"country outside region", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "country": "US"}]}`, nil, `"x": country US belongs to region US`},
		{"unknown certification", `{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "certifications": ["Tier V"]}]}`, nil, `"x": unknown certification`},
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

func TestCatalogJSONRoundTrip(t *testing.T) {
	b, err := json.Marshal(provider.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	c, err := provider.LoadCatalog(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(provider.DefaultCatalog().All(), c.All()); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}

func FuzzLoadCatalog(f *testing.F) {
	// Seeds: the smallest catalog, a full one, and near misses.
	f.Add(`{"datacenters": [{"id": "linode-eu", "provider": "linode", "region": "EU"}]}`)
	f.Add(`{"datacenters": [{"id": "a", "provider": "aws", "region": "us", "weight": 5, "status": "draining", "country": "840", "certifications": ["PCI DSS"]}]}`)
	f.Add(`{"datacenters": [{"id": "a", "provider": "aws", "region": "UK", "weight": 0}]}`)
	f.Add(`{"datacenters": [{"id": "a", "provider": "aws", "region": "EU"}, {"id": "a", "provider": "aws", "region": "EU"}]}`)
	f.Add(`{"datacenters": null}`)
	f.Add(`[]`)
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
			seen[d.ID] = true
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := provider.LoadCatalog(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("reloading %s: %v", b, err)
		}
		if diff := cmp.Diff(c.All(), again.All()); diff != "" {
			t.Fatalf("round trip mismatch (-want +got):\n%s", diff)
		}
	})
}
