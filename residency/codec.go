package residency

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
)

// The record encoding of the embedded store, format version 8 (format 7
// stored every log entry as its JSON; format 6 had the same records as 7,
// none in the log's tail; format 5 had statuses without their version;
// format 4 had no log records).
//
// A record is a payload followed by a checksum:
//
//	payload  fields in a fixed order (below); integers as uvarints, strings
//	         as a uvarint length and the bytes, times as below
//	checksum 4 bytes, little-endian: CRC-32C (Castagnoli) of one byte naming
//	         the kind of record ('p', 'e', 'a', 's', 'g', 'o', 'c', 'l' for
//	         the kinds below, in order), the record's key, then the payload
//
// The checksum covers the key, so a damaged account ID, version or
// reference is found as surely as a damaged value, and a value read from
// another bucket does not pass. A time is a uvarint n and, unless n is 0
// (the zero time), a varint s: the time is s seconds after the Unix epoch
// plus n-1 nanoseconds, in UTC. It holds every time of the years 1 to 9999
// (validTime) to the nanosecond; formats 1 and 2 stored Unix nanoseconds,
// which wrap after the year 2262.
//
// Payloads, in order:
//
//	placement  version, country (ISO alpha-2, "" for none), region, data
//	           center, provider, backup, rule, transfer, created, updated,
//	           moving (0 or 1) and, when 1: move ID, from, to, to region,
//	           transfer, began
//	event      time, kind, from, to, rule, reference, move ID
//	agreement  to region, expires at, granted, revoked
//	status     status, changed, version (from format 6; a status of an
//	           older format, without it, reads as version 1)
//	consent    sub-processor, expires at, granted, revoked
//	objection  sub-processor, raised, withdrawn
//	counts     accounts, agreements, statuses, consents, objections (the
//	           meta bucket's "counts")
//	log entry  the tlog stored hashes the entry's append added, 32 bytes
//	           each (as many as tlog.StoredHashCount(i+1) -
//	           tlog.StoredHashCount(i) for entry i: 1 plus the number of
//	           trailing one bits of i), then the entry: the change in
//	           binary, or the bytes of its JSON, EncodeEntry, which are
//	           hashed in either case (codec_entry.go) ('l'); the checksum
//	           covers the 8-byte index, in the log bucket and in the meta
//	           bucket's tail alike
//
// Account IDs are in the keys, not in the values. The encoding is
// hand-written because Open must decode a million accounts in seconds:
// encoding/json takes several microseconds a record. Any change here needs
// a new format version, and an upgrade of older files (filestore.go).

// recordKind names the bucket a record belongs to; it is the first byte the
// record's checksum covers.
type recordKind byte

const (
	kindPlacement recordKind = 'p'
	kindEvent     recordKind = 'e'
	kindAgreement recordKind = 'a'
	kindStatus    recordKind = 's'
	kindCounts    recordKind = 'c'
	kindConsent   recordKind = 'g'
	kindObjection recordKind = 'o'
	kindLogEntry  recordKind = 'l'
)

// crcTable is CRC-32C, computed by the CPU on amd64 and arm64.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// checksumLen is the size of a record's checksum.
const checksumLen = 4

// kindSeeds are the CRC-32C of each record kind's byte, where its records'
// checksums start (computed once: a byte slice made per call would escape
// into the assembly of crc32 and cost an allocation per record).
var kindSeeds = func() (s [256]uint32) {
	for k := range s {
		s[k] = crc32.Update(0, crcTable, []byte{byte(k)})
	}
	return s
}()

func checksum(kind recordKind, key, payload []byte) uint32 {
	c := crc32.Update(kindSeeds[kind], crcTable, key)
	return crc32.Update(c, crcTable, payload)
}

// seal appends the checksum of the record to its payload, and returns it.
func seal(kind recordKind, key, payload []byte) []byte {
	return binary.LittleEndian.AppendUint32(payload, checksum(kind, key, payload))
}

// unseal checks a record's checksum and returns its payload.
func unseal(kind recordKind, key, record []byte) ([]byte, error) {
	n := len(record) - checksumLen
	if n < 0 || binary.LittleEndian.Uint32(record[n:]) != checksum(kind, key, record[:n]) {
		return nil, fmt.Errorf("%w: checksum mismatch in the %s record %q", ErrCorrupt, kind, key)
	}
	return record[:n], nil
}

func (k recordKind) String() string {
	switch k {
	case kindPlacement:
		return "placement"
	case kindEvent:
		return "event"
	case kindAgreement:
		return "agreement"
	case kindStatus:
		return "status"
	case kindCounts:
		return "counts"
	case kindConsent:
		return "consent"
	case kindObjection:
		return "objection"
	}
	return fmt.Sprintf("kind %d", byte(k))
}

// minTime and maxTime bound the times the store holds.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// minUnix and maxUnix are the Unix seconds of minTime and maxTime.
var minUnix, maxUnix = minTime.Unix(), maxTime.Unix()

// errTimeRange: a time the store format cannot hold.
var errTimeRange = errors.New("residency: time outside the years 1 to 9999")

