package residency

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
)

// The record encoding of the embedded store (format version 1): fields in a
// fixed order, strings and integers as uvarints (strings length-prefixed),
// times as Unix nanoseconds with 0 for the zero time. It is hand-written
// because Open must decode a million accounts in seconds: encoding/json
// takes several microseconds a record. Account IDs are in the keys, not in
// the values. Any change here needs a new format version.

type encoder struct{ b []byte }

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.uint(0)
		return
	}
	e.b = binary.AppendVarint(e.b, t.UnixNano())
}

// decoder reads what encoder wrote. The first error sticks; strings that
// repeat across records (data centers, rules, kinds) are interned, so that
// a million loaded accounts share them.
type decoder struct {
	b      []byte
	err    error
	intern map[string]string
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("integer")
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail("string")
		d.b = nil
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// str returns an interned copy of the next string.
func (d *decoder) str() string {
	b := d.bytes()
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.intern == nil {
		d.intern = make(map[string]string)
	}
	if len(d.intern) < 1<<16 {
		d.intern[s] = s
	}
	return s
}

// unique returns a copy of the next string that is not interned.
func (d *decoder) unique() string { return string(d.bytes()) }

func (d *decoder) time() time.Time {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("time")
		d.b = nil
		return time.Time{}
	}
	d.b = d.b[n:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func (d *decoder) region() region.Region {
	r := region.Region(d.uint())
	if !r.IsValid() {
		d.fail("region")
	}
	return r
}

func (d *decoder) done(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(what + " (trailing bytes)")
	}
	return d.err
}

func encodePlacement(p *Placement) []byte {
	e := encoder{b: make([]byte, 0, 128)}
	e.uint(p.Version)
	e.str(p.Country.String())
	e.uint(uint64(p.Region))
	e.str(p.DataCenter)
	e.str(string(p.Provider))
	e.str(p.Backup)
	e.str(p.Rule)
	e.str(p.Transfer)
	e.time(p.Created)
	e.time(p.Updated)
	if m := p.Move; p.Moving() {
		e.uint(1)
		e.str(m.ID)
		e.str(m.From)
		e.str(m.To)
		e.uint(uint64(m.ToRegion))
		e.str(m.Transfer)
		e.time(m.Began)
	} else {
		e.uint(0)
	}
	return e.b
}

func (d *decoder) placement(accountID string) Placement {
	p := Placement{AccountID: accountID, Version: d.uint()}
	if c := d.bytes(); len(c) > 0 {
		var err error
		if p.Country, err = region.ParseCountry(string(c)); err != nil {
			d.fail("country")
		}
	}
	p.Region = d.region()
	p.DataCenter = d.str()
	p.Provider = provider.Provider(d.str())
	p.Backup = d.str()
	p.Rule = d.str()
	p.Transfer = d.str()
	p.Created = d.time()
	p.Updated = d.time()
	if d.uint() == 1 {
		p.Move = Move{ID: d.unique(), AccountID: accountID, From: d.str(), To: d.str(), ToRegion: d.region(), Transfer: d.str(), Began: d.time()}
	}
	return p
}

func encodeEvent(e *Event) []byte {
	c := encoder{b: make([]byte, 0, 96)}
	c.time(e.Time)
	c.str(string(e.Kind))
	c.str(e.From)
	c.str(e.To)
	c.str(e.Rule)
	c.str(e.Reference)
	c.str(e.MoveID)
	return c.b
}

func (d *decoder) event(accountID string, version uint64) Event {
	return Event{AccountID: accountID, Version: version, Time: d.time(), Kind: EventKind(d.str()),
		From: d.str(), To: d.str(), Rule: d.str(), Reference: d.str(), MoveID: d.unique()}
}

func encodeAgreement(a *Agreement) []byte {
	e := encoder{b: make([]byte, 0, 48)}
	e.uint(uint64(a.To))
	e.time(a.ExpiresAt)
	e.time(a.Granted)
	e.time(a.Revoked)
	return e.b
}

func (d *decoder) agreement(accountID, reference string) Agreement {
	return Agreement{Transfer: Transfer{AccountID: accountID, To: d.region(), Reference: reference, ExpiresAt: d.time()},
		Granted: d.time(), Revoked: d.time()}
}
