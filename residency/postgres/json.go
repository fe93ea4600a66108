package postgres

import (
	"fmt"
	"time"

	"github.com/domicile-go/domicile/internal/jsontext"
)

// A JSON writer for Apply's parameters: encoding/json spends tens of
// microseconds a change on reflection and on the time and region
// marshalers, more than the database spends writing it. What it writes,
// encoding/json reads back as the same values (the tests check it). The
// changes log's JSON is residency.AppendEntry's, the audit log entry
// itself.

// jw appends JSON to B; the first error (a time outside years 0-9999,
// which RFC 3339 cannot write) sticks.
type jw struct{ jsontext.Object }

// wireTime writes the microseconds part of a stored time (see times.go)
// as text PostgreSQL parses, null for the zero time, and its nanoseconds
// below the microsecond under key+"_ns".
func (w *jw) wireTime(k string, t time.Time) {
	w.Key(k)
	if t.IsZero() {
		w.B = append(w.B, "null"...)
		w.Int(k+"_ns", 0)
		return
	}
	t = t.UTC()
	us := t.Truncate(time.Microsecond)
	if y := t.Year(); y < 1 || y > 9999 {
		w.Fail(fmt.Errorf("time %v: the year is outside 1-9999", t))
	}
	w.B = append(w.B, '"')
	w.B = us.AppendFormat(w.B, "2006-01-02T15:04:05.999999Z07:00")
	w.B = append(w.B, '"')
	w.Int(k+"_ns", int64(t.Sub(us)))
}