// validTime reports whether the store holds t: the zero time, or a time
// of the years 1 to 9999 (UTC). API calls that take a time from a caller
// check it with validTime, so that the store never meets one it must
// refuse; the error wraps no sentinel of the API, for the caller to add
// its own (such as [ErrInvalidTransfer]).
func validTime(t time.Time) error {
	if t.IsZero() || !t.Before(minTime) && !t.After(maxTime) {
		return nil
	}
	return fmt.Errorf("%w: %s", errTimeRange, t.UTC().Format(time.RFC3339Nano))
}

type encoder struct{ b []byte }

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

// time encodes t, which validTime must accept.
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.uint(0)
		return
	}
	e.uint(uint64(t.Nanosecond()) + 1)
	e.b = binary.AppendVarint(e.b, t.Unix())
}

// decoder reads what encoder wrote. The first error sticks; strings that
// repeat across records (data centers, rules, kinds) are interned, so that
// a million loaded accounts share them. A decoder with unixNano set reads
// the payloads of formats 1 and 2, whose times were Unix nanoseconds.
type decoder struct {
	b        []byte
	err      error
	intern   map[string]string
	unixNano bool
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
	if d.unixNano {
		return d.unixNanoTime()
	}
	nsec := d.uint()
	if nsec == 0 || d.err != nil {
		return time.Time{}
	}
	sec, n := binary.Varint(d.b)
	if n <= 0 || nsec > 1e9 {
		d.fail("time")
		d.b = nil
		return time.Time{}
	}
	d.b = d.b[n:]
	if sec < minUnix || sec > maxUnix {
		d.fail("time")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec-1)).UTC()
	if t.IsZero() { // the zero time is written as 0
		d.fail("time")
	}
	return t
}

// unixNanoTime reads a time of formats 1 and 2.
func (d *decoder) unixNanoTime() time.Time {
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
	e.placement(p)
	return e.b
}

func (e *encoder) placement(p *Placement) {
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
	c.event(e)
	return c.b
}

func (c *encoder) event(e *Event) {
	c.time(e.Time)
	c.str(string(e.Kind))
	c.str(e.From)
	c.str(e.To)
	c.str(e.Rule)
	c.str(e.Reference)
	c.str(e.MoveID)
}

func (d *decoder) event(accountID string, version uint64) Event {
	return Event{AccountID: accountID, Version: version, Time: d.time(), Kind: EventKind(d.str()),
		From: d.str(), To: d.str(), Rule: d.str(), Reference: d.str(), MoveID: d.unique()}
}

func encodeAgreement(a *Agreement) []byte {
	e := encoder{b: make([]byte, 0, 48)}
	e.agreement(a)
	return e.b
}

func (e *encoder) agreement(a *Agreement) {
	e.uint(uint64(a.To))
	e.time(a.ExpiresAt)
	e.time(a.Granted)
	e.time(a.Revoked)
}

func (d *decoder) agreement(accountID, reference string) Agreement {
	return Agreement{Transfer: Transfer{AccountID: accountID, To: d.region(), Reference: reference, ExpiresAt: d.time()},
		Granted: d.time(), Revoked: d.time()}
}

func encodeStatus(st *DataCenterState) []byte {
	e := encoder{b: make([]byte, 0, 32)}
	e.status(st)
	return e.b
}

func (e *encoder) status(st *DataCenterState) {
	e.str(string(st.Status))
	e.time(st.Changed)
	e.uint(st.Version)
}

func (d *decoder) status(id string) DataCenterState {
	st := DataCenterState{ID: id, Status: provider.Status(d.unique()), Changed: d.time(), Version: 1}
	if len(d.b) > 0 {
		st.Version = d.uint()
	}
	return st
}

// counts is how many accounts, agreements, data center statuses, consents
// and objections a store file holds, kept beside them so that Load finds
// records that vanished (a damaged page can lose a record with its
// checksum). Format 3 had the first three only (upgrade3).
type counts struct{ accounts, agreements, statuses, consents, objections uint64 }

func (c counts) encode() []byte {
	e := encoder{b: make([]byte, 0, 16)}
	e.uint(c.accounts)
	e.uint(c.agreements)
	e.uint(c.statuses)
	e.uint(c.consents)
	e.uint(c.objections)
	return e.b
}

func (d *decoder) counts() counts {
	return counts{accounts: d.uint(), agreements: d.uint(), statuses: d.uint(), consents: d.uint(), objections: d.uint()}
}

// changeTimes returns the error of validTime for the first time of c that
// the format cannot hold, or nil.
func changeTimes(c *Change) error {
	var times [10]time.Time
	if st := c.DataCenter; st != nil {
		times[0] = st.Changed
	} else {
		p := &c.Placement
		times[0], times[1], times[2], times[3] = p.Created, p.Updated, p.Move.Began, c.Event.Time
		if ag := c.Agreement; ag != nil {
			times[4], times[5], times[6] = ag.ExpiresAt, ag.Granted, ag.Revoked
		}
		if cr := c.Consent; cr != nil {
			times[7], times[8], times[9] = cr.ExpiresAt, cr.Granted, cr.Revoked
		}
		if o := c.Objection; o != nil {
			times[7], times[8] = o.Raised, o.Withdrawn
		}
	}
	for _, t := range times {
		if err := validTime(t); err != nil {
			return err
		}
	}
	return nil
}
