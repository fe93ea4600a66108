package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/domicile-go/domicile/region"
)

// ErrInvalidCatalog is returned for a catalog that cannot be used: malformed
// JSON, unknown fields, or an entry that fails validation. The message names
// the entry (data center, provider or sub-processor, with its position and
// ID).
var ErrInvalidCatalog = errors.New("provider: invalid catalog")

// MaxCatalogSize is the largest catalog JSON [LoadCatalog] reads.
const MaxCatalogSize = 1 << 20

// maxIDLen bounds IDs; they appear in logs, metrics and files.
const maxIDLen = 64

// Catalog is an immutable set of data centers and sub-processors. It is
// safe for concurrent use; the values it returns are copies.
//
// A *Catalog is a handle around state no caller can reach: overwriting the
// value a *Catalog points to changes that handle only. [DefaultCatalog]
// returns a new handle on every call.
type Catalog struct {
	dcs    []DataCenter // ordered by ID
	dcByID map[string]int

	providers []HostingProvider // the providers of dcs, ordered by ID
	subs      []SubProcessor    // hosts ordered by ID, then the others in catalog order
	scopes    []Scope           // scopes[i] is subs[i].Scope()
	subByID   map[string]int
	nHosts    int
}

// Contents is everything a catalog holds, for building one in code with
// [NewCatalogFrom] and for reading one whole with [Catalog.Contents].
type Contents struct {
	// Providers declares hosting providers other than the default ones
	// (Linode, AWS, Websupport), or replaces what a catalog says of a
	// default one. Every provider declared must host a data center.
	Providers []HostingProvider
	// DataCenters are the data centers; at least one.
	DataCenters []DataCenter
	// SubProcessors are the sub-processors that are not hosts (Kind
	// ServiceProcessor or Subcontractor); hosts are derived from the data
	// centers. A zero Regions means all four regions.
	SubProcessors []SubProcessor
}

var defaultCatalog = func() *Catalog {
	c, err := NewCatalogFrom(Contents{
		DataCenters: []DataCenter{
			{ID: "linode-eu", Provider: Linode, Region: region.EU, Location: "EU location"},
			{ID: "linode-uk", Provider: Linode, Region: region.UK, Location: "UK location"},
			{ID: "linode-us", Provider: Linode, Region: region.US, Location: "US location"},
			{ID: "linode-sg", Provider: Linode, Region: region.APAC, Country: region.MustParseCountry("SG"), City: "Singapore", Location: "Singapore"},
			{ID: "aws-eu-west-1", Provider: AWS, Region: region.EU, Country: region.MustParseCountry("IE"), Location: "Ireland"},
			{ID: "aws-us-west-1", Provider: AWS, Region: region.US, Country: region.MustParseCountry("US"), Location: "Northern California"},
			{ID: "aws-ap-southeast-1", Provider: AWS, Region: region.APAC, Country: region.MustParseCountry("SG"), City: "Singapore", Location: "Singapore"},
			{ID: "websupport-eu", Provider: Websupport, Region: region.EU, Country: region.MustParseCountry("SK"), Location: "EU (Slovakia)"},
		},
		SubProcessors: defaultOthers,
	})
	if err != nil {
		panic(err)
	}
	return c
}()

// DefaultCatalog returns the catalog of the hosting provider's published
// sub-processor list: its eight data centers, all active with weight 1, the
// hosts Linode, AWS and Websupport, and the other sub-processors
// quality-unit-llc, quality-unit-ukraine, twilio and support-247 (the 24/7
// support subcontractors, who need the customer's prior consent).
//
// Each call returns a new handle around the same immutable state: what a
// caller does to the value it got cannot change what the next caller gets.
func DefaultCatalog() *Catalog {
	c := *defaultCatalog
	return &c
}

// NewCatalog builds a catalog of data centers, hosted by the default
// providers, with no other sub-processors; it is [NewCatalogFrom] with only
// DataCenters.
func NewCatalog(dcs ...DataCenter) (*Catalog, error) {
	return NewCatalogFrom(Contents{DataCenters: dcs})
}

