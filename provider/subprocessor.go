package provider

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/domicile-go/domicile/region"
)

// ErrUnknownSubProcessor is returned for a sub-processor ID a catalog does
// not hold. Messages name the ID.
var ErrUnknownSubProcessor = errors.New("provider: unknown sub-processor")

// Kind says what a sub-processor does with service data.
type Kind string

// The kinds of sub-processor.
const (
	// Host runs data centers that store accounts' data. A catalog derives
	// one host per provider of its data centers; a host's ID is the
	// provider's token.
	Host Kind = "host"
	// ServiceProcessor processes service data to provide the service.
	ServiceProcessor Kind = "service"
	// Subcontractor delivers part of the service under contract.
	Subcontractor Kind = "subcontractor"
)

// IsValid reports whether k is one of the three kinds.
func (k Kind) IsValid() bool { return k == Host || k == ServiceProcessor || k == Subcontractor }

// SubProcessor is a third party that may process a customer's service data,
// with what a compliance officer publishes about it. A SubProcessor
// returned by a [Catalog] is a copy. Empty text fields mean "not stated".
type SubProcessor struct {
	// ID is the catalog-wide identifier, such as "twilio"; a host's ID is
	// its provider's token, such as "aws".
	ID string
	// Name is the legal entity name, such as "Twilio, Inc.".
	Name string
	// Kind is Host, ServiceProcessor or Subcontractor.
	Kind Kind
	// Purpose says what the sub-processor does, in a sentence.
	Purpose string
	// Countries are where it processes data, as published; empty when not
	// stated. A host's are the countries of its data centers.
	Countries []region.Country
	// Regions are the home regions whose accounts' data it may touch. A
	// host's are the regions of its data centers.
	Regions region.Set
	// RequiresConsent is true for sub-processors that may reach an
	// account's data only with the customer's prior consent.
	RequiresConsent bool
	// Effective is when it may first touch data, in UTC; zero means
	// always. Before it, the sub-processor is announced, not usable. A
	// host's is the earliest of its data centers'.
	Effective time.Time
	// Address is the legal address.
	Address string
	// Contact is where data protection questions go.
	Contact string
	// Data says which data it touches, such as "service data".
	Data string
	// Transfer is the transfer mechanism (standard contractual clauses,
	// adequacy decision, ...) for data it processes outside the regions it
	// serves: see [SubProcessor.OutsideRegion].
	Transfer string
	// Provider and DataCenters are set for hosts only: the provider, and
	// the IDs of the catalog's data centers it runs, ordered by ID.
	Provider    Provider
	DataCenters []string
}

// Serves reports whether the sub-processor may touch the data of accounts
// whose home region is r.
func (s SubProcessor) Serves(r region.Region) bool { return s.Regions.Has(r) }

// EffectiveAt reports whether the sub-processor may touch data at time t:
// its Effective date is zero or not after t.
func (s SubProcessor) EffectiveAt(t time.Time) bool { return effectiveAt(s.Effective, t) }

// Scope returns what an access check needs of the sub-processor.
func (s SubProcessor) Scope() Scope {
	return Scope{Kind: s.Kind, Regions: s.Regions, RequiresConsent: s.RequiresConsent, Effective: s.Effective}
}

// OutsideRegion returns the countries of Countries that are outside home
// region r: those that the explicit rules of [region.StrictPolicy] do not
// give to r (for EU: not an EU or EEA member or EU territory). Data of r's
// accounts processed there needs a transfer mechanism. Nil when there are
// none or Countries is not stated.
func (s SubProcessor) OutsideRegion(r region.Region) []region.Country {
	var out []region.Country
	strict := region.StrictPolicy()
	for _, c := range s.Countries {
		if a, err := strict.Resolve(c); err != nil || a.Region != r {
			out = append(out, c)
		}
	}
	return out
}

func (s SubProcessor) clone() SubProcessor {
	s.Countries = slices.Clone(s.Countries)
	s.DataCenters = slices.Clone(s.DataCenters)
	return s
}

