package residency

import (
	"fmt"
	"math"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
)

// dataCenter is a catalog data center with its placement hash seed.
type dataCenter struct {
	provider.DataCenter
	seed uint64 // FNV-1a state after the data center's ID and a NUL
}

func newDataCenter(d provider.DataCenter) *dataCenter {
	return &dataCenter{DataCenter: d, seed: fnv1a(fnvOffset, d.ID+"\x00")}
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// score is the data center's weighted rendezvous score for an account:
// -weight/ln(u) for u uniform in (0,1) from a hash of (data center,
// account). The data center with the highest score wins, and over many
// accounts each wins in proportion to its weight. The hash is fixed (FNV-1a
// and the SplitMix64 finaliser), so a choice never depends on the process.
func (d *dataCenter) score(accountID string) float64 {
	h := fnv1a(d.seed, accountID)
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return -float64(d.Weight) / math.Log(u)
}

// choose picks the account's data center and backup among the active data
// centers of its home region.
func (t *topology) choose(home region.Region, accountID string) (*dataCenter, string, error) {
	best := t.best(home, accountID, nil)
	if best == nil {
		return nil, "", fmt.Errorf("%w: account %q, region %s", ErrNoDataCenter, accountID, home)
	}
	return best, t.backupFor(accountID, best), nil
}

// best returns the active data center of region reg with the highest score
// for the account, other than except; nil if there is none.
func (t *topology) best(reg region.Region, accountID string, except *dataCenter) *dataCenter {
	var best *dataCenter
	var bestScore float64
	now := t.now()
	for _, d := range t.active[reg] {
		if d == except || !d.EffectiveAt(now) {
			continue
		}
		if s := d.score(accountID); best == nil || s > bestScore {
			best, bestScore = d, s
		}
	}
	return best
}

// backupFor picks the account's backup data center: the best-scoring other
// active data center of the primary's region, on another provider where
// there is one; "" where the region has no other active data center.
func (t *topology) backupFor(accountID string, primary *dataCenter) string {
	var best *dataCenter
	var bestScore float64
	now := t.now()
	for _, d := range t.active[primary.Region] {
		if d == primary || !d.EffectiveAt(now) {
			continue
		}
		s := d.score(accountID)
		better := best == nil ||
			(d.Provider != primary.Provider) && (best.Provider == primary.Provider) ||
			(d.Provider != primary.Provider) == (best.Provider != primary.Provider) && s > bestScore
		if better {
			best, bestScore = d, s
		}
	}
	if best == nil {
		return ""
	}
	return best.ID
}

// now returns the time for effective dates: the Router's clock when a data
// center has an effective date, else the zero time, at which every data
// center without one is effective, without reading the clock.
func (t *topology) now() time.Time {
	if !t.announced {
		return time.Time{}
	}
	return t.clock()
}