// NewCatalogFrom builds a catalog. A data center's zero Weight becomes 1 and
// its empty Status [Active]; a sub-processor's zero Regions becomes all four;
// times become UTC. Everything else is validated as [LoadCatalog] does, with
// errors that match [ErrInvalidCatalog] and name the entry. The catalog
// keeps copies: changing ct afterwards changes nothing.
func NewCatalogFrom(ct Contents) (*Catalog, error) {
	if len(ct.DataCenters) == 0 {
		return nil, fmt.Errorf("%w: no data centers", ErrInvalidCatalog)
	}
	// Providers: the defaults, replaced or joined by the declared ones.
	known := make(map[Provider]HostingProvider, len(defaultProviders)+len(ct.Providers))
	for _, h := range defaultProviders {
		known[h.ID] = h
	}
	declared := make(map[Provider]int, len(ct.Providers))
	for i, h := range ct.Providers {
		if err := validateProvider(h); err != nil {
			return nil, entryError("provider", i, string(h.ID), err)
		}
		if _, dup := declared[h.ID]; dup {
			return nil, entryError("provider", i, string(h.ID), errors.New("declared twice"))
		}
		declared[h.ID] = i
		known[h.ID] = h
	}

	c := &Catalog{dcByID: make(map[string]int, len(ct.DataCenters))}
	for i, d := range ct.DataCenters {
		d = d.clone()
		if d.Weight == 0 {
			d.Weight = 1
		}
		if d.Status == "" {
			d.Status = Active
		}
		d.Effective = d.Effective.UTC()
		if err := validateDataCenter(d); err != nil {
			return nil, entryError("data center", i, d.ID, err)
		}
		if _, ok := known[d.Provider]; !ok {
			return nil, entryError("data center", i, d.ID, fmt.Errorf("unknown provider %q: declare it in \"providers\"", d.Provider))
		}
		if _, dup := c.dcByID[d.ID]; dup {
			return nil, entryError("data center", i, d.ID, errors.New("duplicate ID"))
		}
		c.dcByID[d.ID] = i
		c.dcs = append(c.dcs, d)
	}
	slices.SortFunc(c.dcs, func(a, b DataCenter) int { return strings.Compare(a.ID, b.ID) })
	for i, d := range c.dcs {
		c.dcByID[d.ID] = i
	}

	// Hosts: one per provider of the data centers.
	c.subByID = make(map[string]int, len(known)+len(ct.SubProcessors))
	used := make(map[Provider]bool)
	for _, d := range c.dcs {
		used[d.Provider] = true
	}
	for p, i := range declared {
		if !used[p] {
			return nil, entryError("provider", i, string(p), errors.New("hosts no data center"))
		}
	}
	for _, h := range sortedProviders(known, used) {
		c.providers = append(c.providers, h)
		c.subByID[string(h.ID)] = len(c.subs)
		c.subs = append(c.subs, hostOf(h, c.dcs, func(DataCenter) bool { return true }))
	}
	c.nHosts = len(c.subs)

	// The others.
	for i, s := range ct.SubProcessors {
		s = s.clone()
		if s.Regions == 0 {
			s.Regions = region.AllRegions
		}
		s.Effective = s.Effective.UTC()
		if err := validateOther(s); err != nil {
			return nil, entryError("sub-processor", i, s.ID, err)
		}
		if _, dup := c.subByID[s.ID]; dup {
			return nil, entryError("sub-processor", i, s.ID, errors.New("duplicate ID (hosts have their provider's token as ID)"))
		}
		if _, ok := known[Provider(s.ID)]; ok {
			// Even one this catalog hosts nothing with: the day it does,
			// the ID would name another party, and an objection to the
			// sub-processor would be taken for one to the host.
			return nil, entryError("sub-processor", i, s.ID, errors.New("the token of a hosting provider (hosts have their provider's token as ID)"))
		}
		c.subByID[s.ID] = len(c.subs)
		c.subs = append(c.subs, s)
	}
	for _, s := range c.subs {
		c.scopes = append(c.scopes, s.Scope())
	}
	return c, nil
}

