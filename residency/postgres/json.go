package postgres

import (
	"fmt"
	"strconv"
	"time"

	"github.com/domicile-go/domicile/internal/jsontext"
)

// A JSON writer for Apply's parameters: encoding/json spends tens of
// microseconds a change on reflection and on the time and region
// marshalers, more than the database spends writing it. What it writes,
// encoding/json reads back as the same values (the tests check it). The
// changes log's JSON is residency.AppendEntry's, the audit log entry
// itself.

// jw appends JSON to b; the first error (a time outside years 0-9999,
// which RFC 3339 cannot write) sticks.
type jw struct {
	b   []byte
	err error
}

// key writes a key, preceded by a comma unless it is an object's first.
func (w *jw) key(k string) {
	if n := len(w.b); n > 0 && w.b[n-1] != '{' && w.b[n-1] != '[' {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jw) str(k, s string) {
	w.key(k)
	w.b = jsontext.AppendString(w.b, s)
}

func (w *jw) uint(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *jw) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

// wireTime writes the microseconds part of a stored time (see times.go)
// as text PostgreSQL parses, null for the zero time, and its nanoseconds
// below the microsecond under key+"_ns".
func (w *jw) wireTime(k string, t time.Time) {
	w.key(k)
	if t.IsZero() {
		w.b = append(w.b, "null"...)
		w.int(k+"_ns", 0)
		return
	}
	t = t.UTC()
	us := t.Truncate(time.Microsecond)
	if y := t.Year(); y < 1 || y > 9999 {
		if w.err == nil {
			w.err = fmt.Errorf("time %v: the year is outside 1-9999", t)
		}
	}
	w.b = append(w.b, '"')
	w.b = us.AppendFormat(w.b, "2006-01-02T15:04:05.999999Z07:00")
	w.b = append(w.b, '"')
	w.int(k+"_ns", int64(t.Sub(us)))
}

func (w *jw) open()  { w.b = append(w.b, '{') }
func (w *jw) close() { w.b = append(w.b, '}') }
