package region_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/language"
)

func TestParseCountry(t *testing.T) {
	tests := []struct {
		in, want string
		reason   string
	}{
		{"de", "DE", "alpha-2, lower case"},
		{"DEU", "DE", "alpha-3"},
		{"276", "DE", "numeric"},
		{" fr ", "FR", "surrounding spaces"},
		{"\tgbr\n", "GB", "alpha-3 with white space"},
		{"UK", "GB", "UK is an alias of GB"},
		{"uk", "GB", "the alias in any case"},
		{"826", "GB", "numeric GB"},
		{"XK", "XK", "Kosovo is accepted"},
		{"xkk", "XK", "Kosovo's alpha-3 as x/text knows it"},
		{"840", "US", "numeric US"},
		{"usa", "US", "alpha-3 lower case"},
		{"Tw", "TW", "mixed case"},
		{"AQ", "AQ", "Antarctica is an ISO 3166-1 code"},
		{"SS", "SS", "South Sudan, one of the newest codes"},
		{"BQ", "BQ", "Bonaire, Sint Eustatius and Saba"},
		{"248", "AX", "numeric Åland"},
	}
	for _, tt := range tests {
		got, err := region.ParseCountry(tt.in)
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseCountry(%q) = %v, %v; want %s (%s)", tt.in, got, err, tt.want, tt.reason)
		}
	}
}

func TestParseCountryRefuses(t *testing.T) {
	bad := []struct{ in, reason string }{
		{"", "empty"},
		{"   ", "only spaces"},
		{"EU", "grouping, also not a country for CLDR"},
		{"UN", "grouping that x/text calls a country"},
		{"EZ", "euro zone, a grouping x/text calls a country"},
		{"150", "M49 Europe"},
		{"419", "M49 Latin America"},
		{"001", "M49 World"},
		{"AA", "private use"},
		{"QM", "private use"},
		{"QO", "private use (Outlying Oceania)"},
		{"QZ", "private use"},
		{"XA", "private use"},
		{"XZ", "private use"},
		{"ZZ", "unknown region"},
		{"ZR", "deprecated (Zaire)"},
		{"YU", "deprecated (Yugoslavia)"},
		{"CS", "deprecated (Serbia and Montenegro)"},
		{"AN", "deprecated (Netherlands Antilles)"},
		{"SU", "deprecated (USSR)"},
		{"DD", "deprecated (East Germany)"},
		{"FX", "deprecated (Metropolitan France)"},
		{"ZAR", "alpha-3 of a deprecated code"},
		{"IC", "exceptionally reserved (Canary Islands)"},
		{"EA", "exceptionally reserved (Ceuta, Melilla)"},
		{"DG", "exceptionally reserved (Diego Garcia)"},
		{"AC", "exceptionally reserved (Ascension)"},
		{"XKX", "not an alpha-3 code"},
		{"0276", "four digits"},
		{"27", "two digits"},
		{"D", "one letter"},
		{"DEUT", "four letters"},
		{"D E", "inner space"},
		{"de-DE", "a language tag"},
		{"Ü", "non-ASCII"},
		{"\xff\xfe", "invalid UTF-8"},
		{strings.Repeat("A", 1000), "oversized"},
	}
	for _, tt := range bad {
		got, err := region.ParseCountry(tt.in)
		if !errors.Is(err, region.ErrInvalidCountry) || got != (region.Country{}) {
			t.Errorf("ParseCountry(%q) = %v, %v; want ErrInvalidCountry (%s)", tt.in, got, err, tt.reason)
		}
	}
}

func TestCountries(t *testing.T) {
	all := region.Countries()
	if len(all) != 250 {
		t.Fatalf("len(Countries()) = %d, want 249 ISO 3166-1 countries + XK", len(all))
	}
	for _, c := range all {
		// Every listed code is a country for x/text too, and round-trips.
		r, err := language.ParseRegion(c.String())
		if err != nil || !r.IsCountry() {
			t.Errorf("%s: x/text ParseRegion = %v, %v", c, r, err)
		}
		if back := region.MustParseCountry(c.String()); back != c {
			t.Errorf("ParseCountry(%s) = %v", c, back)
		}
		if back := region.MustParseCountry(c.Alpha3()); back != c {
			t.Errorf("ParseCountry(Alpha3 %s = %s) = %v", c, c.Alpha3(), back)
		}
		if c.Area() == "" {
			t.Errorf("%s has no area", c)
		}
	}
}

func TestCountryZero(t *testing.T) {
	var zero region.Country
	if zero.IsValid() || zero.String() != "" || zero.Alpha3() != "" || zero.Area() != "" {
		t.Errorf("zero Country: IsValid=%v String=%q Alpha3=%q Area=%q", zero.IsValid(), zero, zero.Alpha3(), zero.Area())
	}
}

func TestCountryJSONRoundTrip(t *testing.T) {
	type doc struct {
		Country region.Country `json:"country"`
		Other   region.Country `json:"other"`
	}
	in := doc{Country: region.MustParseCountry("NZL")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"country":"NZ","other":""}` {
		t.Errorf("json.Marshal = %s", b)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in.Country.String(), out.Country.String()); diff != "" || out != in {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"country":"EU"}`), &out); !errors.Is(err, region.ErrInvalidCountry) {
		t.Errorf("Unmarshal(EU) error = %v, want ErrInvalidCountry", err)
	}
}

func FuzzParseCountry(f *testing.F) {
	// Seeds: the three code forms, the UK alias, groupings, private use,
	// deprecated codes, white space and junk.
	for _, s := range []string{"de", "DEU", "276", " fr ", "UK", "XK", "EU", "UN", "150", "QM", "ZZ", "ZR", "0276", "\xff", "d\u00e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := region.ParseCountry(s)
		if err != nil {
			if !errors.Is(err, region.ErrInvalidCountry) || c != (region.Country{}) {
				t.Fatalf("ParseCountry(%q) = %v, %v: want ErrInvalidCountry and the zero Country", s, c, err)
			}
			return
		}
		if !c.IsValid() {
			t.Fatalf("ParseCountry(%q) = invalid %v", s, c)
		}
		if back, err := region.ParseCountry(c.String()); err != nil || back != c {
			t.Fatalf("ParseCountry(%q.String()) = %v, %v", c, back, err)
		}
		text, _ := c.MarshalText()
		var u region.Country
		if err := u.UnmarshalText(text); err != nil || u != c {
			t.Fatalf("UnmarshalText(MarshalText(%v)) = %v, %v", c, u, err)
		}
		if _, err := region.DefaultPolicy().Resolve(c); err != nil {
			t.Fatalf("DefaultPolicy().Resolve(%v): %v", c, err)
		}
	})
}
