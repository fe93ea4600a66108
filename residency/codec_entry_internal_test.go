package residency

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
)

// FuzzStoredEntry: any bytes read from a file's log either fail with
// ErrCorrupt or give a JSON entry that DecodeEntry reads; the change they
// hold, stored again, reads back as the same entry.
func FuzzStoredEntry(f *testing.F) {
	at := time.Date(2026, 11, 29, 6, 0, 0, 1, time.UTC)
	p := Placement{AccountID: "acme", Country: region.MustParseCountry("DE"), Region: region.EU, DataCenter: "linode-eu",
		Provider: provider.Linode, Version: 2, Rule: "EU member state", Created: at, Updated: at,
		Move: Move{ID: "m", AccountID: "acme", From: "linode-eu", To: "aws-eu-west-1", ToRegion: region.EU, Began: at}}
	for _, c := range []Change{
		{Placement: p, Event: Event{Time: at, Kind: MoveBegun, AccountID: "acme", From: "linode-eu", To: "aws-eu-west-1", MoveID: "m", Version: 2},
			Agreement: &Agreement{Transfer: Transfer{AccountID: "acme", To: region.US, Reference: "T"}, Granted: at}},
		{DataCenter: &DataCenterState{ID: "linode-eu", Status: provider.Draining, Changed: at, Version: 3}},
	} {
		js, err := EncodeEntry(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(appendStoredEntry(nil, &c, js))
		f.Add(js)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		js, err := jsonOfStored(nil, v, nil)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("jsonOfStored(%q) = %v, want an error matching ErrCorrupt", v, err)
			}
			return
		}
		if v[0] == '{' {
			return // a JSON entry of format 7, given back as it is
		}
		if _, err := DecodeEntry(js); err != nil {
			t.Fatalf("jsonOfStored(%q) = %s, which DecodeEntry refuses: %v", v, js, err)
		}
		// The change as decoded from v (strings as they are, where
		// JSON would have replaced invalid UTF-8): stored again, it
		// reads back as the same entry.
		c, err := decodeBinaryEntry(v[1:], nil)
		if err != nil {
			t.Fatalf("jsonOfStored(%q) succeeded, decodeBinaryEntry fails: %v", v, err)
		}
		again, err := jsonOfStored(nil, appendStoredEntry(nil, &c, js), nil)
		if err != nil || !bytes.Equal(again, js) {
			t.Fatalf("stored again, %s reads back as %s, %v", js, again, err)
		}
	})
}
