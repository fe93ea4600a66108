package region

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/text/language"
)

// Country is an ISO 3166-1 country (or XK, Kosovo), identified by its
// alpha-2 code. The zero Country is not a valid country.
type Country struct {
	// slot is 1 + the index of the two letters in AA..ZZ; 0 is the zero value.
	slot uint16
}

// countrySlots is the number of two-letter codes AA..ZZ, plus the zero slot.
const countrySlots = 26*26 + 1

// ErrInvalidCountry is returned for anything that is not an accepted country
// code: unknown, deprecated, grouping and private-use codes, and malformed
// text.
var ErrInvalidCountry = errors.New("region: invalid country")

// ParseCountry parses an ISO 3166-1 alpha-2 ("de"), alpha-3 ("DEU") or
// numeric ("276") code, in any case and with surrounding spaces. UK is
// accepted as an alias of GB, and XK (Kosovo) is accepted. Everything else,
// groupings such as EU, UN, EZ, 150 and 419 included, is an error that matches
// [ErrInvalidCountry].
func ParseCountry(s string) (Country, error) {
	t := strings.TrimSpace(s)
	if len(t) < 2 || len(t) > 3 {
		return Country{}, invalidCountry(s)
	}
	if strings.EqualFold(t, "UK") {
		t = "GB"
	}
	// x/text maps alpha-3 and numeric codes to alpha-2; whether the result
	// is a country is decided by this package's own table.
	r, err := language.ParseRegion(t)
	if err != nil {
		return Country{}, invalidCountry(s)
	}
	c, ok := countryFromAlpha2(r.String())
	if !ok || !knownCountry[c.slot] {
		return Country{}, invalidCountry(s)
	}
	return c, nil
}

func invalidCountry(s string) error {
	const max = 16
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Errorf("%w %q", ErrInvalidCountry, s)
}

// MustParseCountry is like [ParseCountry] but panics on an error. Use it
// for constants and in tests.
func MustParseCountry(s string) Country {
	c, err := ParseCountry(s)
	if err != nil {
		panic(err)
	}
	return c
}

// countryFromAlpha2 packs two upper-case ASCII letters; it does not check
// that they name a country.
func countryFromAlpha2(s string) (Country, bool) {
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		return Country{}, false
	}
	return Country{slot: uint16(s[0]-'A')*26 + uint16(s[1]-'A') + 1}, true
}

// IsValid reports whether c is a country accepted by [ParseCountry].
func (c Country) IsValid() bool {
	return c.slot != 0 && int(c.slot) < countrySlots && knownCountry[c.slot]
}

// Equal reports whether c and d are the same country. It is the same as
// c == d, and lets go-cmp compare values that hold a Country.
func (c Country) Equal(d Country) bool { return c == d }

// String returns the alpha-2 code, such as "DE"; the zero Country returns "".
func (c Country) String() string {
	if c.slot == 0 || int(c.slot) >= countrySlots {
		return ""
	}
	i := c.slot - 1
	return string([]byte{byte('A' + i/26), byte('A' + i%26)})
}

// Alpha3 returns the ISO 3166-1 alpha-3 code, such as "DEU" (XKK for Kosovo);
// the zero Country returns "".
func (c Country) Alpha3() string {
	if !c.IsValid() {
		return ""
	}
	return language.MustParseRegion(c.String()).ISO3()
}

// MarshalText returns the alpha-2 code; the zero Country marshals to an
// empty text.
func (c Country) MarshalText() ([]byte, error) {
	if c.slot != 0 && !c.IsValid() {
		return nil, fmt.Errorf("%w: slot %d", ErrInvalidCountry, c.slot)
	}
	return []byte(c.String()), nil
}

// UnmarshalText parses a code as [ParseCountry] does; an empty text is the
// zero Country.
func (c *Country) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*c = Country{}
		return nil
	}
	v, err := ParseCountry(string(text))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Countries returns every accepted country, ordered by alpha-2 code.
func Countries() []Country {
	out := make([]Country, 0, len(countryTable))
	for slot := range uint16(countrySlots) {
		if knownCountry[slot] {
			out = append(out, Country{slot: slot})
		}
	}
	return out
}

// Area returns the UN M49 area the country lies in, such as "Western
// Europe"; the nearest-region rules of [DefaultPolicy] are based on it.
func (c Country) Area() string {
	if !c.IsValid() {
		return ""
	}
	return countryArea[c.slot].String()
}

var knownCountry, countryArea = buildCountryIndex()

func buildCountryIndex() (known [countrySlots]bool, areas [countrySlots]area) {
	for _, e := range countryTable {
		c, ok := countryFromAlpha2(e.code)
		if !ok || known[c.slot] {
			panic("region: bad country table entry " + e.code)
		}
		known[c.slot] = true
		areas[c.slot] = e.area
	}
	return known, areas
}
