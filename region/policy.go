package region

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoRegion is returned by [Policy.Resolve] for a country the policy has
// no rule for.
var ErrNoRegion = errors.New("region: no region for country")

// ErrInvalidAssignment is returned by [NewPolicy] and [Policy.With] for an
// assignment without a valid country, a valid region or a rule.
var ErrInvalidAssignment = errors.New("region: invalid assignment")

// Assignment is the region a policy gives a country, and the rule that
// decided it: a short sentence a compliance officer understands, such as
// "EU member state" or "nearest region: Americas". Rule is never empty.
type Assignment struct {
	Country Country
	Region  Region
	Rule    string
}

// Policy maps countries to residency regions. A Policy is immutable and safe
// for concurrent use; [Policy.With] returns a changed copy. The zero Policy
// has no rules.
//
// A *Policy is a handle around a table no caller can reach: overwriting
// the value a *Policy points to (*p = region.Policy{}) changes that handle
// only, never the policy other callers of [DefaultPolicy] get.
type Policy struct {
	// table is indexed by Country.slot; a zero Region means no rule. It is
	// shared between handles and never written after it is built; nil means
	// no rules.
	table *policyTable
}

type policyTable [countrySlots]Assignment

// explicitRules are the legal residency zones, the rules [StrictPolicy] keeps.
// Codes are listed, not derived, so that the zones are reviewable here.
var explicitRules = []struct {
	region Region
	rule   string
	codes  string
}{
	{EU, "EU member state", "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"},
	{EU, "EEA member", "IS LI NO"},
	{EU, "EU outermost region", "GF GP MF MQ RE YT"},
	{EU, "part of an EU member state (Åland, Finland)", "AX"},
	{UK, "United Kingdom", "GB"},
	{UK, "Crown Dependency", "GG IM JE"},
	{US, "United States", "US"},
	{US, "US territory", "AS GU MP PR UM VI"},
	{APAC, "APAC: East Asia", "CN HK JP KP KR MN MO TW"},
	{APAC, "APAC: South-East Asia", "BN ID KH LA MM MY PH SG TH TL VN"},
	{APAC, "APAC: South Asia", "AF BD BT IN IR LK MV NP PK"},
	{APAC, "APAC: Oceania", "AU CC CK CX FJ FM HM KI MH NC NF NR NU NZ PF PG PN PW SB TK TO TV VU WF WS"},
}

// nearestRules give every other country the region nearest to its UN M49
// area. Only [DefaultPolicy] has them.
var nearestRules = []struct {
	region Region
	rule   string
	areas  []area
}{
	{US, "nearest region: Americas", []area{caribbean, centralAmerica, southAmerica, northernAmerica}},
	{EU, "nearest region: Europe", []area{easternEurope, northernEurope, southernEurope, westernEurope}},
	{EU, "nearest region: Africa", []area{northernAfrica, easternAfrica, middleAfrica, southernAfrica, westernAfrica}},
	{EU, "nearest region: Western and Central Asia", []area{westernAsia, centralAsia}},
	{APAC, "nearest region: Antarctica, served from Oceania", []area{antarctica}},
}

var defaultTable, strictTable = buildPolicies()

func buildPolicies() (def, strict *policyTable) {
	strict = new(policyTable)
	for _, r := range explicitRules {
		for _, code := range strings.Fields(r.codes) {
			c := MustParseCountry(code)
			if strict[c.slot].Region != 0 {
				panic("region: country in two explicit rules: " + code)
			}
			strict[c.slot] = Assignment{Country: c, Region: r.region, Rule: r.rule}
		}
	}
	def = new(policyTable)
	*def = *strict
	for _, c := range Countries() {
		if def[c.slot].Region != 0 {
			continue
		}
		for _, r := range nearestRules {
			for _, a := range r.areas {
				if countryArea[c.slot] == a {
					def[c.slot] = Assignment{Country: c, Region: r.region, Rule: r.rule}
				}
			}
		}
		if def[c.slot].Region == 0 {
			panic("region: no default rule for " + c.String())
		}
	}
	return def, strict
}

// DefaultPolicy returns the policy that resolves every country: the explicit
// rules of [StrictPolicy], and a nearest-region rule by UN M49 area for the
// rest (the rest of the Americas to US; the rest of Europe, Africa and Western
// and Central Asia to EU; Antarctica to APAC). The README prints its table.
//
// Each call returns a new handle: what one caller does to it cannot change
// what the next caller gets.
func DefaultPolicy() *Policy { return &Policy{table: defaultTable} }

// StrictPolicy returns the policy with only the explicit rules: EU members,
// EEA members, the EU's outermost regions and Åland to EU; GB and the Crown
// Dependencies to UK; the US and its territories to US; East, South-East and
// South Asia and Oceania to APAC. Other countries get [ErrNoRegion]. Like
// [DefaultPolicy], each call returns a new handle.
func StrictPolicy() *Policy { return &Policy{table: strictTable} }

// NewPolicy returns a policy with exactly the given assignments; countries
// not listed get [ErrNoRegion]. Each assignment needs a valid country, a
// valid region and a rule, and no country may be listed twice; otherwise the
// error matches [ErrInvalidAssignment].
func NewPolicy(assignments ...Assignment) (*Policy, error) {
	return new(Policy).With(assignments...)
}

// With returns a copy of p in which the given assignments replace the
// country's rule, for example to send one country to another region:
//
//	p, err := region.DefaultPolicy().With(region.Assignment{
//		Country: region.MustParseCountry("CH"), Region: region.EU,
//		Rule: "contract: Swiss customers hosted in the EU"})
//
// p itself is not changed. Errors are as for [NewPolicy].
func (p *Policy) With(assignments ...Assignment) (*Policy, error) {
	table := new(policyTable)
	if p.table != nil {
		*table = *p.table
	}
	seen := make(map[Country]bool, len(assignments))
	for _, a := range assignments {
		switch {
		case !a.Country.IsValid():
			return nil, fmt.Errorf("%w: country %q is not valid", ErrInvalidAssignment, a.Country)
		case !a.Region.IsValid():
			return nil, fmt.Errorf("%w: country %s: region %q is not valid", ErrInvalidAssignment, a.Country, a.Region)
		case strings.TrimSpace(a.Rule) == "":
			return nil, fmt.Errorf("%w: country %s: empty rule", ErrInvalidAssignment, a.Country)
		case seen[a.Country]:
			return nil, fmt.Errorf("%w: country %s listed twice", ErrInvalidAssignment, a.Country)
		}
		seen[a.Country] = true
		table[a.Country.slot] = a
	}
	return &Policy{table: table}, nil
}

// Resolve returns the country's region and the rule that decided it. A
// country without a rule, or an invalid one, is an error that matches
// [ErrNoRegion].
func (p *Policy) Resolve(c Country) (Assignment, error) {
	if p.table != nil && int(c.slot) < countrySlots {
		if a := p.table[c.slot]; a.Region != 0 {
			return a, nil
		}
	}
	return Assignment{}, fmt.Errorf("%w %q", ErrNoRegion, c)
}

// Assignments returns every rule of the policy, ordered by country code.
func (p *Policy) Assignments() []Assignment {
	if p.table == nil {
		return nil
	}
	var out []Assignment
	for _, a := range p.table {
		if a.Region != 0 {
			out = append(out, a)
		}
	}
	return out
}
