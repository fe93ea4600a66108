package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/domicile-go/domicile/region"
)

// ErrInvalidCatalog is returned for a catalog that cannot be used: malformed
// JSON, unknown fields, or a data center that fails validation. The message
// names the data center.
var ErrInvalidCatalog = errors.New("provider: invalid catalog")

// MaxCatalogSize is the largest catalog JSON [LoadCatalog] reads.
const MaxCatalogSize = 1 << 20

// maxIDLen bounds data center IDs; they appear in logs, metrics and files.
const maxIDLen = 64

// Catalog is an immutable set of data centers. It is safe for concurrent
// use.
type Catalog struct {
	dcs  []DataCenter // ordered by ID
	byID map[string]int
}

var defaultCatalog = mustCatalog(
	DataCenter{ID: "linode-eu", Provider: Linode, Region: region.EU, Location: "EU location"},
	DataCenter{ID: "linode-uk", Provider: Linode, Region: region.UK, Location: "UK location"},
	DataCenter{ID: "linode-us", Provider: Linode, Region: region.US, Location: "US location"},
	DataCenter{ID: "linode-sg", Provider: Linode, Region: region.APAC, Country: region.MustParseCountry("SG"), City: "Singapore", Location: "Singapore"},
	DataCenter{ID: "aws-eu-west-1", Provider: AWS, Region: region.EU, Country: region.MustParseCountry("IE"), Location: "Ireland"},
	DataCenter{ID: "aws-us-west-1", Provider: AWS, Region: region.US, Country: region.MustParseCountry("US"), Location: "Northern California"},
	DataCenter{ID: "aws-ap-southeast-1", Provider: AWS, Region: region.APAC, Country: region.MustParseCountry("SG"), City: "Singapore", Location: "Singapore"},
	DataCenter{ID: "websupport-eu", Provider: Websupport, Region: region.EU, Country: region.MustParseCountry("SK"), Location: "EU (Slovakia)"},
)

func mustCatalog(dcs ...DataCenter) *Catalog {
	c, err := NewCatalog(dcs...)
	if err != nil {
		panic(err)
	}
	return c
}

// DefaultCatalog returns the eight data centers of the hosting provider's
// published sub-processor list, all active with weight 1.
func DefaultCatalog() *Catalog { return defaultCatalog }

// NewCatalog builds a catalog from data centers. A zero Weight becomes 1 and
// an empty Status becomes [Active]; everything else is validated as
// [LoadCatalog] does.
func NewCatalog(dcs ...DataCenter) (*Catalog, error) {
	if len(dcs) == 0 {
		return nil, fmt.Errorf("%w: no data centers", ErrInvalidCatalog)
	}
	c := &Catalog{byID: make(map[string]int, len(dcs))}
	for i, d := range dcs {
		d = d.clone()
		if d.Weight == 0 {
			d.Weight = 1
		}
		if d.Status == "" {
			d.Status = Active
		}
		if err := validate(d); err != nil {
			return nil, dcError(i, d.ID, err)
		}
		if _, dup := c.byID[d.ID]; dup {
			return nil, dcError(i, d.ID, errors.New("duplicate ID"))
		}
		c.byID[d.ID] = i
		c.dcs = append(c.dcs, d)
	}
	slices.SortFunc(c.dcs, func(a, b DataCenter) int { return strings.Compare(a.ID, b.ID) })
	for i, d := range c.dcs {
		c.byID[d.ID] = i
	}
	return c, nil
}

func dcError(i int, id string, err error) error {
	return fmt.Errorf("%w: data center #%d %q: %w", ErrInvalidCatalog, i+1, id, err)
}

