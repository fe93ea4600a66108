package region

import (
	"encoding/json"
	"fmt"
	"iter"
	"strings"
)

// Set is a set of regions, as a bitset: a small comparable value whose
// [Set.Has] is one bit test. The zero Set is empty.
type Set uint8

// SetOf returns the set of the given regions. It panics on an invalid
// region: use it for constants and values already validated.
func SetOf(rs ...Region) Set {
	var s Set
	for _, r := range rs {
		if !r.IsValid() {
			panic(fmt.Sprintf("region: SetOf(%v): invalid region", r))
		}
		s |= 1 << r
	}
	return s
}

// AllRegions is the set of the four regions.
const AllRegions Set = 1<<US | 1<<EU | 1<<UK | 1<<APAC

// Has reports whether r is in the set.
func (s Set) Has(r Region) bool { return r.IsValid() && s&(1<<r) != 0 }

// With returns the set with r added. It panics on an invalid region.
func (s Set) With(r Region) Set { return s | SetOf(r) }

// Union returns the regions in s or t.
func (s Set) Union(t Set) Set { return s | t }

// IsValid reports whether the set holds only valid regions. The empty set
// is valid.
func (s Set) IsValid() bool { return s&^AllRegions == 0 }

// Len returns the number of regions in the set.
func (s Set) Len() int {
	n := 0
	for range s.All() {
		n++
	}
	return n
}

// All yields the regions of the set in the order of [All]: US, EU, UK, APAC.
func (s Set) All() iter.Seq[Region] {
	return func(yield func(Region) bool) {
		for r := US; r <= APAC; r++ {
			if s.Has(r) && !yield(r) {
				return
			}
		}
	}
}

// Regions returns the regions of the set in the order of [All], or nil for
// the empty set.
func (s Set) Regions() []Region {
	var out []Region
	for r := range s.All() {
		out = append(out, r)
	}
	return out
}

// String returns the regions joined by ", ", such as "US, EU"; the empty
// set returns "".
func (s Set) String() string {
	var b strings.Builder
	for r := range s.All() {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.String())
	}
	if !s.IsValid() {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "Set(%#x)", uint8(s&^AllRegions))
	}
	return b.String()
}

// MarshalJSON writes the set as a JSON list of region names in the order
// of [All], such as ["US","EU"].
func (s Set) MarshalJSON() ([]byte, error) {
	if !s.IsValid() {
		return nil, fmt.Errorf("%w in set %#x", ErrUnknownRegion, uint8(s))
	}
	names := make([]string, 0, 4)
	for r := range s.All() {
		names = append(names, r.String())
	}
	return json.Marshal(names)
}

// UnmarshalJSON reads a JSON list of region names, each as [Parse] accepts
// it. An unknown name is an error that matches [ErrUnknownRegion]; a region
// listed twice is an error too.
func (s *Set) UnmarshalJSON(data []byte) error {
	var names []string
	if err := json.Unmarshal(data, &names); err != nil {
		return err
	}
	var out Set
	for _, n := range names {
		r, err := Parse(n)
		if err != nil {
			return err
		}
		if out.Has(r) {
			return fmt.Errorf("region: %s listed twice", r)
		}
		out = out.With(r)
	}
	*s = out
	return nil
}
