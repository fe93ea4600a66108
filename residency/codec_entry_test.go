package residency_test

import (
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

// TestStoredEntryReadsBack: whatever the change, the file store's log
// gives back the JSON entry it hashed, byte for byte, whether it stored
// the change in binary or (a change the binary form would not give back
// whole, such as a time in another zone) as its JSON; and most changes
// of the shape the Router writes are stored in binary.
func TestStoredEntryReadsBack(t *testing.T) {
	for _, utc := range []bool{false, true} {
		var inBinary, asJSON int
		for seed := range uint64(5000) {
			f := newChangeFiller(t, seed)
			f.utc = utc
			c := f.change()
			if utc {
				asTheRouterWrites(&c)
			}
			js, err := residency.AppendEntry(nil, &c)
			if err != nil {
				continue
			}
			bin, back, err := residency.StoredEntry(&c, js)
			if err != nil {
				t.Fatalf("seed %d: reading back %s: %v", seed, js, err)
			}
			if diff := cmp.Diff(string(js), string(back)); diff != "" {
				t.Fatalf("seed %d: entry read back mismatch (-hashed +read):\n%s", seed, diff)
			}
			if bin {
				inBinary++
			} else {
				asJSON++
			}
		}
		t.Logf("utc %v: %d in binary, %d as JSON", utc, inBinary, asJSON)
		// Both forms must be exercised, or the comparison proves little;
		// times in any zone but UTC, in most changes, keep them JSON.
		if utc && (inBinary < 500 || asJSON < 500) || !utc && asJSON < 500 {
			t.Errorf("utc %v: %d changes stored in binary, %d as JSON: the filler misses a case", utc, inBinary, asJSON)
		}
	}
}

// asTheRouterWrites makes c of the shape of the changes the Router
// writes: a data center's status alone, or an account's placement and
// event with records of the same account; a move's fields only while
// moving.
func asTheRouterWrites(c *residency.Change) {
	if c.DataCenter != nil {
		*c = residency.Change{DataCenter: c.DataCenter}
		return
	}
	id := c.Placement.AccountID
	c.Event.AccountID = id
	if c.Placement.Moving() {
		c.Placement.Move.AccountID = id
	} else {
		c.Placement.Move = residency.Move{}
	}
	if ag := c.Agreement; ag != nil {
		ag.AccountID = id
	}
	if cr := c.Consent; cr != nil {
		cr.AccountID = id
	}
	if o := c.Objection; o != nil {
		o.AccountID = id
	}
}