func validate(d DataCenter) error {
	switch {
	case d.ID == "":
		return errors.New("empty ID")
	case len(d.ID) > maxIDLen:
		return fmt.Errorf("ID longer than %d bytes", maxIDLen)
	case strings.IndexFunc(d.ID, func(r rune) bool { return !isIDRune(r) }) >= 0:
		return errors.New("ID may hold only a-z, A-Z, 0-9, '-', '_' and '.'")
	case !d.Provider.IsValid():
		return fmt.Errorf("unknown provider %q", d.Provider)
	case !d.Region.IsValid():
		return fmt.Errorf("%w %q", region.ErrUnknownRegion, d.Region)
	case d.Weight < 1:
		return fmt.Errorf("weight %d is below 1", d.Weight)
	case !d.Status.IsValid():
		return fmt.Errorf("unknown status %q", d.Status)
	}
	if d.Country != (region.Country{}) {
		a, err := region.DefaultPolicy().Resolve(d.Country)
		if err != nil {
			return err
		}
		if a.Region != d.Region {
			return fmt.Errorf("country %s belongs to region %s, not %s", d.Country, a.Region, d.Region)
		}
	}
	for _, c := range d.Certifications {
		if !c.IsValid() {
			return fmt.Errorf("unknown certification %q", c)
		}
	}
	return nil
}

func isIDRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

// catalogJSON is the file format of LoadCatalog.
type catalogJSON struct {
	DataCenters []dataCenterJSON `json:"datacenters"`
}

type dataCenterJSON struct {
	ID             string          `json:"id"`
	Provider       Provider        `json:"provider"`
	Region         string          `json:"region"`
	Weight         *int            `json:"weight"`
	Status         Status          `json:"status"`
	Country        string          `json:"country"`
	City           string          `json:"city"`
	Location       string          `json:"location"`
	Certifications []Certification `json:"certifications"`
}

// LoadCatalog reads a catalog from JSON (see the package documentation for
// the format) and validates it. Errors match [ErrInvalidCatalog] and name the
// data center; an unknown region also matches [region.ErrUnknownRegion] and
// an unknown country [region.ErrInvalidCountry].
func LoadCatalog(r io.Reader) (*Catalog, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxCatalogSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCatalog, err)
	}
	if len(data) > MaxCatalogSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidCatalog, MaxCatalogSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc catalogJSON
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCatalog, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the catalog object", ErrInvalidCatalog)
	}
	dcs := make([]DataCenter, len(doc.DataCenters))
	for i, j := range doc.DataCenters {
		d := DataCenter{ID: j.ID, Provider: j.Provider, Weight: 1, Status: Active, City: j.City, Location: j.Location, Certifications: j.Certifications}
		if d.Region, err = region.Parse(j.Region); err != nil {
			return nil, dcError(i, j.ID, err)
		}
		if j.Weight != nil {
			if *j.Weight < 1 {
				return nil, dcError(i, j.ID, fmt.Errorf("weight %d is below 1", *j.Weight))
			}
			d.Weight = *j.Weight
		}
		if j.Status != "" {
			d.Status = j.Status
			if !d.Status.IsValid() {
				return nil, dcError(i, j.ID, fmt.Errorf("unknown status %q", j.Status))
			}
		}
		if j.Country != "" {
			if d.Country, err = region.ParseCountry(j.Country); err != nil {
				return nil, dcError(i, j.ID, err)
			}
		}
		dcs[i] = d
	}
	return NewCatalog(dcs...)
}

// MarshalJSON writes the catalog in the format [LoadCatalog] reads.
func (c *Catalog) MarshalJSON() ([]byte, error) {
	doc := catalogJSON{DataCenters: make([]dataCenterJSON, len(c.dcs))}
	for i, d := range c.dcs {
		w := d.Weight
		country, _ := d.Country.MarshalText()
		doc.DataCenters[i] = dataCenterJSON{ID: d.ID, Provider: d.Provider, Region: d.Region.String(), Weight: &w,
			Status: d.Status, Country: string(country), City: d.City, Location: d.Location, Certifications: d.Certifications}
	}
	return json.Marshal(doc)
}

// DataCenter returns the data center with the given ID.
func (c *Catalog) DataCenter(id string) (DataCenter, bool) {
	i, ok := c.byID[id]
	if !ok {
		return DataCenter{}, false
	}
	return c.dcs[i].clone(), true
}

// All returns every data center, ordered by ID.
func (c *Catalog) All() []DataCenter {
	out := make([]DataCenter, len(c.dcs))
	for i, d := range c.dcs {
		out[i] = d.clone()
	}
	return out
}

// InRegion returns the data centers of region r, whatever their status,
// ordered by ID.
func (c *Catalog) InRegion(r region.Region) []DataCenter {
	var out []DataCenter
	for _, d := range c.dcs {
		if d.Region == r {
			out = append(out, d.clone())
		}
	}
	return out
}
