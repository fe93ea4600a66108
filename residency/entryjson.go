package residency

import (
	"fmt"
	"strconv"
	"time"

	"github.com/domicile-go/domicile/internal/jsontext"
	"github.com/domicile-go/domicile/region"
)

// A hand-written JSON encoder for audit log entries. It writes exactly the
// bytes encoding/json's Marshal writes for a *Change, so that entries
// written before it, and golden files, stay valid; it spends no reflection
// and allocates nothing beyond dst's growth. TestAppendEntryMatchesJSON
// and FuzzAppendEntry compare the two over Changes whose every field,
// found by reflection, is filled: a field added to Change or to a type it
// holds fails them until it is written here too.
//
// What encoding/json does, and this file follows: struct fields in
// declaration order, an embedded struct's fields in its place; omitempty
// leaves out an empty string or a nil pointer; omitzero leaves out a
// value whose IsZero method says so (time.Time), or else the zero value
// of its type; encoding.TextMarshaler values (region.Region,
// region.Country) are written as JSON strings of their text; times as
// time.Time.MarshalJSON writes them (RFC 3339 with nanoseconds, the
// time's own offset), failing outside the years 0 to 9999; strings with
// encoding/json's escapes (HTML-safe, invalid UTF-8 as U+FFFD).

// AppendEntry appends the audit log entry of c to dst, the bytes
// [EncodeEntry] returns, and returns the extended slice. On error (a
// change JSON cannot hold) it returns dst as it was given, unextended.
func AppendEntry(dst []byte, c *Change) ([]byte, error) {
	e := entryWriter{b: dst}
	e.change(c)
	if e.err != nil {
		return dst, fmt.Errorf("residency: encoding a log entry: %w", e.err)
	}
	return e.b, nil
}

// entryWriter appends JSON to b; the first error sticks.
type entryWriter struct {
	b   []byte
	err error
	// first is true until the current object has its first member.
	first bool
}

func (w *entryWriter) open() { w.b, w.first = append(w.b, '{'), true }

func (w *entryWriter) close() { w.b, w.first = append(w.b, '}'), false }

// key writes a member's key: k is its JSON name, which needs no escaping.
func (w *entryWriter) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *entryWriter) str(k, s string) {
	w.key(k)
	w.b = jsontext.AppendString(w.b, s)
}

// optStr writes s unless it is empty (omitempty).
func (w *entryWriter) optStr(k, s string) {
	if s != "" {
		w.str(k, s)
	}
}

func (w *entryWriter) uint(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *entryWriter) time(k string, t time.Time) {
	w.key(k)
	w.b = append(w.b, '"')
	b, err := t.AppendText(w.b)
	if err != nil {
		w.fail(fmt.Errorf("%s: %w", k, err))
		return
	}
	w.b = append(b, '"')
}

// optTime writes t unless t.IsZero() (omitzero).
func (w *entryWriter) optTime(k string, t time.Time) {
	if !t.IsZero() {
		w.time(k, t)
	}
}

func (w *entryWriter) region(k string, r region.Region) {
	w.key(k)
	if r != 0 && !r.IsValid() {
		_, err := r.MarshalText() // the error encoding/json would report
		w.fail(fmt.Errorf("%s: %w", k, err))
		return
	}
	w.b = jsontext.AppendString(w.b, r.String())
}

func (w *entryWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *entryWriter) change(c *Change) {
	w.open()
	if c.Placement != (Placement{}) {
		w.key("placement")
		w.placement(&c.Placement)
	}
	if c.Event != (Event{}) {
		w.key("event")
		w.event(&c.Event)
	}
	if a := c.Agreement; a != nil {
		w.key("agreement")
		w.open()
		w.str("account_id", a.AccountID)
		w.region("to", a.To)
		w.str("reference", a.Reference)
		w.optTime("expires_at", a.ExpiresAt)
		w.time("granted", a.Granted)
		w.optTime("revoked", a.Revoked)
		w.close()
	}
	if k := c.Consent; k != nil {
		w.key("consent")
		w.open()
		w.str("account_id", k.AccountID)
		w.str("subprocessor", k.SubProcessor)
		w.str("reference", k.Reference)
		w.optTime("expires_at", k.ExpiresAt)
		w.time("granted", k.Granted)
		w.optTime("revoked", k.Revoked)
		w.close()
	}
	if o := c.Objection; o != nil {
		w.key("objection")
		w.open()
		w.str("account_id", o.AccountID)
		w.str("subprocessor", o.SubProcessor)
		w.str("reference", o.Reference)
		w.time("raised", o.Raised)
		w.optTime("withdrawn", o.Withdrawn)
		w.close()
	}
	if st := c.DataCenter; st != nil {
		w.key("datacenter")
		w.open()
		w.str("id", st.ID)
		w.str("status", string(st.Status))
		w.time("changed", st.Changed)
		if st.Version != 0 {
			w.uint("version", st.Version)
		}
		w.close()
	}
	w.close()
}

func (w *entryWriter) placement(p *Placement) {
	w.open()
	w.str("account_id", p.AccountID)
	if p.Country != (region.Country{}) {
		w.key("country")
		if !p.Country.IsValid() {
			_, err := p.Country.MarshalText()
			w.fail(fmt.Errorf("country: %w", err))
			return
		}
		w.b = jsontext.AppendString(w.b, p.Country.String())
	}
	w.region("region", p.Region)
	w.str("datacenter", p.DataCenter)
	w.str("provider", string(p.Provider))
	w.optStr("backup", p.Backup)
	w.uint("version", p.Version)
	w.str("rule", p.Rule)
	w.optStr("transfer", p.Transfer)
	w.time("created", p.Created)
	w.time("updated", p.Updated)
	if m := &p.Move; *m != (Move{}) {
		w.key("move")
		w.open()
		w.str("id", m.ID)
		w.str("account_id", m.AccountID)
		w.str("from", m.From)
		w.str("to", m.To)
		w.region("to_region", m.ToRegion)
		w.optStr("transfer", m.Transfer)
		w.time("began", m.Began)
		w.close()
	}
	w.close()
}

func (w *entryWriter) event(e *Event) {
	w.open()
	w.time("time", e.Time)
	w.str("kind", string(e.Kind))
	w.str("account_id", e.AccountID)
	w.optStr("from", e.From)
	w.optStr("to", e.To)
	w.optStr("rule", e.Rule)
	w.optStr("reference", e.Reference)
	w.optStr("move_id", e.MoveID)
	w.uint("version", e.Version)
	w.close()
}
