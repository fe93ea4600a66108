package provider_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
)

func ExampleCatalog_InRegion() {
	for _, d := range provider.DefaultCatalog().InRegion(region.EU) {
		fmt.Printf("%-14s %-25s %s\n", d.ID, d.Provider.LegalName(), d.Location)
	}
	// Output:
	// aws-eu-west-1  Amazon Web Services, LLC  Ireland
	// linode-eu      Linode, LLC               EU location
	// websupport-eu  Websupport, s.r.o.        EU (Slovakia)
}

func ExampleLoadCatalog() {
	c, err := provider.LoadCatalog(strings.NewReader(`{"datacenters": [
		{"id": "linode-eu", "provider": "linode", "region": "EU", "weight": 2},
		{"id": "aws-eu-west-1", "provider": "aws", "region": "EU", "status": "draining"}]}`))
	if err != nil {
		panic(err)
	}
	for _, d := range c.All() {
		fmt.Println(d.ID, d.Region, d.Weight, d.Status)
	}
	_, err = provider.LoadCatalog(strings.NewReader(`{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "weight": 0}]}`))
	fmt.Println(err)
	// Output:
	// aws-eu-west-1 EU 1 draining
	// linode-eu EU 2 active
	// provider: invalid catalog: data center #1 "x": weight 0 is below 1
}

func ExampleCatalog_SubProcessors() {
	for _, s := range provider.DefaultCatalog().SubProcessors() {
		consent := ""
		if s.RequiresConsent {
			consent = " (prior consent)"
		}
		fmt.Printf("%-20s %-13s %s%s\n", s.ID, s.Kind, s.Name, consent)
	}
	// Output:
	// aws                  host          Amazon Web Services, LLC
	// linode               host          Linode, LLC
	// websupport           host          Websupport, s.r.o.
	// quality-unit-llc     service       Quality Unit, LLC
	// quality-unit-ukraine subcontractor Quality Unit Ukraine
	// twilio               service       Twilio, Inc.
	// support-247          subcontractor 24/7 support subcontractors (prior consent)
}

// A support tool asks whether a sub-processor may open an EU account's
// data now; Scope answers from memory, without allocating.
func ExampleCatalog_Scope() {
	c := provider.DefaultCatalog()
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"twilio", "support-247", "acme-support"} {
		s, err := c.Scope(id)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: kind %s, serves EU %t, effective %t, needs consent %t\n",
			id, s.Kind, s.Serves(region.EU), s.EffectiveAt(now), s.RequiresConsent)
	}
	// Output:
	// twilio: kind service, serves EU true, effective true, needs consent false
	// support-247: kind subcontractor, serves EU true, effective true, needs consent true
	// provider: unknown sub-processor "acme-support"
}

// Next year's catalog adds a provider of its own (Hetzner) with a data
// center in Germany and a consent-gated subcontractor for EU and UK
// accounts, both from 1 February 2027; the change notice for EU customers
// says so.
func ExampleChanges() {
	feb := time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	ct := provider.DefaultCatalog().Contents()
	ct.Providers = append(ct.Providers, provider.HostingProvider{ID: "hetzner", Name: "Hetzner Online GmbH"})
	ct.DataCenters = append(ct.DataCenters, provider.DataCenter{ID: "hetzner-fsn1", Provider: "hetzner",
		Region: region.EU, Country: region.MustParseCountry("DE"), City: "Falkenstein", Effective: feb})
	ct.SubProcessors = append(ct.SubProcessors, provider.SubProcessor{ID: "night-desk", Name: "Night Desk Ltd",
		Kind: provider.Subcontractor, Regions: region.SetOf(region.EU, region.UK), RequiresConsent: true, Effective: feb})
	next, err := provider.NewCatalogFrom(ct)
	if err != nil {
		panic(err)
	}
	for _, ch := range provider.Changes(provider.DefaultCatalog(), next, region.EU) {
		fmt.Printf("%s %s %s (%s) from %s\n", ch.Kind, ch.Entry, ch.ID, ch.Name, ch.Effective.Format("2006-01-02"))
	}
	// Output:
	// added datacenter hetzner-fsn1 (Falkenstein) from 2027-02-01
	// added subprocessor hetzner (Hetzner Online GmbH) from 2027-02-01
	// added subprocessor night-desk (Night Desk Ltd) from 2027-02-01
}

// The page for UK customers: the UK's own data centers and hosts, then the
// other sub-processors that serve the UK.
func ExampleCatalog_Disclosure() {
	d := provider.DefaultCatalog().Disclosure(region.UK)
	for _, dc := range d.DataCenters {
		fmt.Println("data center", dc.ID, dc.Location)
	}
	for _, s := range d.SubProcessors {
		fmt.Println(s.Kind, s.ID, s.DataCenters, "consent:", s.RequiresConsent)
	}
	// Output:
	// data center linode-uk UK location
	// host linode [linode-uk] consent: false
	// service quality-unit-llc [] consent: false
	// subcontractor quality-unit-ukraine [] consent: false
	// service twilio [] consent: false
	// subcontractor support-247 [] consent: true
}
