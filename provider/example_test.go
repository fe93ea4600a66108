package provider_test

import (
	"fmt"
	"strings"

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

func ExampleCatalog_SubProcessorsFor() {
	for _, s := range provider.DefaultCatalog().SubProcessorsFor([]string{"linode-uk"}, false) {
		fmt.Printf("%-13s %s: %s\n", s.Kind, s.Name, s.Purpose)
	}
	// Output:
	// host          Linode, LLC: hosts service data in its data centers
	// service       Quality Unit, LLC: member entity of the provider's group; provides the service
	// subcontractor Quality Unit Ukraine: subcontractor delivering the service
	// service       Twilio, Inc.: VoIP (voice over IP) transport
}
