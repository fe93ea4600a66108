package region_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

var update = flag.Bool("update", false, "rewrite testdata/default_policy.md and the README's country table")

func TestDefaultPolicyNotableCases(t *testing.T) {
	tests := []struct {
		country string
		want    region.Region
		rule    string
		reason  string
	}{
		{"DE", region.EU, "EU member state", ""},
		{"CY", region.EU, "EU member state", "in Western Asia, but an EU member"},
		{"NO", region.EU, "EEA member", ""},
		{"LI", region.EU, "EEA member", ""},
		{"RE", region.EU, "EU outermost region", "Réunion, in Africa"},
		{"GF", region.EU, "EU outermost region", "French Guiana, in South America"},
		{"MF", region.EU, "EU outermost region", "Saint Martin, in the Caribbean"},
		{"AX", region.EU, "part of an EU member state (Åland, Finland)", ""},
		{"GB", region.UK, "United Kingdom", ""},
		{"UK", region.UK, "United Kingdom", "the alias resolves as GB"},
		{"JE", region.UK, "Crown Dependency", ""},
		{"IM", region.UK, "Crown Dependency", ""},
		{"GI", region.EU, "nearest region: Europe", "British Overseas Territory, not a Crown Dependency"},
		{"CH", region.EU, "nearest region: Europe", "not in the EU or EEA"},
		{"XK", region.EU, "nearest region: Europe", ""},
		{"RU", region.EU, "nearest region: Europe", ""},
		{"US", region.US, "United States", ""},
		{"PR", region.US, "US territory", ""},
		{"GU", region.US, "US territory", "in Oceania, but a US territory"},
		{"AS", region.US, "US territory", "in Polynesia, but a US territory"},
		{"CA", region.US, "nearest region: Americas", ""},
		{"BR", region.US, "nearest region: Americas", ""},
		{"GL", region.US, "nearest region: Americas", "Danish, but outside the EU, in North America"},
		{"BL", region.US, "nearest region: Americas", "no longer an EU outermost region"},
		{"JP", region.APAC, "APAC: East Asia", ""},
		{"HK", region.APAC, "APAC: East Asia", ""},
		{"SG", region.APAC, "APAC: South-East Asia", ""},
		{"IN", region.APAC, "APAC: South Asia", ""},
		{"AU", region.APAC, "APAC: Oceania", ""},
		{"NZ", region.APAC, "APAC: Oceania", ""},
		{"ZA", region.EU, "nearest region: Africa", ""},
		{"IO", region.EU, "nearest region: Africa", "M49 lists the British Indian Ocean Territory in Eastern Africa"},
		{"TR", region.EU, "nearest region: Western and Central Asia", ""},
		{"KZ", region.EU, "nearest region: Western and Central Asia", ""},
		{"AQ", region.APAC, "nearest region: Antarctica, served from Oceania", ""},
	}
	for _, tt := range tests {
		got, err := region.DefaultPolicy().Resolve(region.MustParseCountry(tt.country))
		if err != nil {
			t.Errorf("Resolve(%s): %v", tt.country, err)
			continue
		}
		if got.Region != tt.want || got.Rule != tt.rule {
			t.Errorf("Resolve(%s) = %v %q; want %v %q %s", tt.country, got.Region, got.Rule, tt.want, tt.rule, tt.reason)
		}
	}
}

// TestDefaultPolicyTable checks the rule of every one of the 250 countries
// against testdata/default_policy.md, the reviewed table that the README
// prints too. Run with -update after a deliberate change, and review the diff.
func TestDefaultPolicyTable(t *testing.T) {
	table := renderPolicyTable(t, region.DefaultPolicy())
	if n := strings.Count(table, "\n| "); n != 250 {
		t.Fatalf("table has %d countries, want 250", n)
	}
	const golden = "testdata/default_policy.md"
	const readme = "../README.md"
	const begin, end = "<!-- country table: begin -->\n", "<!-- country table: end -->"
	if *update {
		if err := os.WriteFile(golden, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
		doc, err := os.ReadFile(readme)
		if err != nil {
			t.Fatal(err)
		}
		before, rest, ok1 := strings.Cut(string(doc), begin)
		_, after, ok2 := strings.Cut(rest, end)
		if !ok1 || !ok2 {
			t.Fatalf("%s has no country table markers", readme)
		}
		if err := os.WriteFile(readme, []byte(before+begin+table+end+after), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), table); diff != "" {
		t.Errorf("DefaultPolicy mismatch with %s (-want +got):\n%s", golden, diff)
	}
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), begin+table+end) {
		t.Errorf("%s does not show the current country table; run go test ./region -update", readme)
	}
}

