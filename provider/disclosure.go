package provider

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/domicile-go/domicile/region"
)

// Disclosure is what customers of one home region are told: the page a
// published sub-processor list is, as data. [Catalog.Disclosure] builds it.
type Disclosure struct {
	// Region is the home region the page is for.
	Region region.Region `json:"region"`
	// DataCenters are the region's data centers, ordered by ID, whatever
	// their status; not-yet-effective ones are announced.
	DataCenters []DataCenter `json:"datacenters"`
	// SubProcessors are the hosts of those data centers, each restricted
	// to them and ordered by ID, then the other sub-processors that serve
	// the region, in catalog order.
	SubProcessors []SubProcessor `json:"subprocessors"`
	// Obligations is what every sub-processor is bound to.
	Obligations []string `json:"obligations"`
}

// Disclosure returns the disclosure for accounts whose home region is r:
// r's data centers and their hosts only, and the other sub-processors that
// serve r, announced ones included.
func (c *Catalog) Disclosure(r region.Region) Disclosure {
	d := Disclosure{Region: r, DataCenters: c.InRegion(r), Obligations: Obligations()}
	inRegion := func(dc DataCenter) bool { return dc.Region == r }
	for _, h := range c.providers {
		if s := hostOf(h, c.dcs, inRegion); len(s.DataCenters) > 0 {
			d.SubProcessors = append(d.SubProcessors, s)
		}
	}
	for _, s := range c.subs[c.nHosts:] {
		if s.Serves(r) {
			d.SubProcessors = append(d.SubProcessors, s.clone())
		}
	}
	return d
}

// ChangeKind says how an entry of a region's disclosure changed.
type ChangeKind string

// The kinds of change.
const (
	Added   ChangeKind = "added"
	Removed ChangeKind = "removed"
	Changed ChangeKind = "changed"
)

// Change is one difference between two disclosures of a region: an entry
// (a data center or a sub-processor) added, removed or changed.
type Change struct {
	Kind ChangeKind `json:"change"`
	// Entry is "datacenter" or "subprocessor".
	Entry string `json:"entry"`
	// ID and Name identify the entry: for a data center its ID and
	// location (else city, else country), for a sub-processor its ID and
	// legal name (the new ones, or the old ones for a removal).
	ID   string `json:"id"`
	Name string `json:"name"`
	// Fields are the fields that changed, for a Changed entry.
	Fields []FieldChange `json:"fields,omitempty"`
	// Effective is from when the change applies: the new entry's
	// effective date for Added and Changed (for a host that gains a data
	// center, the latest effective date of the data centers it gains);
	// zero means at once, as for every removal.
	Effective time.Time `json:"effective,omitzero"`
}