func sortedProviders(known map[Provider]HostingProvider, used map[Provider]bool) []HostingProvider {
	var out []HostingProvider
	for p := range used {
		out = append(out, known[p])
	}
	slices.SortFunc(out, func(a, b HostingProvider) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// hostOf derives provider h's host entry from the data centers keep
// accepts.
func hostOf(h HostingProvider, dcs []DataCenter, keep func(DataCenter) bool) SubProcessor {
	s := SubProcessor{ID: string(h.ID), Name: h.Name, Kind: Host, Purpose: hostPurpose,
		Address: h.Address, Contact: h.Contact, Data: h.Data, Transfer: h.Transfer, Provider: h.ID}
	first := true
	for _, d := range dcs {
		if d.Provider != h.ID || !keep(d) {
			continue
		}
		s.DataCenters = append(s.DataCenters, d.ID)
		s.Regions = s.Regions.With(d.Region)
		if d.Country != (region.Country{}) && !slices.Contains(s.Countries, d.Country) {
			s.Countries = append(s.Countries, d.Country)
		}
		if first || s.Effective.After(d.Effective) {
			s.Effective = d.Effective
		}
		first = false
	}
	slices.SortFunc(s.Countries, func(a, b region.Country) int { return strings.Compare(a.String(), b.String()) })
	return s
}

func entryError(what string, i int, id string, err error) error {
	return fmt.Errorf("%w: %s #%d %q: %w", ErrInvalidCatalog, what, i+1, id, err)
}

func validateDataCenter(d DataCenter) error {
	switch {
	case d.ID == "":
		return errors.New("empty ID")
	case len(d.ID) > maxIDLen:
		return fmt.Errorf("ID longer than %d bytes", maxIDLen)
	case strings.IndexFunc(d.ID, func(r rune) bool { return !isIDRune(r) }) >= 0:
		return errors.New("ID may hold only a-z, A-Z, 0-9, '-', '_' and '.'")
	case !d.Provider.IsValid():
		return fmt.Errorf("provider %q is not a token of a-z, 0-9, '-', '_' and '.'", d.Provider)
	case !d.Region.IsValid():
		return fmt.Errorf("%w %q", region.ErrUnknownRegion, d.Region)
	case d.Weight < 1:
		return fmt.Errorf("weight %d is below 1", d.Weight)
	case !d.Status.IsValid():
		return fmt.Errorf("unknown status %q", d.Status)
	case d.Country != (region.Country{}) && !d.Country.IsValid():
		return fmt.Errorf("%w %q", region.ErrInvalidCountry, d.Country)
	}
	if err := checkTime(d.Effective); err != nil {
		return err
	}
	if err := checkTexts("city", d.City, "location", d.Location); err != nil {
		return err
	}
	for i, c := range d.Certifications {
		if !c.IsValid() {
			return fmt.Errorf("certification %q is not 1 to 100 bytes of text", c)
		}
		if slices.Contains(d.Certifications[:i], c) {
			return fmt.Errorf("certification %q listed twice", c)
		}
	}
	return nil
}

func validateProvider(h HostingProvider) error {
	if !h.ID.IsValid() {
		return fmt.Errorf("ID is not 1 to %d bytes of a-z, 0-9, '-', '_' and '.'", maxIDLen)
	}
	if strings.TrimSpace(h.Name) == "" {
		return errors.New("no legal name")
	}
	return checkTexts("name", h.Name, "address", h.Address, "contact", h.Contact, "data", h.Data, "transfer", h.Transfer)
}

func validateOther(s SubProcessor) error {
	switch {
	case !isToken(s.ID):
		return fmt.Errorf("ID is not 1 to %d bytes of a-z, 0-9, '-', '_' and '.'", maxIDLen)
	case s.Kind == Host:
		return errors.New(`kind "host": hosts are derived from the data centers; declare a provider in "providers"`)
	case !s.Kind.IsValid():
		return fmt.Errorf("unknown kind %q (want %q or %q)", s.Kind, ServiceProcessor, Subcontractor)
	case strings.TrimSpace(s.Name) == "":
		return errors.New("no legal name")
	case !s.Regions.IsValid():
		return fmt.Errorf("%w in %s", region.ErrUnknownRegion, s.Regions)
	case s.Provider != "" || s.DataCenters != nil:
		return errors.New("provider and data centers are for hosts only")
	}
	for i, c := range s.Countries {
		if !c.IsValid() {
			return fmt.Errorf("%w %q", region.ErrInvalidCountry, c)
		}
		if slices.Contains(s.Countries[:i], c) {
			return fmt.Errorf("country %s listed twice", c)
		}
	}
	if err := checkTime(s.Effective); err != nil {
		return err
	}
	return checkTexts("name", s.Name, "purpose", s.Purpose, "address", s.Address, "contact", s.Contact, "data", s.Data, "transfer", s.Transfer)
}

// checkTexts checks pairs of field name and value with checkText.
func checkTexts(pairs ...string) error {
	for i := 0; i < len(pairs); i += 2 {
		if err := checkText(pairs[i+1]); err != nil {
			return fmt.Errorf("%s: %w", pairs[i], err)
		}
	}
	return nil
}

// checkText refuses what would not survive JSON or would break a
// one-line field of a published page: invalid UTF-8 and control characters.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("invalid UTF-8")
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("control character %U", r)
	}
	return nil
}

