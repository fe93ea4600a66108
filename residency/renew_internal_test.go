package residency

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/google/go-cmp/cmp"
)

// loggedStore is the part of a shared store that readToHead and catchUp
// call: a log of changes at positions 1 to len(log).
type loggedStore struct {
	SharedStore
	log []Change
}

func (s *loggedStore) Head(context.Context) (uint64, error) { return uint64(len(s.log)), nil }
func (s *loggedStore) Lease() time.Duration                 { return time.Hour }
func (s *loggedStore) Changes(ctx context.Context, after uint64, fn func(uint64, Change) error) (uint64, error) {
	for i := after; i < uint64(len(s.log)); i++ {
		if err := fn(i+1, s.log[i]); err != nil {
			return i, err
		}
	}
	return max(after, uint64(len(s.log))), nil
}

// renewals records the positions its member's renewals report.
type renewals struct {
	Membership
	mu      sync.Mutex
	applied []uint64
}

func (m *renewals) Renew(ctx context.Context, applied uint64) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied = append(m.applied, applied)
	return time.Now().Add(time.Hour), nil
}

func (m *renewals) reported() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]uint64(nil), m.applied...)
}

// TestRenewsWhatTheLeaderApplied: when the leader applies another
// Router's change by reading the log itself (readToHead, before deciding
// a write that memory alone would answer), the follow goroutine renews
// the lease at once with the new position, which is what that Router's
// fence waits for.
func TestRenewsWhatTheLeaderApplied(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	placed := Change{
		Placement: Placement{AccountID: "globex", Region: region.EU, DataCenter: "linode-eu", Provider: "linode", Version: 1, Created: at, Updated: at},
		Event:     Event{Kind: Placed, AccountID: "globex", To: "linode-eu", Version: 1, Time: at},
	}
	m := &renewals{}
	r, f := handFollowed(t, &follower{s: &loggedStore{log: []Change{placed}}, member: m, poke: make(chan struct{}, 1), advanced: make(chan struct{})})
	f.renewedAt = time.Now() // renewed a moment ago
	// The leader reads the log before deciding a write.
	r.readToHead()
	if got, err := r.Lookup("globex"); err != nil || got.DataCenter != "linode-eu" {
		t.Fatalf("Lookup(globex) after readToHead = %+v, %v", got, err)
	}
	// The follow goroutine's turn, on the change's notification or on
	// the leader's wake-up.
	r.catchUp(ctx)
	if diff := cmp.Diff([]uint64{1}, m.reported()); diff != "" {
		t.Errorf("positions renewed once the leader applied position 1 (-want +got):\n%s", diff)
	}
	// Nothing new since: no renewal until a quarter of a lease (15
	// minutes, far beyond the test on any machine) has passed.
	r.catchUp(ctx)
	if diff := cmp.Diff([]uint64{1}, m.reported()); diff != "" {
		t.Errorf("positions renewed with nothing applied since (-want +got):\n%s", diff)
	}
}
