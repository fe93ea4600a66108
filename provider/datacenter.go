package provider

import (
	"slices"

	"github.com/domicile-go/domicile/region"
)

// DataCenter is one hosting facility. A DataCenter returned by a [Catalog]
// is a copy; changing it changes nothing in the catalog.
type DataCenter struct {
	// ID is the catalog-wide identifier, such as "aws-eu-west-1".
	ID string
	// Provider hosts the data center.
	Provider Provider
	// Region is the residency region the data center serves; accounts of
	// other regions never live here.
	Region region.Region
	// Weight is the data center's share of its region's new accounts
	// relative to the other active data centers of the region; at least 1.
	Weight int
	// Status says whether the data center takes new accounts.
	Status Status
	// Country is where the facility is, when published; else zero.
	Country region.Country
	// City is the facility's city, when published.
	City string
	// Location is the location as the sub-processor list publishes it,
	// such as "Northern California" or "EU location".
	Location string
	// Certifications are the facility's published certifications.
	Certifications []Certification
}

// Active reports whether the data center takes new accounts.
func (d DataCenter) Active() bool { return d.Status == Active }

func (d DataCenter) clone() DataCenter {
	d.Certifications = slices.Clone(d.Certifications)
	return d
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

// Certification is a facility certification or tier, as the sub-processor
// list names it.
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

// IsValid reports whether c is one of the known certifications.
func (c Certification) IsValid() bool {
	switch c {
	case TierIIIPlus, TierIV, PCIDSS, SSAE16, ISO27001:
		return true
	}
	return false
}
