package region_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want region.Region
	}{
		{"US", region.US}, {"us", region.US}, {" eu ", region.EU}, {"Uk", region.UK}, {"apac", region.APAC}, {"APAC\n", region.APAC},
	}
	for _, tt := range tests {
		got, err := region.Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "E U", "Europe", "GB", "ASIA", "U", "usa", "APAC2", "\x00"} {
		if got, err := region.Parse(bad); !errors.Is(err, region.ErrUnknownRegion) {
			t.Errorf("Parse(%q) = %v, %v; want ErrUnknownRegion", bad, got, err)
		}
	}
}

func TestAll(t *testing.T) {
	var got []string
	for _, r := range region.All() {
		got = append(got, r.String())
	}
	if diff := cmp.Diff([]string{"US", "EU", "UK", "APAC"}, got); diff != "" {
		t.Errorf("All() mismatch (-want +got):\n%s", diff)
	}
}

func TestRegionZeroAndInvalid(t *testing.T) {
	var zero region.Region
	if zero.IsValid() || zero.String() != "" {
		t.Errorf("zero Region: IsValid=%v String=%q", zero.IsValid(), zero.String())
	}
	bad := region.Region(9)
	if bad.IsValid() || bad.String() != "Region(9)" {
		t.Errorf("Region(9): IsValid=%v String=%q", bad.IsValid(), bad.String())
	}
	if _, err := bad.MarshalText(); !errors.Is(err, region.ErrUnknownRegion) {
		t.Errorf("Region(9).MarshalText() error = %v, want ErrUnknownRegion", err)
	}
}

func TestRegionJSONRoundTrip(t *testing.T) {
	type doc struct {
		Home     region.Region `json:"home"`
		Optional region.Region `json:"optional"`
	}
	in := doc{Home: region.APAC}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"home":"APAC","optional":""}` {
		t.Errorf("json.Marshal = %s", b)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"home":"Mars"}`), &out); !errors.Is(err, region.ErrUnknownRegion) {
		t.Errorf("Unmarshal(Mars) error = %v, want ErrUnknownRegion", err)
	}
}

func FuzzParse(f *testing.F) {
	// Seeds: every name in several cases, near misses and junk.
	for _, s := range []string{"US", "eu", " Uk ", "aPaC", "", "EUR", "E\u0301U", "\xff", "US\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := region.Parse(s)
		if err != nil {
			if !errors.Is(err, region.ErrUnknownRegion) || r != 0 {
				t.Fatalf("Parse(%q) = %v, %v: error must be ErrUnknownRegion with zero region", s, r, err)
			}
			return
		}
		if !r.IsValid() {
			t.Fatalf("Parse(%q) = invalid %v", s, r)
		}
		if back := region.MustParse(r.String()); back != r {
			t.Fatalf("Parse(%q.String()) = %v, want %v", r, back, r)
		}
		text, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var u region.Region
		if err := u.UnmarshalText(text); err != nil || u != r {
			t.Fatalf("UnmarshalText(MarshalText(%v)) = %v, %v", r, u, err)
		}
	})
}