func checkTime(t time.Time) error {
	if y := t.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("effective year %d is outside 0000-9999", y)
	}
	return nil
}

func isIDRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

// dateLayout is the form of an effective date that falls on midnight UTC.
const dateLayout = "2006-01-02"

// parseEffective reads an effective date: "2027-02-01" (midnight UTC) or
// an RFC 3339 time.
func parseEffective(s string) (time.Time, error) {
	if t, err := time.Parse(dateLayout, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("effective %q is neither a date (2027-02-01) nor an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

// formatEffective writes what parseEffective reads: "" for the zero time, a
// date for midnight UTC, else an RFC 3339 time in UTC.
func formatEffective(t time.Time) (string, error) {
	if t.IsZero() {
		return "", nil
	}
	if err := checkTime(t); err != nil {
		return "", err
	}
	t = t.UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(dateLayout), nil
	}
	return t.Format(time.RFC3339Nano), nil
}

// catalogJSON is the file format of LoadCatalog.
type catalogJSON struct {
	Providers     []providerJSON     `json:"providers,omitempty"`
	DataCenters   []dataCenterJSON   `json:"datacenters"`
	SubProcessors []subProcessorJSON `json:"subprocessors,omitempty"`
}

type providerJSON struct {
	ID       Provider `json:"id"`
	Name     string   `json:"name"`
	Address  string   `json:"address,omitempty"`
	Contact  string   `json:"contact,omitempty"`
	Data     string   `json:"data,omitempty"`
	Transfer string   `json:"transfer,omitempty"`
}

type dataCenterJSON struct {
	ID             string          `json:"id"`
	Provider       Provider        `json:"provider"`
	Region         string          `json:"region"`
	Weight         *int            `json:"weight,omitempty"`
	Status         Status          `json:"status,omitempty"`
	Country        string          `json:"country,omitempty"`
	City           string          `json:"city,omitempty"`
	Location       string          `json:"location,omitempty"`
	Certifications []Certification `json:"certifications,omitempty"`
	Effective      string          `json:"effective,omitempty"`
}

type subProcessorJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Kind        Kind      `json:"kind"`
	Purpose     string    `json:"purpose,omitempty"`
	Countries   []string  `json:"countries,omitempty"`
	Regions     *[]string `json:"regions,omitempty"`
	Consent     bool      `json:"consent"`
	Effective   string    `json:"effective,omitempty"`
	Address     string    `json:"address,omitempty"`
	Contact     string    `json:"contact,omitempty"`
	Data        string    `json:"data,omitempty"`
	Transfer    string    `json:"transfer,omitempty"`
	DataCenters []string  `json:"datacenters,omitempty"`
}

// LoadCatalog reads a catalog from JSON (see the package documentation for
// the format) and validates it. Errors match [ErrInvalidCatalog] and name the
// entry; an unknown region also matches [region.ErrUnknownRegion] and an
// unknown country [region.ErrInvalidCountry].
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
	var ct Contents
	for _, j := range doc.Providers {
		ct.Providers = append(ct.Providers, HostingProvider(j))
	}
	for i, j := range doc.DataCenters {
		d, err := j.toDataCenter()
		if err != nil {
			return nil, entryError("data center", i, j.ID, err)
		}
		ct.DataCenters = append(ct.DataCenters, d)
	}
	for i, j := range doc.SubProcessors {
		s, err := j.toSubProcessor()
		if err != nil {
			return nil, entryError("sub-processor", i, j.ID, err)
		}
		ct.SubProcessors = append(ct.SubProcessors, s)
	}
	return NewCatalogFrom(ct)
}

