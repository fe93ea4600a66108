package storetest

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
)

// The values the suite stores: changes built as the Router builds them
// (write.go, move.go, transfer.go), with values at the edges of what the
// Router may give a store.

// at is an ordinary time with nanoseconds, as the Router's clock gives.
var at = time.Date(2026, 11, 29, 2, 17, 15, 123456789, time.UTC)

// extremeTimes are times every store must hold exactly: the Router takes
// agreement expiries from callers (up to year 9999), and its clock is the
// caller's ([residency.WithClock]).
var extremeTimes = []struct {
	name string
	t    time.Time
}{
	{"year 1", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}, // one nanosecond after the zero time
	{"before 1678", time.Unix(0, math.MinInt64).UTC().Add(-1)},
	{"earliest UnixNano", time.Unix(0, math.MinInt64).UTC()},
	{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	{"Unix epoch", time.Unix(0, 0).UTC()},
	{"nanoseconds", at},
	{"latest UnixNano", time.Unix(0, math.MaxInt64).UTC()},
	{"after 2262", time.Unix(0, math.MaxInt64).UTC().Add(1)},
	{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
}

// longText returns prefix followed by multi-byte UTF-8, printable but
// awkward (quotes, backslashes, SQL wildcards, a byte order mark, a line
// separator, the last code point), to exactly 255 bytes: the longest
// account ID or agreement reference. It ends in an ASCII byte.
func longText(prefix string) string {
	const max = residency.MaxAccountIDLen
	cycle := []rune{'ü', '語', '𝄞', '"', '\\', '%', '_', '\u2028', '\ufeff', '\U0010ffff', 'é', '\'', ' '}
	b := []byte(prefix)
	for i := 0; len(b)+utf8.RuneLen(cycle[i%len(cycle)]) < max; i++ {
		b = utf8.AppendRune(b, cycle[i%len(cycle)])
	}
	for len(b) < max {
		b = append(b, 'x')
	}
	return string(b)
}

// awkwardIDs are account IDs that a store must keep apart and order
// bytewise: prefixes of one another, case, trailing space, composed and
// decomposed accents, multi-byte, and the longest.
func awkwardIDs() []string {
	long := longText("acct ")
	return []string{
		"a", "a b", "ab", "a-", "A", "Acme", "acme", "acme ", "~", "0", "10", "9",
		"\u00e9", "e\u0301", "語", "𝄞", "\ufeff", "\U0010ffff", `quote"'\%_`,
		long, long[:len(long)-1] + "y", runePrefix(long, 100),
	}
}

// runePrefix returns the longest prefix of s of at most n bytes that ends
// at a rune boundary.
func runePrefix(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// placed is the change that places a new account, as Router.Place makes it.
func placed(id string, t time.Time) residency.Change {
	p := residency.Placement{
		AccountID: id, Country: region.MustParseCountry("DE"), Region: region.EU,
		DataCenter: "linode-eu", Provider: provider.Linode, Backup: "aws-eu-west-1",
		Version: 1, Rule: "EU member state", Created: t, Updated: t,
	}
	return residency.Change{Placement: p, Event: residency.Event{
		Time: t, Kind: residency.Placed, AccountID: id, To: p.DataCenter, Rule: p.Rule, Version: 1,
	}}
}

// next is the change after c on the same account, one version later, with
// an event of kind at t; edit sets what the change changes.
func next(c residency.Change, kind residency.EventKind, t time.Time, edit func(*residency.Placement, *residency.Event)) residency.Change {
	p := c.Placement
	p.Version++
	p.Updated = t
	e := residency.Event{Time: t, Kind: kind, AccountID: p.AccountID, Version: p.Version}
	if edit != nil {
		edit(&p, &e)
	}
	return residency.Change{Placement: p, Event: e}
}

// life is the changes of one account through every kind of event: placed,
// granted a transfer to the US, moved there by that agreement (begun,
// aborted, begun again, completed), its agreement revoked, then a second
// agreement granted, and a move inside the region left open. Every time is
// t; the agreements expire at expires.
func life(id string, t, expires time.Time) []residency.Change {
	ref1, ref2 := "T-1 "+id, "T-0 "+id // the second sorts first
	c := placed(id, t)
	out := []residency.Change{c}
	add := func(kind residency.EventKind, edit func(*residency.Placement, *residency.Event)) *residency.Change {
		c = next(c, kind, t, edit)
		out = append(out, c)
		return &out[len(out)-1]
	}
	grant := func(ref string, to region.Region) {
		add(residency.TransferGranted, func(p *residency.Placement, e *residency.Event) {
			e.From, e.To, e.Reference = p.Region.String(), to.String(), ref
		}).Agreement = &residency.Agreement{
			Transfer: residency.Transfer{AccountID: id, To: to, Reference: ref, ExpiresAt: expires},
			Granted:  t,
		}
	}
	move := func(moveID, to string, toRegion region.Region, ref string) {
		add(residency.MoveBegun, func(p *residency.Placement, e *residency.Event) {
			p.Move = residency.Move{ID: moveID, AccountID: id, From: p.DataCenter, To: to, ToRegion: toRegion, Transfer: ref, Began: t}
			e.From, e.To, e.Reference, e.MoveID = p.DataCenter, to, ref, moveID
		})
	}
	grant(ref1, region.US)
	move("m-1 "+id, "aws-us-west-1", region.US, ref1)
	add(residency.MoveAborted, func(p *residency.Placement, e *residency.Event) {
		e.From, e.To, e.Reference, e.MoveID = p.Move.From, p.Move.To, p.Move.Transfer, p.Move.ID
		p.Move = residency.Move{}
	})
	move("m-2 "+id, "aws-us-west-1", region.US, ref1)
	add(residency.MoveCompleted, func(p *residency.Placement, e *residency.Event) {
		e.From, e.To, e.MoveID = p.Move.From, p.Move.To, p.Move.ID
		e.Rule, e.Reference = fmt.Sprintf("transfer agreement %q", ref1), ref1
		p.DataCenter, p.Provider, p.Backup, p.Move = "aws-us-west-1", provider.AWS, "linode-us", residency.Move{}
		p.Region, p.Rule, p.Transfer = region.US, e.Rule, ref1
	})
	add(residency.TransferRevoked, func(p *residency.Placement, e *residency.Event) {
		e.From, e.To, e.Reference = region.EU.String(), region.US.String(), ref1
	}).Agreement = &residency.Agreement{
		Transfer: residency.Transfer{AccountID: id, To: region.US, Reference: ref1, ExpiresAt: expires},
		Granted:  t, Revoked: t,
	}
	grant(ref2, region.APAC)
	move("m-3 "+id, "linode-us", region.US, "")
	return out
}

// imported is the change that imports an account, as Router.Import makes
// it: on a given data center, placed by the customer's choice, without
// country or backup.
func imported(id string, t time.Time) residency.Change {
	p := residency.Placement{
		AccountID: id, Region: region.APAC, DataCenter: "linode-sg", Provider: provider.Linode,
		Version: 1, Rule: "customer's choice", Created: t, Updated: t,
	}
	return residency.Change{Placement: p, Event: residency.Event{
		Time: t, Kind: residency.Imported, AccountID: id, To: p.DataCenter, Rule: p.Rule, Version: 1,
	}}
}

// dataCenter is the change that sets a data center's status, at version v.
func dataCenter(id string, s provider.Status, t time.Time, v uint64) residency.Change {
	return residency.Change{DataCenter: &residency.DataCenterState{ID: id, Status: s, Changed: t, Version: v}}
}

// richState is a state with every kind of record: accounts through every
// event kind, one imported, one placed in each region, with agreements,
// open moves and data center states.
func richState() []residency.Change {
	var out []residency.Change
	out = append(out, life("life", at, time.Time{})...)
	out = append(out, life(longText("life "), at.Add(time.Hour), at.AddDate(1, 0, 0))...)
	out = append(out, imported("imported", at))
	for _, r := range region.All() {
		c := placed("in "+r.String(), at)
		c.Placement.Region, c.Placement.Rule, c.Event.Rule = r, "customer's choice", "customer's choice"
		out = append(out, c)
	}
	out = append(out,
		dataCenter("linode-eu", provider.Draining, at, 1),
		dataCenter("aws-us-west-1", provider.Offline, at.Add(time.Second), 1),
		dataCenter("websupport-eu", provider.Active, at.Add(2*time.Second), 1),
	)
	return out
}
