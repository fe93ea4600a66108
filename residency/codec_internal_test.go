package residency

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
)

// TestTimeRoundTrip encodes and decodes times across the whole range the
// format holds, to the nanosecond; formats 1 and 2 wrapped after 2262.
func TestTimeRoundTrip(t *testing.T) {
	times := []time.Time{
		{},
		minTime,
		minTime.Add(time.Nanosecond),
		time.Date(1677, 9, 21, 0, 12, 43, 145224191, time.UTC), // below UnixNano's range
		time.Unix(0, 0).UTC(),
		time.Unix(-1, 999999999).UTC(),
		time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC),
		time.Date(2262, 4, 11, 23, 47, 16, 854775808, time.UTC), // past UnixNano's range
		time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		maxTime,
		time.Date(2030, 1, 1, 12, 0, 0, 5, time.FixedZone("CET", 3600)),
	}
	for _, want := range times {
		var e encoder
		e.time(want)
		d := decoder{b: e.b}
		got := d.time()
		if err := d.done("time"); err != nil {
			t.Errorf("decoding %v: %v", want, err)
			continue
		}
		if !got.Equal(want) || got.IsZero() != want.IsZero() || got.Location() != time.UTC {
			t.Errorf("time %v came back as %v", want, got)
		}
	}
}

// TestValidTime checks the range of times the store holds, and that the
// decoder refuses encodings outside it.
func TestValidTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want bool
	}{
		{time.Time{}, true},
		{minTime, true},
		{maxTime, true},
		{time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -3600)), false}, // 10000-01-01 UTC
		{maxTime.Add(time.Nanosecond), false},
		{time.Date(10000, 6, 1, 0, 0, 0, 0, time.UTC), false},
		{minTime.Add(-time.Nanosecond), false},
		{time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		err := validTime(tt.t)
		if got := err == nil; got != tt.want || err != nil && !errors.Is(err, errTimeRange) {
			t.Errorf("validTime(%v) = %v; want valid %v", tt.t, err, tt.want)
		}
	}
	bad := map[string]func(e *encoder){
		"year 10000":         func(e *encoder) { e.uint(1); e.b = binary.AppendVarint(e.b, maxTime.Unix()+1) },
		"before year 1":      func(e *encoder) { e.uint(1); e.b = binary.AppendVarint(e.b, minTime.Unix()-1) },
		"a second of nanos":  func(e *encoder) { e.uint(1e9 + 1); e.b = binary.AppendVarint(e.b, 0) },
		"the zero time, set": func(e *encoder) { e.uint(1); e.b = binary.AppendVarint(e.b, minTime.Unix()) },
		"huge seconds":       func(e *encoder) { e.uint(1); e.b = binary.AppendVarint(e.b, math.MaxInt64) },
		"cut short":          func(e *encoder) { e.uint(5) },
	}
	for name, enc := range bad {
		var e encoder
		enc(&e)
		d := decoder{b: e.b}
		if got := d.time(); !errors.Is(d.done("time"), ErrCorrupt) {
			t.Errorf("%s: decoded as %v, %v; want ErrCorrupt", name, got, d.err)
		}
	}
}

// TestRecordChecksum checks that a sealed record opens only with its own
// kind and key, and that any one-bit flip of it is found.
func TestRecordChecksum(t *testing.T) {
	key := []byte("acme")
	p := Placement{AccountID: "acme", Version: 3, Region: region.EU, DataCenter: "linode-eu", Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	rec := seal(kindPlacement, key, encodePlacement(&p))
	payload, err := unseal(kindPlacement, key, rec)
	if err != nil {
		t.Fatal(err)
	}
	d := decoder{b: payload}
	got := d.placement("acme")
	if err := d.done("placement"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("placement round trip (-want +got):\n%s", diff)
	}
	if _, err := unseal(kindEvent, key, rec); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unseal as an event: %v; want ErrCorrupt", err)
	}
	if _, err := unseal(kindPlacement, []byte("acmf"), rec); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unseal under another key: %v; want ErrCorrupt", err)
	}
	for _, short := range [][]byte{nil, rec[:3]} {
		if _, err := unseal(kindPlacement, key, short); !errors.Is(err, ErrCorrupt) {
			t.Errorf("unseal of %d bytes: %v; want ErrCorrupt", len(short), err)
		}
	}
	for bit := range len(rec) * 8 {
		flipped := append([]byte(nil), rec...)
		flipped[bit/8] ^= 1 << (bit % 8)
		if _, err := unseal(kindPlacement, key, flipped); !errors.Is(err, ErrCorrupt) {
			t.Errorf("bit %d flipped: unseal error %v; want ErrCorrupt", bit, err)
		}
	}
}
