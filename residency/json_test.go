package residency_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// TestJSON encodes every exported type that is serialized, once with every
// field set and once with the optional ones empty, against golden files:
// names in snake_case, times in RFC 3339, regions by name, kinds and
// statuses as strings, errors as their text. Types without an error field
// decode back to the same value.
func TestJSON(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	later := at.Add(90 * time.Minute)
	move := residency.Move{ID: "mv-1", AccountID: "acme", From: "linode-eu", To: "aws-us-west-1", ToRegion: region.US, Transfer: "T-1", Began: at}
	tests := []struct {
		name      string
		value     any
		roundTrip bool
	}{
		{"place_request", []residency.PlaceRequest{
			{AccountID: "acme", Country: "DE", Region: region.EU},
			{AccountID: "globex", Country: "GB"},
		}, true},
		{"placement", []residency.Placement{
			{AccountID: "acme", Country: region.MustParseCountry("DE"), Region: region.EU, DataCenter: "linode-eu", Provider: provider.Linode,
				Backup: "aws-eu-west-1", Version: 3, Rule: "EU member state", Created: at, Updated: later, Move: move},
			{AccountID: "globex", Region: region.UK, DataCenter: "linode-uk", Provider: provider.Linode, Version: 1, Rule: "customer's choice", Created: at, Updated: at},
		}, true},
		{"move", move, true},
		{"transfer", []residency.Transfer{
			{AccountID: "acme", To: region.US, Reference: "T-1", ExpiresAt: at.AddDate(1, 0, 0)},
			{AccountID: "acme", To: region.UK, Reference: "T-2"},
		}, true},
		{"agreement", []residency.Agreement{
			{Transfer: residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-1", ExpiresAt: at.AddDate(1, 0, 0)}, Granted: at, Revoked: later},
			{Transfer: residency.Transfer{AccountID: "acme", To: region.UK, Reference: "T-2"}, Granted: at},
		}, true},
		{"event", []residency.Event{
			{Time: at, Kind: residency.Placed, AccountID: "acme", To: "linode-eu", Rule: "EU member state", Version: 1},
			{Time: at, Kind: residency.TransferGranted, AccountID: "acme", From: "EU", To: "US", Reference: "T-1", Version: 2},
			{Time: later, Kind: residency.MoveCompleted, AccountID: "acme", From: "linode-eu", To: "aws-us-west-1", Rule: `transfer agreement "T-1"`, Reference: "T-1", MoveID: "mv-1", Version: 4},
		}, true},
		{"report", []residency.Report{
			{At: at, Accounts: 3, Moves: 1,
				Violations: []residency.Finding{{AccountID: "acme", DataCenter: "mars-1", Region: region.EU, Problem: "data center mars-1 is not in the catalog"}},
				Warnings:   []residency.Finding{{DataCenter: "linode-uk", Region: region.UK, Problem: "region UK has one active data center: 1 accounts have no backup"}}},
			{At: at},
		}, true},
		{"evacuation_plan", []residency.EvacuationPlan{
			{DataCenter: "linode-eu",
				Moves: []residency.PlannedMove{{AccountID: "acme", From: "linode-eu", To: "websupport-eu"}},
				Stranded: []residency.Stranded{
					{AccountID: "globex", MoveID: "mv-2", Err: fmt.Errorf("%w: account %q is moving from aws-eu-west-1 into linode-eu (move mv-2): abort the move", residency.ErrMoveInProgress, "globex")},
					{AccountID: "initech", Err: fmt.Errorf("%w: account %q: region EU has no other active data center than linode-eu", residency.ErrNoDataCenter, "initech")},
				}},
			{DataCenter: "linode-uk"},
		}, false},
		{"datacenter_state", residency.DataCenterState{ID: "linode-eu", Status: provider.Draining, Changed: at, Version: 2}, true},
		{"import_row", []residency.ImportRow{
			{AccountID: "acme", Country: "DE", Region: region.EU, DataCenter: "linode-eu"},
			{AccountID: "globex", Country: "GB"},
		}, true},
		{"consent", []residency.ConsentRecord{
			{Consent: residency.Consent{AccountID: "acme", SubProcessor: "support-247", Reference: "C-1", ExpiresAt: at.AddDate(0, 1, 0)}, Granted: at, Revoked: later},
			{Consent: residency.Consent{AccountID: "acme", SubProcessor: "support-247", Reference: "C-2"}, Granted: at},
		}, true},
		{"objection", []residency.ObjectionRecord{
			{Objection: residency.Objection{AccountID: "acme", SubProcessor: "twilio", Reference: "O-1"}, Raised: at, Withdrawn: later},
			{Objection: residency.Objection{AccountID: "acme", SubProcessor: "quality-unit-ukraine", Reference: "O-2"}, Raised: at},
		}, true},
		{"import_result", residency.ImportResult{Imported: 2, Existing: 1,
			Refused: []residency.RowError{{Row: 4, AccountID: "", Err: fmt.Errorf("%w: empty account ID", residency.ErrInvalidAccount)}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.MarshalIndent(tt.value, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("json", tt.name+".json"), append(got, '\n'))
			if !tt.roundTrip {
				return
			}
			back := reflect.New(reflect.TypeOf(tt.value))
			dec := json.NewDecoder(bytes.NewReader(got))
			dec.DisallowUnknownFields()
			if err := dec.Decode(back.Interface()); err != nil {
				t.Fatalf("decoding %s: %v", got, err)
			}
			if diff := cmp.Diff(tt.value, back.Elem().Interface()); diff != "" {
				t.Errorf("JSON round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJSONNames checks that every field of the serialized types has a
// snake_case JSON name, so that a field added later cannot slip into JSON
// under its Go name when the golden files are rewritten.
func TestJSONNames(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	marshaler := reflect.TypeFor[json.Marshaler]()
	for _, typ := range []reflect.Type{
		reflect.TypeFor[residency.PlaceRequest](), reflect.TypeFor[residency.Placement](), reflect.TypeFor[residency.Move](),
		reflect.TypeFor[residency.Transfer](), reflect.TypeFor[residency.Agreement](), reflect.TypeFor[residency.Event](),
		reflect.TypeFor[residency.Report](), reflect.TypeFor[residency.Finding](), reflect.TypeFor[residency.EvacuationPlan](),
		reflect.TypeFor[residency.PlannedMove](), reflect.TypeFor[residency.Stranded](), reflect.TypeFor[residency.DataCenterState](),
		reflect.TypeFor[residency.ImportRow](), reflect.TypeFor[residency.ImportResult](), reflect.TypeFor[residency.RowError](),
		reflect.TypeFor[residency.Consent](), reflect.TypeFor[residency.ConsentRecord](),
		reflect.TypeFor[residency.Objection](), reflect.TypeFor[residency.ObjectionRecord](),
	} {
		if typ.Implements(marshaler) {
			continue // its MarshalJSON names the fields, checked by the golden files
		}
		for f := range typ.Fields() {
			if f.Anonymous {
				continue // its fields are checked with its own type
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !snake.MatchString(name) {
				t.Errorf("%s.%s has JSON name %q; want snake_case", typ.Name(), f.Name, name)
			}
		}
	}
}