func (j dataCenterJSON) toDataCenter() (DataCenter, error) {
	d := DataCenter{ID: j.ID, Provider: j.Provider, Weight: 1, Status: Active, City: j.City, Location: j.Location, Certifications: j.Certifications}
	var err error
	if d.Region, err = region.Parse(j.Region); err != nil {
		return d, err
	}
	if j.Weight != nil {
		if *j.Weight < 1 {
			return d, fmt.Errorf("weight %d is below 1", *j.Weight)
		}
		d.Weight = *j.Weight
	}
	if j.Status != "" {
		d.Status = j.Status
		if !d.Status.IsValid() {
			return d, fmt.Errorf("unknown status %q", j.Status)
		}
	}
	if j.Country != "" {
		if d.Country, err = region.ParseCountry(j.Country); err != nil {
			return d, err
		}
	}
	if j.Effective != "" {
		if d.Effective, err = parseEffective(j.Effective); err != nil {
			return d, err
		}
	}
	return d, nil
}

func (j subProcessorJSON) toSubProcessor() (SubProcessor, error) {
	s := SubProcessor{ID: j.ID, Name: j.Name, Kind: j.Kind, Purpose: j.Purpose, RequiresConsent: j.Consent,
		Address: j.Address, Contact: j.Contact, Data: j.Data, Transfer: j.Transfer, Regions: region.AllRegions}
	if j.DataCenters != nil {
		return s, errors.New(`"datacenters" is for hosts only; hosts are derived from the data centers`)
	}
	for _, code := range j.Countries {
		c, err := region.ParseCountry(code)
		if err != nil {
			return s, err
		}
		s.Countries = append(s.Countries, c)
	}
	if j.Regions != nil {
		if len(*j.Regions) == 0 {
			return s, errors.New(`"regions" is empty: leave it out for all four regions`)
		}
		s.Regions = 0
		for _, name := range *j.Regions {
			r, err := region.Parse(name)
			if err != nil {
				return s, err
			}
			if s.Regions.Has(r) {
				return s, fmt.Errorf("region %s listed twice", r)
			}
			s.Regions = s.Regions.With(r)
		}
	}
	if j.Effective != "" {
		var err error
		if s.Effective, err = parseEffective(j.Effective); err != nil {
			return s, err
		}
	}
	return s, nil
}

