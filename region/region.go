package region

import (
	"errors"
	"fmt"
	"strings"
)

// Region is a residency region: where an account's data lives. The zero
// Region is not valid; it means "no region chosen".
type Region uint8

// The four residency regions, in the order [All] returns them.
const (
	US Region = iota + 1
	EU
	UK
	APAC
)

// ErrUnknownRegion is returned for a region name that is not one of the four.
var ErrUnknownRegion = errors.New("region: unknown region")

var regionNames = [...]string{US: "US", EU: "EU", UK: "UK", APAC: "APAC"}

// All returns the four regions: US, EU, UK and APAC.
func All() []Region { return []Region{US, EU, UK, APAC} }

// Parse returns the region named s, ignoring case and surrounding spaces
// ("eu", " APAC "). Anything else is an error that matches [ErrUnknownRegion].
func Parse(s string) (Region, error) {
	t := strings.TrimSpace(s)
	for r := US; r <= APAC; r++ {
		if strings.EqualFold(t, regionNames[r]) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownRegion, s)
}

// MustParse is like [Parse] but panics on an error. Use it for constants
// and in tests.
func MustParse(s string) Region {
	r, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return r
}

// IsValid reports whether r is one of the four regions.
func (r Region) IsValid() bool { return r >= US && r <= APAC }

// String returns "US", "EU", "UK" or "APAC"; the zero Region returns "" and
// any other value "Region(n)".
func (r Region) String() string {
	switch {
	case r.IsValid():
		return regionNames[r]
	case r == 0:
		return ""
	default:
		return fmt.Sprintf("Region(%d)", uint8(r))
	}
}

// MarshalText returns the region's name; the zero Region marshals to an
// empty text so that optional fields round-trip.
func (r Region) MarshalText() ([]byte, error) {
	if r != 0 && !r.IsValid() {
		return nil, fmt.Errorf("%w %d", ErrUnknownRegion, uint8(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText parses a region name as [Parse] does; an empty text is the
// zero Region.
func (r *Region) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*r = 0
		return nil
	}
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
