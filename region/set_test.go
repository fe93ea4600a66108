package region_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
)

func TestSet(t *testing.T) {
	tests := []struct {
		name    string
		set     region.Set
		regions []region.Region
		str     string
		json    string
	}{
		{"empty", 0, nil, "", `[]`},
		{"one", region.SetOf(region.UK), []region.Region{region.UK}, "UK", `["UK"]`},
		{"order of All", region.SetOf(region.APAC, region.US), []region.Region{region.US, region.APAC}, "US, APAC", `["US","APAC"]`},
		{"all", region.AllRegions, region.All(), "US, EU, UK, APAC", `["US","EU","UK","APAC"]`},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.regions, tt.set.Regions()); diff != "" {
			t.Errorf("%s: Regions() mismatch (-want +got):\n%s", tt.name, diff)
		}
		if got := tt.set.String(); got != tt.str {
			t.Errorf("%s: String() = %q, want %q", tt.name, got, tt.str)
		}
		if got := tt.set.Len(); got != len(tt.regions) {
			t.Errorf("%s: Len() = %d, want %d", tt.name, got, len(tt.regions))
		}
		for _, r := range region.All() {
			want := false
			for _, in := range tt.regions {
				want = want || in == r
			}
			if tt.set.Has(r) != want {
				t.Errorf("%s: Has(%s) = %v, want %v", tt.name, r, !want, want)
			}
		}
		b, err := json.Marshal(tt.set)
		if err != nil || string(b) != tt.json {
			t.Errorf("%s: Marshal = %s, %v; want %s", tt.name, b, err, tt.json)
		}
		var back region.Set
		if err := json.Unmarshal(b, &back); err != nil || back != tt.set {
			t.Errorf("%s: Unmarshal(%s) = %v, %v; want %v", tt.name, b, back, err, tt.set)
		}
	}
	if region.AllRegions.Has(0) || region.AllRegions.Has(9) {
		t.Error("AllRegions has an invalid region")
	}
	if got := region.SetOf(region.EU).With(region.US).Union(region.SetOf(region.UK)); got != region.SetOf(region.US, region.EU, region.UK) {
		t.Errorf("With/Union = %v", got)
	}
	var s region.Set
	if err := json.Unmarshal([]byte(`["EU","Mars"]`), &s); !errors.Is(err, region.ErrUnknownRegion) {
		t.Errorf("Unmarshal(Mars) error = %v, want ErrUnknownRegion", err)
	}
	if err := json.Unmarshal([]byte(`["EU","eu"]`), &s); err == nil {
		t.Error("Unmarshal accepted a region listed twice")
	}
	if _, err := json.Marshal(region.Set(0x80)); !errors.Is(err, region.ErrUnknownRegion) {
		t.Errorf("Marshal(invalid set) error = %v, want ErrUnknownRegion", err)
	}
}
