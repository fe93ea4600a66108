package postgres

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

// TestChangeJSON: the changes log's JSON that Apply writes (the audit log
// entries, residency.AppendEntry), encoding/json reads back as the same
// Change, for every kind of change and for strings that need escaping;
// and rows written before in the writer's own layout, with Go's field
// names and no field left out, still read back the same.
func TestChangeJSON(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.FixedZone("X", -3600))
	odd := "q\"b\\s/\n\t\r\x00\x1f\u2028é漢🙂"
	// An account ID may hold none of odd's control characters
	// (residency.ValidAccountID): the stores refuse them (Change.Check).
	oddID := "q\"b\\s/\u2028é漢🙂"
	var units []residency.Change
	for _, tc := range []struct {
		name string
		c    residency.Change
		want residency.Change // when it differs from c
	}{
		{name: "placement", c: residency.Change{
			Placement: residency.Placement{AccountID: "acme", Country: region.MustParseCountry("DE"), Region: region.EU, DataCenter: "linode-eu",
				Provider: provider.Linode, Backup: "aws-eu-west-1", Version: 1, Rule: "EU member state", Created: at, Updated: at},
			Event: residency.Event{Time: at, Kind: residency.Placed, AccountID: "acme", To: "linode-eu", Rule: "EU member state", Version: 1}}},
		{name: "move and agreement, odd strings, extreme times", c: residency.Change{
			Placement: residency.Placement{AccountID: oddID, Region: region.UK, DataCenter: odd, Provider: provider.AWS, Version: 7, Rule: odd, Transfer: odd,
				Created: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Updated: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
				Move: residency.Move{ID: odd, AccountID: oddID, From: "a", To: "b", ToRegion: region.APAC, Transfer: odd, Began: at}},
			Event:     residency.Event{Time: at, Kind: residency.MoveBegun, AccountID: oddID, From: odd, To: odd, Rule: odd, Reference: odd, MoveID: odd, Version: 7},
			Agreement: &residency.Agreement{Transfer: residency.Transfer{AccountID: oddID, To: region.US, Reference: odd, ExpiresAt: at}, Granted: at}}},
		{name: "consent, odd strings", c: residency.Change{
			Placement: residency.Placement{AccountID: oddID, Region: region.EU, DataCenter: "linode-eu", Version: 3},
			Event:     residency.Event{Time: at, Kind: residency.AccessRevoked, AccountID: oddID, To: odd, Reference: odd, Version: 3},
			Consent: &residency.ConsentRecord{Consent: residency.Consent{AccountID: oddID, SubProcessor: odd, Reference: odd, ExpiresAt: at},
				Granted: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Revoked: at}}},
		{name: "consent that stands", c: residency.Change{
			Placement: residency.Placement{AccountID: "acme", Region: region.EU, DataCenter: "linode-eu", Version: 2},
			Event:     residency.Event{Time: at, Kind: residency.AccessGranted, AccountID: "acme", To: "support-247", Reference: "C-1", Version: 2},
			Consent:   &residency.ConsentRecord{Consent: residency.Consent{AccountID: "acme", SubProcessor: "support-247", Reference: "C-1"}, Granted: at}}},
		{name: "objection, odd strings", c: residency.Change{
			Placement: residency.Placement{AccountID: oddID, Region: region.EU, DataCenter: "linode-eu", Version: 4},
			Event:     residency.Event{Time: at, Kind: residency.ObjectionWithdrawn, AccountID: oddID, To: odd, Reference: odd, Version: 4},
			Objection: &residency.ObjectionRecord{Objection: residency.Objection{AccountID: oddID, SubProcessor: odd, Reference: odd},
				Raised: at, Withdrawn: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}}},
		{name: "deletion ending an objection that stood", c: residency.Change{
			Placement: residency.Placement{AccountID: "acme", Region: region.EU, Version: 5},
			Event:     residency.Event{Time: at, Kind: residency.Deleted, AccountID: "acme", From: "linode-eu", Rule: "trial expired", Version: 5},
			Objection: &residency.ObjectionRecord{Objection: residency.Objection{AccountID: "acme", SubProcessor: "twilio", Reference: "O-1"}, Raised: at}}},
		{name: "data center", c: residency.Change{DataCenter: &residency.DataCenterState{ID: odd, Status: provider.Draining, Changed: at, Version: 2}}},
		{name: "invalid UTF-8 is replaced as encoding/json does",
			c:    residency.Change{DataCenter: &residency.DataCenterState{ID: "a\xffb", Status: provider.Active, Version: 1}},
			want: residency.Change{DataCenter: &residency.DataCenterState{ID: "a\ufffdb", Status: provider.Active, Version: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, entries, err := (&Store{}).applyArgs([]residency.Change{tc.c}, nil)
			if err != nil {
				t.Fatal(err)
			}
			raw := []byte(args[4].(string))
			var got []residency.Change
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("%v in %s", err, raw)
			}
			want := tc.c
			if tc.want.DataCenter != nil {
				want = tc.want
			}
			if diff := cmp.Diff([]residency.Change{want}, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s\n%s", diff, raw)
			}
			entry, err := residency.EncodeEntry(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if want := "[" + string(entry) + "]"; string(raw) != want {
				t.Errorf("changes log JSON = %s, want the entry %s", raw, want)
			}
			// What the hasher hashes is the entry the log holds.
			if len(entries) != 1 || !bytes.Equal(entries[0], entry) {
				t.Errorf("entries for the hasher = %q, want [%s]", entries, entry)
			}
		})
		units = append(units, tc.c)
	}
	// A unit of them all: its entries, joined, are the log's JSON.
	args, entries, err := (&Store{}).applyArgs(units, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := "[" + string(bytes.Join(entries, []byte(","))) + "]"; len(entries) != len(units) || got != args[4].(string) {
		t.Errorf("%d entries for the hasher, joined %s; want %d, the log's JSON %s", len(entries), got, len(units), args[4])
	}
	// A row of the layout written before, by this package's own writer.
	old := `{"Placement":{"account_id":"acme","country":"","region":"EU","datacenter":"linode-eu","provider":"linode","backup":"","version":2,` +
		`"rule":"EU member state","transfer":"","created":"2026-11-28T09:00:00.123456789-01:00","updated":"2026-11-28T09:00:00.123456789-01:00"},` +
		`"Event":{"time":"2026-11-28T09:00:00.123456789-01:00","kind":"access-granted","account_id":"acme","from":"","to":"support-247","rule":"","reference":"C-1","move_id":"","version":2},` +
		`"Consent":{"account_id":"acme","subprocessor":"support-247","reference":"C-1","expires_at":"0001-01-01T00:00:00Z","granted":"2026-11-28T09:00:00.123456789-01:00","revoked":"0001-01-01T00:00:00Z"}}`
	var got residency.Change
	if err := json.Unmarshal([]byte(old), &got); err != nil {
		t.Fatal(err)
	}
	want := residency.Change{
		Placement: residency.Placement{AccountID: "acme", Region: region.EU, DataCenter: "linode-eu", Provider: provider.Linode, Version: 2, Rule: "EU member state", Created: at, Updated: at},
		Event:     residency.Event{Time: at, Kind: residency.AccessGranted, AccountID: "acme", To: "support-247", Reference: "C-1", Version: 2},
		Consent:   &residency.ConsentRecord{Consent: residency.Consent{AccountID: "acme", SubProcessor: "support-247", Reference: "C-1"}, Granted: at},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a row of the former layout reads back differently (-want +got):\n%s", diff)
	}
	old = `{"DataCenter":{"id":"linode-us","status":"draining","changed":"2026-11-28T09:00:00.123456789-01:00","version":3}}`
	got = residency.Change{}
	if err := json.Unmarshal([]byte(old), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(residency.Change{DataCenter: &residency.DataCenterState{ID: "linode-us", Status: provider.Draining, Changed: at, Version: 3}}, got); diff != "" {
		t.Errorf("a data center row of the former layout reads back differently (-want +got):\n%s", diff)
	}
	far := residency.Change{DataCenter: &residency.DataCenterState{ID: "x", Status: provider.Active, Changed: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Version: 1}}
	if _, _, err := (&Store{}).applyArgs([]residency.Change{far}, nil); err == nil || !strings.Contains(err.Error(), "year") {
		t.Errorf("year 10000: error %v, want one naming the year", err)
	}
}
