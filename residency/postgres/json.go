package postgres

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
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
	w.b = appendString(w.b, s)
}

// optStr writes s, or null when ok is false.
func (w *jw) optStr(k, s string, ok bool) {
	if !ok {
		w.key(k)
		w.b = append(w.b, "null"...)
		return
	}
	w.str(k, s)
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

// appendString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD as
// encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\t':
				b = append(b, '\\', 't')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