// MarshalJSON writes the catalog in the format [LoadCatalog] reads: every
// provider of its data centers (the default ones too), every data center
// and every sub-processor that is not a host, with all defaults written
// out. Loading the result gives an equal catalog.
func (c *Catalog) MarshalJSON() ([]byte, error) {
	doc := catalogJSON{DataCenters: make([]dataCenterJSON, 0, len(c.dcs))}
	for _, h := range c.providers {
		doc.Providers = append(doc.Providers, providerJSON(h))
	}
	for _, d := range c.dcs {
		j, err := d.toJSON()
		if err != nil {
			return nil, err
		}
		doc.DataCenters = append(doc.DataCenters, j)
	}
	for _, s := range c.subs[c.nHosts:] {
		j, err := s.toJSON()
		if err != nil {
			return nil, err
		}
		doc.SubProcessors = append(doc.SubProcessors, j)
	}
	return json.Marshal(doc)
}

// Contents returns a copy of everything the catalog holds, every default
// written out: the providers of its data centers (the default ones too),
// ordered by ID; the data centers, ordered by ID; and the sub-processors
// that are not hosts, in catalog order. [NewCatalogFrom] of the result
// gives an equal catalog; change the copy to derive another catalog.
func (c *Catalog) Contents() Contents {
	ct := Contents{Providers: slices.Clone(c.providers), DataCenters: c.All()}
	for _, s := range c.subs[c.nHosts:] {
		ct.SubProcessors = append(ct.SubProcessors, s.clone())
	}
	return ct
}

// DataCenter returns the data center with the given ID.
func (c *Catalog) DataCenter(id string) (DataCenter, bool) {
	i, ok := c.dcByID[id]
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

// InRegion returns the data centers of region r, whatever their status and
// effective date, ordered by ID.
func (c *Catalog) InRegion(r region.Region) []DataCenter {
	var out []DataCenter
	for _, d := range c.dcs {
		if d.Region == r {
			out = append(out, d.clone())
		}
	}
	return out
}

// SubProcessors returns every sub-processor: the hosts, one per provider
// of the catalog's data centers, ordered by ID; then the others in catalog
// order. Not-yet-effective ones are included: they are announced.
func (c *Catalog) SubProcessors() []SubProcessor {
	out := make([]SubProcessor, len(c.subs))
	for i, s := range c.subs {
		out[i] = s.clone()
	}
	return out
}

// SubProcessor returns the sub-processor with the given ID; a host's ID is
// its provider's token ("aws").
func (c *Catalog) SubProcessor(id string) (SubProcessor, bool) {
	i, ok := c.subByID[id]
	if !ok {
		return SubProcessor{}, false
	}
	return c.subs[i].clone(), true
}

// Scope returns what an access check needs of the sub-processor with the
// given ID: its kind, the regions it serves, whether it needs consent, and
// its effective date. It is a map read: it allocates nothing, and suits a
// check made on every request. An unknown ID is an error that matches
// [ErrUnknownSubProcessor].
func (c *Catalog) Scope(id string) (Scope, error) {
	i, ok := c.subByID[id]
	if !ok {
		return Scope{}, unknownSubProcessor(id)
	}
	return c.scopes[i], nil
}

// unknownSubProcessor is kept out of line so that Scope's success path
// stays small.
//
//go:noinline
func unknownSubProcessor(id string) error {
	return fmt.Errorf("%w %.80q", ErrUnknownSubProcessor, id)
}

// Host returns the host entry of provider p restricted to the data
// centers with the given IDs (an account's data center, backup and move
// target): its DataCenters, Countries, Regions and Effective are those of
// these data centers only. It reports false when p runs none of them.
func (c *Catalog) Host(p Provider, dataCenters ...string) (SubProcessor, bool) {
	i, ok := c.subByID[string(p)]
	if !ok || i >= c.nHosts {
		return SubProcessor{}, false
	}
	s := hostOf(c.providers[i], c.dcs, func(d DataCenter) bool { return slices.Contains(dataCenters, d.ID) })
	return s, len(s.DataCenters) > 0
}