// FieldChange is one field of a changed entry, old and new, as the
// disclosure prints them ("" for not stated).
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Changes returns what changed in region r's disclosure from catalog before
// to catalog after: data centers first, then sub-processors, each ordered by ID.
// A sub-processor that starts or stops serving r is added or removed. Data
// center weights and statuses are operations, not disclosure, and are not
// compared.
func Changes(before, after *Catalog, r region.Region) []Change {
	was, is := before.Disclosure(r), after.Disclosure(r)
	var out []Change
	dcFields := func(d DataCenter) []FieldChange {
		return []FieldChange{
			{Field: "provider", New: string(d.Provider)},
			{Field: "location", New: d.Location},
			{Field: "city", New: d.City},
			{Field: "country", New: countryText(d.Country)},
			{Field: "certifications", New: joinCerts(d.Certifications)},
			{Field: "effective", New: dateText(d.Effective)},
		}
	}
	out = appendChanges(out, "datacenter", was.DataCenters, is.DataCenters,
		func(d DataCenter) string { return d.ID }, dataCenterName,
		func(d DataCenter) time.Time { return d.Effective }, dcFields)
	spFields := func(s SubProcessor) []FieldChange {
		consent := "not required"
		if s.RequiresConsent {
			consent = "required"
		}
		countries := make([]string, len(s.Countries))
		for i, c := range s.Countries {
			countries[i] = c.String()
		}
		return []FieldChange{
			{Field: "name", New: s.Name},
			{Field: "kind", New: string(s.Kind)},
			{Field: "purpose", New: s.Purpose},
			{Field: "data", New: s.Data},
			{Field: "countries", New: strings.Join(countries, ", ")},
			{Field: "regions", New: s.Regions.String()},
			{Field: "datacenters", New: strings.Join(s.DataCenters, ", ")},
			{Field: "transfer", New: s.Transfer},
			{Field: "address", New: s.Address},
			{Field: "contact", New: s.Contact},
			{Field: "consent", New: consent},
			{Field: "effective", New: dateText(s.Effective)},
		}
	}
	byID := func(a, b SubProcessor) int { return strings.Compare(a.ID, b.ID) }
	slices.SortFunc(was.SubProcessors, byID)
	slices.SortFunc(is.SubProcessors, byID)
	out = appendChanges(out, "subprocessor", was.SubProcessors, is.SubProcessors,
		func(s SubProcessor) string { return s.ID }, func(s SubProcessor) string { return s.Name },
		func(s SubProcessor) time.Time { return s.Effective }, spFields)
	// A host changed by a new data center changes when that data center
	// takes effect.
	for i, ch := range out {
		if ch.Kind != Changed || ch.Entry != "subprocessor" {
			continue
		}
		h, ok := after.SubProcessor(ch.ID)
		if !ok || h.Kind != Host {
			continue
		}
		old, _ := before.SubProcessor(ch.ID)
		for _, id := range h.DataCenters {
			if d, _ := after.DataCenter(id); d.Region == r && !slices.Contains(old.DataCenters, id) && d.Effective.After(out[i].Effective) {
				out[i].Effective = d.Effective
			}
		}
	}
	return out
}

// dataCenterName is how a change notice names a data center: its
// location, else its city, else its country, else "".
func dataCenterName(d DataCenter) string {
	switch {
	case d.Location != "":
		return d.Location
	case d.City != "":
		return d.City
	}
	return countryText(d.Country)
}

// appendChanges merges two lists ordered by ID.
func appendChanges[T any](out []Change, entry string, was, is []T, id, name func(T) string, eff func(T) time.Time, fields func(T) []FieldChange) []Change {
	i, j := 0, 0
	for i < len(was) || j < len(is) {
		switch {
		case j == len(is) || i < len(was) && id(was[i]) < id(is[j]):
			out = append(out, Change{Kind: Removed, Entry: entry, ID: id(was[i]), Name: name(was[i])})
			i++
		case i == len(was) || id(is[j]) < id(was[i]):
			out = append(out, Change{Kind: Added, Entry: entry, ID: id(is[j]), Name: name(is[j]), Effective: eff(is[j])})
			j++
		default:
			before, after := fields(was[i]), fields(is[j])
			var diff []FieldChange
			for k := range after {
				if before[k].New != after[k].New {
					diff = append(diff, FieldChange{Field: after[k].Field, Old: before[k].New, New: after[k].New})
				}
			}
			if diff != nil {
				out = append(out, Change{Kind: Changed, Entry: entry, ID: id(is[j]), Name: name(is[j]), Fields: diff, Effective: eff(is[j])})
			}
			i++
			j++
		}
	}
	return out
}

func countryText(c region.Country) string {
	if c == (region.Country{}) {
		return ""
	}
	return c.String()
}

func joinCerts(cs []Certification) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

// dateText is formatEffective for a valid time, "" for always.
func dateText(t time.Time) string {
	s, _ := formatEffective(t)
	return s
}

// MarshalJSON writes the change with its effective date in the catalog's
// form ("2027-02-01"), left out when the change applies at once.
func (c Change) MarshalJSON() ([]byte, error) {
	eff, err := formatEffective(c.Effective)
	if err != nil {
		return nil, err
	}
	type plain Change
	return json.Marshal(struct {
		plain
		Effective string `json:"effective,omitempty"`
	}{plain(c), eff})
}
