package postgres

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/domicile-go/domicile/residency"
)

// A JSON writer for Apply's parameters: encoding/json spends tens of
// microseconds a change on reflection and on the time and region
// marshalers, more than the database spends writing it. What it writes,
// encoding/json reads back as the same values (the tests check it).

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

// time writes t in RFC 3339 with nanoseconds, as encoding/json does.
func (w *jw) time(k string, t time.Time) {
	w.key(k)
	if y := t.Year(); y < 0 || y > 9999 {
		if w.err == nil {
			w.err = fmt.Errorf("time %v: the year is outside 0-9999", t)
		}
	}
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
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

// change writes c as encoding/json would read it into a
// residency.Change, under the JSON names of residency's types: the body of
// a row of the changes log. TestChangeJSON fails when those names change.
func (w *jw) change(c *residency.Change) {
	w.open()
	if st := c.DataCenter; st != nil {
		w.key("DataCenter")
		w.open()
		w.str("id", st.ID)
		w.str("status", string(st.Status))
		w.time("changed", st.Changed)
		if st.Version != 0 {
			w.uint("version", st.Version)
		}
		w.close()
		w.close()
		return
	}
	p := &c.Placement
	w.key("Placement")
	w.open()
	w.str("account_id", p.AccountID)
	w.str("country", p.Country.String())
	w.str("region", p.Region.String())
	w.str("datacenter", p.DataCenter)
	w.str("provider", string(p.Provider))
	w.str("backup", p.Backup)
	w.uint("version", p.Version)
	w.str("rule", p.Rule)
	w.str("transfer", p.Transfer)
	w.time("created", p.Created)
	w.time("updated", p.Updated)
	if m := p.Move; p.Moving() {
		w.key("move")
		w.open()
		w.str("id", m.ID)
		w.str("account_id", m.AccountID)
		w.str("from", m.From)
		w.str("to", m.To)
		w.str("to_region", m.ToRegion.String())
		w.str("transfer", m.Transfer)
		w.time("began", m.Began)
		w.close()
	}
	w.close()
	e := &c.Event
	w.key("Event")
	w.open()
	w.time("time", e.Time)
	w.str("kind", string(e.Kind))
	w.str("account_id", e.AccountID)
	w.str("from", e.From)
	w.str("to", e.To)
	w.str("rule", e.Rule)
	w.str("reference", e.Reference)
	w.str("move_id", e.MoveID)
	w.uint("version", e.Version)
	w.close()
	if a := c.Agreement; a != nil {
		w.key("Agreement")
		w.open()
		w.str("account_id", a.AccountID)
		w.str("to", a.To.String())
		w.str("reference", a.Reference)
		w.time("expires_at", a.ExpiresAt)
		w.time("granted", a.Granted)
		w.time("revoked", a.Revoked)
		w.close()
	}
	if k := c.Consent; k != nil {
		w.key("Consent")
		w.open()
		w.str("account_id", k.AccountID)
		w.str("subprocessor", k.SubProcessor)
		w.str("reference", k.Reference)
		w.time("expires_at", k.ExpiresAt)
		w.time("granted", k.Granted)
		w.time("revoked", k.Revoked)
		w.close()
	}
	if o := c.Objection; o != nil {
		w.key("Objection")
		w.open()
		w.str("account_id", o.AccountID)
		w.str("subprocessor", o.SubProcessor)
		w.str("reference", o.Reference)
		w.time("raised", o.Raised)
		w.time("withdrawn", o.Withdrawn)
		w.close()
	}
	w.close()
}