// MarshalJSON writes the sub-processor in the form of the catalog's
// "subprocessors" entries, with "datacenters" for a host.
func (s SubProcessor) MarshalJSON() ([]byte, error) {
	j, err := s.toJSON()
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

func (s SubProcessor) toJSON() (subProcessorJSON, error) {
	eff, err := formatEffective(s.Effective)
	if err != nil {
		return subProcessorJSON{}, err
	}
	if !s.Regions.IsValid() {
		return subProcessorJSON{}, errors.New("provider: sub-processor " + s.ID + ": invalid regions")
	}
	j := subProcessorJSON{ID: s.ID, Name: s.Name, Kind: s.Kind, Purpose: s.Purpose,
		Consent: s.RequiresConsent, Effective: eff, Address: s.Address, Contact: s.Contact,
		Data: s.Data, Transfer: s.Transfer, DataCenters: s.DataCenters}
	for _, c := range s.Countries {
		t, err := c.MarshalText()
		if err != nil {
			return subProcessorJSON{}, err
		}
		j.Countries = append(j.Countries, string(t))
	}
	regions := make([]string, 0, 4)
	for r := range s.Regions.All() {
		regions = append(regions, r.String())
	}
	j.Regions = &regions
	return j, nil
}

// Scope is what an access check needs of a sub-processor: a small
// comparable value that [Catalog.Scope] returns without allocating.
type Scope struct {
	// Kind is Host, ServiceProcessor or Subcontractor. A host's access
	// follows an account's data centers, not its region.
	Kind Kind
	// Regions are the home regions whose accounts' data it may touch.
	Regions region.Set
	// RequiresConsent is true when it needs the customer's prior consent.
	RequiresConsent bool
	// Effective is when it may first touch data; zero means always.
	Effective time.Time
}

// Serves reports whether the sub-processor may touch the data of accounts
// whose home region is r.
func (s Scope) Serves(r region.Region) bool { return s.Regions.Has(r) }

// EffectiveAt reports whether the sub-processor may touch data at time t.
func (s Scope) EffectiveAt(t time.Time) bool { return effectiveAt(s.Effective, t) }

var obligations = []string{
	"process personal data only on the data controller's documented instructions",
	"use only trusted, contractually bound staff",
	"train staff regularly in security and data protection",
	"keep appropriate technical and organisational measures",
	"report any actual or suspected breach at once",
	"cooperate on requests from controllers, data subjects and authorities",
}

// Obligations returns what every sub-processor is bound to, as the
// published list says. Each call returns a new slice.
func Obligations() []string { return slices.Clone(obligations) }

// hostPurpose is the purpose of every host.
const hostPurpose = "hosts service data in its data centers"

// defaultOthers are the sub-processors of the published list that are not
// hosts. The list gives their names, kinds and purposes, that they may
// access service data, that Quality Unit Ukraine works in Ukraine, and that
// the 24/7 support subcontractors need the customer's prior consent; it
// gives no addresses, contacts, other locations or transfer mechanisms, so
// those stay empty ("not stated").
var defaultOthers = []SubProcessor{
	{ID: "quality-unit-llc", Name: "Quality Unit, LLC", Kind: ServiceProcessor,
		Purpose: "member entity of the provider's group; provides the service", Data: "service data"},
	{ID: "quality-unit-ukraine", Name: "Quality Unit Ukraine", Kind: Subcontractor,
		Purpose: "subcontractor delivering the service", Data: "service data",
		Countries: []region.Country{region.MustParseCountry("UA")}},
	{ID: "twilio", Name: "Twilio, Inc.", Kind: ServiceProcessor,
		Purpose: "VoIP (voice over IP) transport", Data: "service data"},
	{ID: "support-247", Name: "24/7 support subcontractors", Kind: Subcontractor,
		Purpose: "round-the-clock customer support", Data: "service data", RequiresConsent: true},
}
