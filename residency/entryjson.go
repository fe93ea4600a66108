package residency

import (
	"fmt"
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
	e := entryWriter{jsontext.Object{B: dst}}
	e.change(c)
	if e.Err != nil {
		return dst, fmt.Errorf("residency: encoding a log entry: %w", e.Err)
	}
	return e.B, nil
}

// entryWriter appends JSON to B; the first error sticks.
type entryWriter struct{ jsontext.Object }

// optStr writes s unless it is empty (omitempty).
func (w *entryWriter) optStr(k, s string) {
	if s != "" {
		w.Str(k, s)
	}
}

func (w *entryWriter) time(k string, t time.Time) {
	w.Key(k)
	w.B = append(w.B, '"')
	b, err := t.AppendText(w.B)
	if err != nil {
		w.Fail(fmt.Errorf("%s: %w", k, err))
		return
	}
	w.B = append(b, '"')
}

// optTime writes t unless t.IsZero() (omitzero).
func (w *entryWriter) optTime(k string, t time.Time) {
	if !t.IsZero() {
		w.time(k, t)
	}
}

func (w *entryWriter) region(k string, r region.Region) {
	w.Key(k)
	if r != 0 && !r.IsValid() {
		_, err := r.MarshalText() // the error encoding/json would report
		w.Fail(fmt.Errorf("%s: %w", k, err))
		return
	}
	w.B = jsontext.AppendString(w.B, r.String())
}

func (w *entryWriter) change(c *Change) {
	w.Open()
	if c.Placement != (Placement{}) {
		w.Key("placement")
		w.placement(&c.Placement)
	}
	if c.Event != (Event{}) {
		w.Key("event")
		w.event(&c.Event)
	}
	if a := c.Agreement; a != nil {
		w.Key("agreement")
		w.Open()
		w.Str("account_id", a.AccountID)
		w.region("to", a.To)
		w.Str("reference", a.Reference)
		w.optTime("expires_at", a.ExpiresAt)
		w.time("granted", a.Granted)
		w.optTime("revoked", a.Revoked)
		w.Close()
	}
	if k := c.Consent; k != nil {
		w.Key("consent")
		w.Open()
		w.Str("account_id", k.AccountID)
		w.Str("subprocessor", k.SubProcessor)
		w.Str("reference", k.Reference)
		w.optTime("expires_at", k.ExpiresAt)
		w.time("granted", k.Granted)
		w.optTime("revoked", k.Revoked)
		w.Close()
	}
	if o := c.Objection; o != nil {
		w.Key("objection")
		w.Open()
		w.Str("account_id", o.AccountID)
		w.Str("subprocessor", o.SubProcessor)
		w.Str("reference", o.Reference)
		w.time("raised", o.Raised)
		w.optTime("withdrawn", o.Withdrawn)
		w.Close()
	}
	if st := c.DataCenter; st != nil {
		w.Key("datacenter")
		w.Open()
		w.Str("id", st.ID)
		w.Str("status", string(st.Status))
		w.time("changed", st.Changed)
		if st.Version != 0 {
			w.Uint("version", st.Version)
		}
		w.Close()
	}
	w.Close()
}

func (w *entryWriter) placement(p *Placement) {
	w.Open()
	w.Str("account_id", p.AccountID)
	if p.Country != (region.Country{}) {
		w.Key("country")
		if !p.Country.IsValid() {
			_, err := p.Country.MarshalText()
			w.Fail(fmt.Errorf("country: %w", err))
			return
		}
		w.B = jsontext.AppendString(w.B, p.Country.String())
	}
	w.region("region", p.Region)
	w.Str("datacenter", p.DataCenter)
	w.Str("provider", string(p.Provider))
	w.optStr("backup", p.Backup)
	w.Uint("version", p.Version)
	w.Str("rule", p.Rule)
	w.optStr("transfer", p.Transfer)
	w.time("created", p.Created)
	w.time("updated", p.Updated)
	if m := &p.Move; *m != (Move{}) {
		w.Key("move")
		w.Open()
		w.Str("id", m.ID)
		w.Str("account_id", m.AccountID)
		w.Str("from", m.From)
		w.Str("to", m.To)
		w.region("to_region", m.ToRegion)
		w.optStr("transfer", m.Transfer)
		w.time("began", m.Began)
		w.Close()
	}
	w.Close()
}

func (w *entryWriter) event(e *Event) {
	w.Open()
	w.time("time", e.Time)
	w.Str("kind", string(e.Kind))
	w.Str("account_id", e.AccountID)
	w.optStr("from", e.From)
	w.optStr("to", e.To)
	w.optStr("rule", e.Rule)
	w.optStr("reference", e.Reference)
	w.optStr("move_id", e.MoveID)
	w.Uint("version", e.Version)
	w.Close()
}
