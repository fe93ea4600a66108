package provider

import (
	"maps"
	"slices"
)

// Kind says what a sub-processor does with service data.
type Kind string

// The kinds of sub-processor.
const (
	// Host runs a data center that stores the account's data.
	Host Kind = "host"
	// ServiceProcessor processes service data to provide the service.
	ServiceProcessor Kind = "service"
	// Subcontractor delivers part of the service under contract.
	Subcontractor Kind = "subcontractor"
)

// SubProcessor is a third party that may process a customer's service data.
type SubProcessor struct {
	// Name is the legal entity name, such as "Twilio, Inc.".
	Name string
	Kind Kind
	// Purpose says what the sub-processor does, in a sentence.
	Purpose string
	// RequiresConsent is true for sub-processors that may reach an account's
	// data only with the customer's prior consent.
	RequiresConsent bool
	// Provider and DataCenters are set for hosts: the data centers of the
	// catalog that the host runs, ordered by ID.
	Provider    Provider
	DataCenters []string
}

var otherSubProcessors = []SubProcessor{
	{Name: "Quality Unit, LLC", Kind: ServiceProcessor, Purpose: "member entity of the provider's group; provides the service"},
	{Name: "Quality Unit Ukraine", Kind: Subcontractor, Purpose: "subcontractor delivering the service"},
	{Name: "Twilio, Inc.", Kind: ServiceProcessor, Purpose: "VoIP (voice over IP) transport"},
	{Name: "24/7 support subcontractors", Kind: Subcontractor, Purpose: "round-the-clock customer support", RequiresConsent: true},
}

// OtherSubProcessors returns the sub-processors that are not hosts: the
// provider's group entity, its subcontractors, and Twilio for VoIP. The 24/7
// support subcontractors among them need the customer's prior consent.
func OtherSubProcessors() []SubProcessor { return slices.Clone(otherSubProcessors) }

var obligations = []string{
	"process personal data only on the data controller's documented instructions",
	"use only trusted, contractually bound staff",
	"train staff regularly in security and data protection",
	"keep appropriate technical and organisational measures",
	"report any actual or suspected breach at once",
	"cooperate on requests from controllers, data subjects and authorities",
}

// Obligations returns what every sub-processor is bound to.
func Obligations() []string { return slices.Clone(obligations) }

// SubProcessors returns every sub-processor: one host per provider of the
// catalog, with its data centers, ordered by provider; then
// [OtherSubProcessors].
func (c *Catalog) SubProcessors() []SubProcessor {
	return c.subProcessors(func(DataCenter) bool { return true }, true)
}

// SubProcessorsFor returns the sub-processors that may touch the data of an
// account kept in the given data centers (its data center, its backup, the
// target of a move): the hosts of those data centers, and the other
// sub-processors, the ones that need consent only when supportConsent is
// true. Unknown data center IDs are ignored.
func (c *Catalog) SubProcessorsFor(dataCenters []string, supportConsent bool) []SubProcessor {
	return c.subProcessors(func(d DataCenter) bool { return slices.Contains(dataCenters, d.ID) }, supportConsent)
}

func (c *Catalog) subProcessors(keep func(DataCenter) bool, consent bool) []SubProcessor {
	var out []SubProcessor
	for _, p := range slices.Sorted(maps.Keys(legalNames)) {
		host := SubProcessor{Name: p.LegalName(), Kind: Host, Purpose: "hosts service data in its data centers", Provider: p}
		for _, d := range c.dcs {
			if d.Provider == p && keep(d) {
				host.DataCenters = append(host.DataCenters, d.ID)
			}
		}
		if len(host.DataCenters) > 0 {
			out = append(out, host)
		}
	}
	for _, s := range otherSubProcessors {
		if !s.RequiresConsent || consent {
			out = append(out, s)
		}
	}
	return out
}
