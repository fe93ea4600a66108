package provider

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/domicile-go/domicile/region"
)

// DataCenter is one hosting facility. A DataCenter returned by a [Catalog]
// is a copy; changing it changes nothing in the catalog.
type DataCenter struct {
	// ID is the catalog-wide identifier, such as "aws-eu-west-1".
	ID string
	// Provider hosts the data center: a default provider or one the
	// catalog declares.
	Provider Provider
	// Region is the residency region the data center serves; accounts of
	// other regions never live here. Only Region decides whose data the
	// data center may hold, wherever it stands.
	Region region.Region
	// Weight is the data center's share of its region's new accounts
	// relative to the other active data centers of the region; at least 1.
	Weight int
	// Status says whether the data center takes new accounts.
	Status Status
	// Country is where the facility stands, when published; else zero. It
	// may be outside Region (an APAC data center in the UAE).
	Country region.Country
	// City is the facility's city, when published.
	City string
	// Location is the location as the sub-processor list publishes it,
	// such as "Northern California" or "EU location".
	Location string
	// Certifications are the facility's published certifications.
	Certifications []Certification
	// Effective is when the data center may first hold accounts' data, in
	// UTC; zero means always. Before it, the data center is announced, not
	// usable: see [DataCenter.EffectiveAt].
	Effective time.Time
}

// Active reports whether the data center takes new accounts.
func (d DataCenter) Active() bool { return d.Status == Active }

// EffectiveAt reports whether the data center may hold data at time t: its
// Effective date is zero or not after t.
func (d DataCenter) EffectiveAt(t time.Time) bool { return effectiveAt(d.Effective, t) }

func effectiveAt(effective, t time.Time) bool { return effective.IsZero() || !t.Before(effective) }

func (d DataCenter) clone() DataCenter {
	d.Certifications = slices.Clone(d.Certifications)
	return d
}

// MarshalJSON writes the data center as an entry of the catalog format
// [LoadCatalog] reads.
func (d DataCenter) MarshalJSON() ([]byte, error) {
	j, err := d.toJSON()
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

func (d DataCenter) toJSON() (dataCenterJSON, error) {
	w := d.Weight
	country, err := d.Country.MarshalText()
	if err != nil {
		return dataCenterJSON{}, err
	}
	eff, err := formatEffective(d.Effective)
	if err != nil {
		return dataCenterJSON{}, err
	}
	return dataCenterJSON{ID: d.ID, Provider: d.Provider, Region: d.Region.String(), Weight: &w,
		Status: d.Status, Country: string(country), City: d.City, Location: d.Location,
		Certifications: d.Certifications, Effective: eff}, nil
}

// Status is a data center's operating status.
type Status string

// The data center statuses. Only Active data centers take new accounts or
// incoming moves; Draining ones keep their accounts while these are moved
// away; Offline ones should hold none.
const (
	Active   Status = "active"
	Draining Status = "draining"
	Offline  Status = "offline"
)

// IsValid reports whether s is one of the three statuses.
func (s Status) IsValid() bool { return s == Active || s == Draining || s == Offline }

// Certification is a facility certification or tier, as a sub-processor
// list names it. Any name is accepted; the constants are the ones the
// published list names.
type Certification string

// The certifications the published list names. The list says every facility
// is Tier III+ or Tier IV, and PCI DSS, SSAE-16 or ISO 27001 compliant,
// without saying which facility holds which; the default catalog therefore
// lists none per facility rather than guess.
const (
	TierIIIPlus Certification = "Tier III+"
	TierIV      Certification = "Tier IV"
	PCIDSS      Certification = "PCI DSS"
	SSAE16      Certification = "SSAE-16"
	ISO27001    Certification = "ISO 27001"
)

// IsValid reports whether c is a well-formed certification name: 1 to 100
// bytes of valid UTF-8 without control characters or surrounding spaces.
func (c Certification) IsValid() bool {
	return c != "" && len(c) <= 100 && checkText(string(c)) == nil && strings.TrimSpace(string(c)) == string(c)
}
