package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/domicile-go/domicile/residency"
)

// The Store is a residency.SharedStore: a Router opened on it follows the
// other Routers on the database (see the package doc's "How a Router
// follows the others, step by step").
var _ residency.SharedStore = (*Store)(nil)

// SnapshotAt is [Store.Snapshot] for [residency.SharedStore]: the
// accounts, the data centers' statuses and the log position, from one
// snapshot.
func (s *Store) SnapshotAt(ctx context.Context, fn func(residency.StoredAccount) error) (uint64, []residency.DataCenterState, error) {
	snap, err := s.Snapshot(ctx, fn)
	return snap.Position, snap.DataCenters, err
}

// Wakeups is [Store.Listen] for [residency.SharedStore]: c receives the
// Listener's wake-ups, and stop closes it. Unlike Listen's, these skip the
// notifications of this Store's own Appends: the Router that writes
// through the Store learns from Append where its changes went, and reads
// the log itself when others committed in between.
func (s *Store) Wakeups(ctx context.Context) (c <-chan struct{}, stop func(), err error) {
	l, err := s.listen(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	return l.C, l.Close, nil
}

// JoinMembership is [Store.Join] for [residency.SharedStore]. The
// membership's Renew returns an error matching [residency.ErrStale], as
// well as [ErrLeft], once the member was removed.
func (s *Store) JoinMembership(ctx context.Context, name string, applied uint64) (residency.Membership, time.Time, error) {
	m, end, err := s.Join(ctx, name, applied)
	if err != nil {
		return nil, time.Time{}, err
	}
	return membership{m}, end, nil
}

// membership is a Member as a residency.Membership.
type membership struct{ *Member }

func (m membership) Renew(ctx context.Context, applied uint64) (time.Time, error) {
	end, err := m.Member.Renew(ctx, applied)
	if errors.Is(err, ErrLeft) {
		err = fmt.Errorf("%w: %w", residency.ErrStale, err)
	}
	return end, err
}