func renderPolicyTable(t *testing.T, p *region.Policy) string {
	t.Helper()
	names := display.English.Regions()
	var b strings.Builder
	b.WriteString("| code | country | M49 area | region | rule |\n|---|---|---|---|---|\n")
	for _, c := range region.Countries() {
		a, err := p.Resolve(c)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", c, err)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c, names.Name(language.MustParseRegion(c.String())), c.Area(), a.Region, a.Rule)
	}
	return b.String()
}

func TestStrictPolicy(t *testing.T) {
	strict := region.StrictPolicy()
	for _, c := range region.Countries() {
		def, err := region.DefaultPolicy().Resolve(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := strict.Resolve(c)
		nearest := strings.HasPrefix(def.Rule, "nearest region")
		switch {
		case nearest && !errors.Is(err, region.ErrNoRegion):
			t.Errorf("Strict Resolve(%s) = %v, %v; want ErrNoRegion", c, got, err)
		case !nearest && (err != nil || got != def):
			t.Errorf("Strict Resolve(%s) = %v, %v; want %v", c, got, err, def)
		}
	}
	if n := len(strict.Assignments()); n != 101 {
		t.Errorf("strict policy has %d rules, want 101", n)
	}
}

func TestPolicyWith(t *testing.T) {
	ch := region.MustParseCountry("CH")
	custom, err := region.DefaultPolicy().With(region.Assignment{Country: ch, Region: region.UK, Rule: "contract 42"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := custom.Resolve(ch)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(region.Assignment{Country: ch, Region: region.UK, Rule: "contract 42"}, got); diff != "" {
		t.Errorf("Resolve(CH) mismatch (-want +got):\n%s", diff)
	}
	if orig, _ := region.DefaultPolicy().Resolve(ch); orig.Region != region.EU {
		t.Errorf("With changed the default policy: CH -> %v", orig.Region)
	}
	bad := []struct {
		name string
		a    region.Assignment
	}{
		{"zero country", region.Assignment{Region: region.EU, Rule: "x"}},
		{"zero region", region.Assignment{Country: ch, Rule: "x"}},
		{"invalid region", region.Assignment{Country: ch, Region: 7, Rule: "x"}},
		{"empty rule", region.Assignment{Country: ch, Region: region.EU, Rule: " "}},
	}
	for _, tt := range bad {
		if p, err := region.DefaultPolicy().With(tt.a); !errors.Is(err, region.ErrInvalidAssignment) || p != nil {
			t.Errorf("%s: With() = %v, %v; want ErrInvalidAssignment", tt.name, p, err)
		}
	}
	a := region.Assignment{Country: ch, Region: region.EU, Rule: "x"}
	if _, err := region.NewPolicy(a, a); !errors.Is(err, region.ErrInvalidAssignment) {
		t.Errorf("NewPolicy(duplicate) error = %v, want ErrInvalidAssignment", err)
	}
}

func TestNewPolicy(t *testing.T) {
	p, err := region.NewPolicy(region.Assignment{Country: region.MustParseCountry("JP"), Region: region.APAC, Rule: "only Japan"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Resolve(region.MustParseCountry("DE")); !errors.Is(err, region.ErrNoRegion) {
		t.Errorf("Resolve(DE) error = %v, want ErrNoRegion", err)
	}
	if _, err := p.Resolve(region.Country{}); !errors.Is(err, region.ErrNoRegion) {
		t.Errorf("Resolve(zero) error = %v, want ErrNoRegion", err)
	}
	if got := len(p.Assignments()); got != 1 {
		t.Errorf("len(Assignments()) = %d, want 1", got)
	}
}

// TestSharedPoliciesCannotBeChanged shows that what a caller does to the
// policy it got (issue 7) cannot change what the next caller gets.
func TestSharedPoliciesCannotBeChanged(t *testing.T) {
	de := region.MustParseCountry("DE")
	for name, get := range map[string]func() *region.Policy{"DefaultPolicy": region.DefaultPolicy, "StrictPolicy": region.StrictPolicy} {
		want := get().Assignments()
		p := get()
		*p = region.Policy{} // overwrite the value the handle points to
		if _, err := p.Resolve(de); !errors.Is(err, region.ErrNoRegion) {
			t.Errorf("%s: zeroed handle Resolve(DE) error = %v, want ErrNoRegion", name, err)
		}
		as := get().Assignments()
		as[0].Region, as[0].Rule = region.US, "changed"
		*get() = *region.StrictPolicy()
		if diff := cmp.Diff(want, get().Assignments()); diff != "" {
			t.Errorf("%s changed by a caller (-want +got):\n%s", name, diff)
		}
		if a, err := get().Resolve(de); err != nil || a.Region != region.EU {
			t.Errorf("%s: Resolve(DE) = %v, %v after a caller's changes", name, a, err)
		}
	}
	var zero region.Policy
	if zero.Assignments() != nil {
		t.Error("zero Policy has assignments")
	}
}
