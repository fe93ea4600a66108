package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// today is the clock of every run: the date a page would carry without -date.
func today() time.Time { return time.Date(2026, 11, 29, 15, 4, 5, 0, time.UTC) }

func runCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut, today)
	return code, out.String(), errOut.String()
}

// TestGolden renders pages and notices and compares them with
// testdata/*.golden. Run with -update after a deliberate change, and review
// the diff.
func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"default-eu.md", []string{"-region", "EU"}},
		{"default-uk.md", []string{"-region", "uk", "-format", "markdown"}},
		{"default-us.json", []string{"-region", "US", "-format", "json"}},
		{"next-apac.md", []string{"-region", "APAC", "-catalog", "testdata/next.json", "-date", "2026-12-01"}},
		{"next-eu.md", []string{"-region", "EU", "-catalog", "testdata/next.json", "-date", "2026-12-01"}},
		{"notice-eu.md", []string{"-region", "EU", "-catalog", "testdata/next.json", "-since", "testdata/default.json", "-date", "2026-12-01"}},
		{"notice-uk.md", []string{"-region", "UK", "-catalog", "testdata/next.json", "-since", "testdata/default.json", "-date", "2026-12-01"}},
		{"notice-apac.json", []string{"-region", "APAC", "-catalog", "testdata/next.json", "-since", "testdata/default.json", "-date", "2026-12-01", "-format", "json"}},
		{"notice-none.md", []string{"-region", "US", "-since", "testdata/default.json"}},
		{"default.json", []string{"-export"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if tt.name == "default.json" {
				golden = "testdata/default.json" // also the old catalog of the notices
			}
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if diff := cmp.Diff(string(want), out); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// TestDefaultJSON keeps testdata/default.json, the old catalog of the
// notices, equal to the built-in catalog.
func TestDefaultJSON(t *testing.T) {
	b, err := os.ReadFile("testdata/default.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := provider.LoadCatalog(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(provider.DefaultCatalog().Contents(), c.Contents()); diff != "" {
		t.Errorf("testdata/default.json differs from DefaultCatalog (-want +got):\n%s", diff)
	}
}

// TestPageShowsOwnRegionOnly checks that a region's page names its own data
// centers and hosts, and no other region's data center.
func TestPageShowsOwnRegionOnly(t *testing.T) {
	c := provider.DefaultCatalog()
	for _, r := range region.All() {
		_, out, _ := runCmd("-region", r.String())
		for _, d := range c.All() {
			if got := strings.Contains(out, "| "+d.ID+" |"); got != (d.Region == r) {
				t.Errorf("%s page lists %s (region %s): %v", r, d.ID, d.Region, got)
			}
		}
		if !strings.Contains(out, "only with the customer's prior consent: 24/7 support subcontractors (`support-247`)") {
			t.Errorf("%s page does not say which sub-processors need consent:\n%s", r, out)
		}
	}
}

func TestUsageAndErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"datacenters": [{"id": "x", "provider": "aws", "region": "EU"}],
		"subprocessors": [{"id": "y", "name": "Y", "kind": "vendor"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no region", nil, 2, "-region is required"},
		{"unknown region", []string{"-region", "LATAM"}, 2, `unknown region "LATAM"`},
		{"unknown format", []string{"-region", "EU", "-format", "pdf"}, 2, `-format "pdf"`},
		{"bad date", []string{"-region", "EU", "-date", "1/2/2027"}, 2, "-date"},
		{"extra argument", []string{"-region", "EU", "more"}, 2, `unexpected argument "more"`},
		{"unknown flag", []string{"-region", "EU", "-lang", "de"}, 2, "-lang"},
		{"missing catalog", []string{"-region", "EU", "-catalog", filepath.Join(dir, "none.json")}, 1, "none.json"},
		{"bad catalog", []string{"-region", "EU", "-catalog", bad}, 1, `sub-processor #1 "y": unknown kind "vendor"`},
		{"bad old catalog", []string{"-region", "EU", "-since", bad}, 1, "bad.json"},
		{"export with region", []string{"-export", "-region", "EU"}, 2, "-export takes only -catalog"},
	}
	for _, tt := range tests {
		code, out, errOut := runCmd(tt.args...)
		if code != tt.code || out != "" || !strings.Contains(errOut, tt.says) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, nothing on stdout, stderr saying %q", tt.name, code, out, errOut, tt.code, tt.says)
		}
	}
}

// TestMarkupEscaped checks that text from the catalog cannot break the
// page's tables or add markup.
func TestMarkupEscaped(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(file, []byte(`{"datacenters": [{"id": "x", "provider": "aws", "region": "EU", "location": "a | b"}],
		"subprocessors": [{"id": "y", "name": "*Y* <b>", "kind": "service", "purpose": "[link](http://x) _z_ #1"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("-region", "EU", "-catalog", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`| x | Amazon Web Services, LLC | a \| b | not stated | not stated | yes |`,
		`| y | \*Y\* \<b\> | service | \[link\](http://x) \_z\_ \#1 | not needed | yes |`,
		"### \\*Y\\* \\<b\\> (`y`)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %q:\n%s", want, out)
		}
	}
}
