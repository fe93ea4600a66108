package residency_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

// changeFiller fills every field of a Change by reflection, from r, with
// values chosen to reach encoding/json's edge cases: empty and odd strings
// (escapes, invalid UTF-8, U+2028), zero and extreme numbers, zero times,
// times in other zones and outside the years JSON can hold, invalid
// regions, nil and set pointers. A field of a type it does not know fails
// the test: whoever adds one teaches it here, and AppendEntry with it.
type changeFiller struct {
	t       testing.TB
	r       *rand.Rand
	strings []string
	// full makes every field set, and valid: no empty string or zero value,
	// no invalid region, no time outside the years 0-9999.
	full bool
	// utc makes every time a valid one in UTC, or the zero time.
	utc bool
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	countryType = reflect.TypeFor[region.Country]()
	regionType  = reflect.TypeFor[region.Region]()
)

func newChangeFiller(t testing.TB, seed uint64, extra ...string) *changeFiller {
	return &changeFiller{t: t, r: rand.New(rand.NewPCG(seed, seed>>32|1)), strings: append([]string{
		"", "acme", "linode-eu", "EU member state", "a\"b\\c/d",
		"\x00\x01\x08\x0c\n\r\t\x1f\x7f", "<script>&amp;</script>", "é漢🙂",
		"\u2028\u2029", "a\xffb\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	}, extra...)}
}

// change returns a Change whose fields are all filled at random.
func (f *changeFiller) change() residency.Change {
	var c residency.Change
	f.fill(reflect.ValueOf(&c).Elem(), "Change")
	return c
}

func (f *changeFiller) fill(v reflect.Value, path string) {
	switch v.Type() {
	case timeType:
		v.Set(reflect.ValueOf(f.time()))
		return
	case countryType:
		codes := []string{"", "DE", "US", "GB", "SG", "XK"}
		if f.full {
			codes = codes[1:]
		}
		if c := codes[f.r.IntN(len(codes))]; c != "" {
			v.Set(reflect.ValueOf(region.MustParseCountry(c)))
		}
		return
	case regionType:
		if f.full {
			v.SetUint(uint64(1 + f.r.IntN(4)))
			return
		}
		v.SetUint(uint64(f.r.IntN(7))) // 5 and 6 are not regions
		return
	}
	switch v.Kind() {
	case reflect.String:
		s := f.strings[f.r.IntN(len(f.strings))]
		if f.full && s == "" {
			s = "x"
		}
		v.SetString(s)
	case reflect.Uint64:
		if f.full {
			v.SetUint([]uint64{1, 7, 1 << 53, math.MaxUint64}[f.r.IntN(4)])
			return
		}
		v.SetUint([]uint64{0, 1, 7, 1 << 53, math.MaxUint64}[f.r.IntN(5)])
	case reflect.Pointer:
		if !f.full && f.r.IntN(3) == 0 {
			v.SetZero()
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		f.fill(v.Elem(), path)
	case reflect.Struct:
		if !f.full && f.r.IntN(8) == 0 {
			return // the zero value, which omitzero leaves out
		}
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if !sf.IsExported() {
				f.t.Fatalf("changeFiller: %s.%s is unexported", path, sf.Name)
			}
			f.fill(v.Field(i), path+"."+sf.Name)
		}
	default:
		f.t.Fatalf("changeFiller: %s is a %v, which it cannot fill", path, v.Type())
	}
}

func (f *changeFiller) time() time.Time {
	zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("X", -(9*3600 + 30*60)),
		time.FixedZone("odd", 5*3600+45*60+17), time.FixedZone("far", 24*3600+60), nil}
	zone := zones[f.r.IntN(len(zones))]
	var t time.Time
	choice := f.r.IntN(6)
	if f.full {
		zone, choice = zones[f.r.IntN(4)], 2
	}
	if f.utc {
		zone, choice = time.UTC, f.r.IntN(3)
	}
	switch choice {
	case 0: // the zero time
	case 1:
		t = time.Date(2026, 11, 29, 4, 30, 0, 0, time.UTC)
	case 2:
		t = time.Date(1+f.r.IntN(9999), time.Month(1+f.r.IntN(12)), 1+f.r.IntN(31), f.r.IntN(24), f.r.IntN(60), f.r.IntN(60), f.r.IntN(1e9), time.UTC)
	case 3: // the edges of what JSON holds, and beyond
		t = []time.Time{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			time.Date(-1, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}[f.r.IntN(4)]
	case 4:
		t = time.Unix(f.r.Int64N(1<<40)-1<<39, f.r.Int64N(1e9))
	default:
		t = time.Now() // with a monotonic reading
	}
	if zone != nil {
		t = t.In(zone)
	}
	return t
}

// checkEntry compares AppendEntry of c with json.Marshal(&c): the same
// bytes, or both failing; appended after a prefix that stays as it was.
func checkEntry(t testing.TB, c residency.Change) {
	t.Helper()
	want, wantErr := json.Marshal(&c)
	prefix := []byte("prefix")
	got, err := residency.AppendEntry(prefix[:len(prefix):len(prefix)], &c)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("AppendEntry error %v, json.Marshal error %v, for %#v", err, wantErr, c)
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("AppendEntry changed the prefix: %q", got)
	}
	if err != nil {
		if len(got) != len(prefix) {
			t.Fatalf("AppendEntry failed (%v) but extended dst: %q", err, got)
		}
		return
	}
	if diff := cmp.Diff(string(want), string(got[len(prefix):])); diff != "" {
		t.Fatalf("AppendEntry differs from json.Marshal (-json +AppendEntry):\n%s", diff)
	}
	enc, err := residency.EncodeEntry(c)
	if err != nil || !bytes.Equal(enc, want) {
		t.Fatalf("EncodeEntry = %q, %v; want %q", enc, err, want)
	}
}

// TestAppendEntryMatchesJSON: AppendEntry writes exactly what json.Marshal
// writes (the entries logged before it was written by hand stay valid),
// over many Changes with every field filled at random, and fails where
// it fails.
func TestAppendEntryMatchesJSON(t *testing.T) {
	var ok, failed int
	for seed := range uint64(20000) {
		c := newChangeFiller(t, seed).change()
		checkEntry(t, c)
		if _, err := json.Marshal(&c); err != nil {
			failed++
		} else {
			ok++
		}
	}
	// Both outcomes must be exercised, or the comparison proves little.
	if ok < 1000 || failed < 1000 {
		t.Errorf("%d changes encoded and %d refused: the filler misses a case", ok, failed)
	}
}

// TestAppendEntryEveryField: changes with every field set, and valid,
// encode as json.Marshal does, and DecodeEntry reads them back whole.
func TestAppendEntryEveryField(t *testing.T) {
	for seed := range uint64(200) {
		f := newChangeFiller(t, seed)
		f.full = true
		// Invalid UTF-8 comes back as U+FFFD, which encodes as itself.
		f.strings = slices.DeleteFunc(f.strings, func(s string) bool { return !utf8.ValidString(s) })
		c := f.change()
		if !allSet(reflect.ValueOf(c)) {
			t.Fatalf("the filler left a field unset: %#v", c)
		}
		checkEntry(t, c)
		e, err := residency.EncodeEntry(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := residency.DecodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		// Times come back with a fixed zone of the same offset and no
		// monotonic reading: compare the entries they encode to.
		again, err := residency.EncodeEntry(back)
		if err != nil || !bytes.Equal(again, e) {
			t.Fatalf("DecodeEntry then EncodeEntry = %q, %v; want %q", again, err, e)
		}
	}
}

// allSet reports whether every field of v, every pointer and every string
// is set.
func allSet(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer:
		return !v.IsNil() && allSet(v.Elem())
	case reflect.Struct:
		if v.Type() == timeType || v.Type() == countryType {
			return !v.IsZero()
		}
		for i := range v.NumField() {
			if !allSet(v.Field(i)) {
				return false
			}
		}
		return true
	default:
		return !v.IsZero()
	}
}

// FuzzAppendEntry: for any change built from the fuzzer's seed and
// strings, AppendEntry writes what json.Marshal writes.
func FuzzAppendEntry(f *testing.F) {
	f.Add(uint64(0), "", "")
	f.Add(uint64(1), "acme", "linode-eu")
	f.Add(uint64(2), "q\"b\\s/\n\t\r\x00\x1f\u2028é漢🙂", "a\xffb")
	f.Add(uint64(3), "<>&", "\x7f\xc0\xaf")
	f.Fuzz(func(t *testing.T, seed uint64, a, b string) {
		checkEntry(t, newChangeFiller(t, seed, a, b).change())
	})
}

func BenchmarkAppendEntry(b *testing.B) {
	at := time.Date(2026, 11, 29, 4, 30, 0, 123456789, time.UTC)
	c := residency.Change{
		Placement: residency.Placement{AccountID: "acct-00000001", Country: region.MustParseCountry("DE"), Region: region.EU,
			DataCenter: "linode-eu", Provider: "linode", Backup: "aws-eu-west-1", Version: 1, Rule: "EU member state", Created: at, Updated: at},
		Event: residency.Event{Time: at, Kind: residency.Placed, AccountID: "acct-00000001", To: "linode-eu", Rule: "EU member state", Version: 1},
	}
	b.Run("impl=json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=AppendEntry", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var err error
			if buf, err = residency.AppendEntry(buf[:0], &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
