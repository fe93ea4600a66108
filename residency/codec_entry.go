package residency

import (
	"fmt"
	"time"

	"github.com/domicile-go/domicile/region"
)

// The log entries of the file store, from format 8: an entry is hashed,
// and read by LogEntries, as its JSON ([AppendEntry]), but stored in the
// binary codec of the store's own records (codec.go), about a third of
// the bytes. A durable Place under load commits many entries at once, and
// their bytes were most of the log's cost: twice the bytes of the
// accounts' own records. A stored entry is either
//
//   - binaryEntry, the kind of change (entryAccount or entryDataCenter)
//     and then, for an account: its account ID, its placement, the
//     event's version and the event, then for each of agreement, consent
//     and objection 0, or 1, its reference and the record; for a data
//     center: its ID and its status; each record's fields as in its
//     bucket (codec.go), the account ID and references as there in the
//     key; or
//   - the JSON itself, which starts with '{': every entry of formats 5 to
//     7, and that of a change the binary form does not give back whole
//     (inBinary).
//
// Reading a binary entry decodes the change and writes its JSON again,
// which gives back the bytes that were hashed: TestStoredEntryReadsBack
// checks it over changes filled at random, of every field.

// binaryEntry starts an entry stored in binary; JSON starts with '{'.
const binaryEntry = 0x01

// The kinds of change of a binary entry.
const (
	entryAccount    = 1
	entryDataCenter = 2
)

// appendStoredEntry appends to dst the stored form of the change c whose
// JSON entry is js.
func appendStoredEntry(dst []byte, c *Change, js []byte) []byte {
	if !inBinary(c) {
		return append(dst, js...)
	}
	e := encoder{b: append(dst, binaryEntry)}
	if st := c.DataCenter; st != nil {
		e.uint(entryDataCenter)
		e.str(st.ID)
		e.status(st) // last: a status without its version reads as 1
		return e.b
	}
	e.uint(entryAccount)
	e.str(c.Placement.AccountID)
	e.placement(&c.Placement)
	e.uint(c.Event.Version)
	e.event(&c.Event)
	if ag := c.Agreement; ag != nil {
		e.uint(1)
		e.str(ag.Reference)
		e.agreement(ag)
	} else {
		e.uint(0)
	}
	if cr := c.Consent; cr != nil {
		e.uint(1)
		e.str(cr.Reference)
		e.consent(cr)
	} else {
		e.uint(0)
	}
	if o := c.Objection; o != nil {
		e.uint(1)
		e.str(o.Reference)
		e.objection(o)
	} else {
		e.uint(0)
	}
	return e.b
}

// inBinary reports whether the binary form gives c back whole, as far as
// its JSON entry tells: the records' encodings hold all but the account
// ID and references (in their keys) and the times' zones (UTC), and
// decoding checks countries and regions. So: every time in UTC (as the
// Router writes them), every record of the placement's account, a move's
// fields set only while moving, a data center's status alone, and valid
// countries and regions.
func inBinary(c *Change) bool {
	if st := c.DataCenter; st != nil {
		return utc(st.Changed) && c.Placement == (Placement{}) && c.Event == (Event{}) &&
			c.Agreement == nil && c.Consent == nil && c.Objection == nil
	}
	p, ev := &c.Placement, &c.Event
	id := p.AccountID
	if !utc(p.Created) || !utc(p.Updated) || !utc(ev.Time) || ev.AccountID != id || !p.Region.IsValid() ||
		p.Country != (region.Country{}) && !p.Country.IsValid() {
		return false
	}
	if m := &p.Move; p.Moving() {
		if m.AccountID != id || !m.ToRegion.IsValid() || !utc(m.Began) {
			return false
		}
	} else if *m != (Move{}) {
		return false
	}
	if ag := c.Agreement; ag != nil && (ag.AccountID != id || !ag.To.IsValid() || !utc(ag.ExpiresAt) || !utc(ag.Granted) || !utc(ag.Revoked)) {
		return false
	}
	if cr := c.Consent; cr != nil && (cr.AccountID != id || !utc(cr.ExpiresAt) || !utc(cr.Granted) || !utc(cr.Revoked)) {
		return false
	}
	if o := c.Objection; o != nil && (o.AccountID != id || !utc(o.Raised) || !utc(o.Withdrawn)) {
		return false
	}
	return true
}

// utc reports whether the binary form gives t back whole: the zero time,
// or a time in UTC that the store holds.
func utc(t time.Time) bool {
	return t.IsZero() || t.Location() == time.UTC && validTime(t) == nil
}

// jsonOfStored appends to dst the JSON entry of the stored entry v. The
// strings decoded on the way are interned in intern, when not nil, which
// spares a reader of many entries a map for each.
func jsonOfStored(dst, v []byte, intern map[string]string) ([]byte, error) {
	if len(v) > 0 && v[0] == '{' {
		return append(dst, v...), nil
	}
	if len(v) == 0 || v[0] != binaryEntry {
		return dst, fmt.Errorf("%w: log entry of kind %#x", ErrCorrupt, v[:min(len(v), 1)])
	}
	c, err := decodeBinaryEntry(v[1:], intern)
	if err != nil {
		return dst, err
	}
	return AppendEntry(dst, &c)
}

func decodeBinaryEntry(v []byte, intern map[string]string) (Change, error) {
	d := decoder{b: v, intern: intern}
	var c Change
	switch d.uint() {
	case entryDataCenter:
		st := d.status(d.unique())
		c.DataCenter = &st
	case entryAccount:
		id := d.unique()
		c.Placement = d.placement(id)
		version := d.uint()
		c.Event = d.event(id, version)
		if d.uint() == 1 {
			ag := d.agreement(id, d.unique())
			c.Agreement = &ag
		}
		if d.uint() == 1 {
			cr := d.consent(id, d.unique())
			c.Consent = &cr
		}
		if d.uint() == 1 {
			o := d.objection(id, d.unique())
			c.Objection = &o
		}
	default:
		d.fail("log entry's kind of change")
	}
	if err := d.done("log entry"); err != nil {
		return Change{}, err
	}
	return c, nil
}
