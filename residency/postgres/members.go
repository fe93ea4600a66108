package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Leases and fences. A follower joins as a [Member] and renews its lease
// as it applies the log, saying how far it has applied; a writer that must
// not return before every follower has seen its change (a completed move,
// a drain) calls [Store.WaitApplied] with the change's position.
//
// Which clock judges: the database's. A lease ends at the database's
// now() plus the lease, set by the renewal; WaitApplied compares with the
// database's now(). The member judges its own lease by its monotonic clock
// from the moment it sent the renewal, which is before the database set
// the end, so the member always believes its lease over no later than the
// database does: it stops answering before anyone stops waiting for it,
// whatever the machines' wall clocks say.

// Member is a follower's row in the members table.
type Member struct {
	s  *Store
	id string
}

// Join adds a member that has applied the log up to applied, with a lease
// from now; name is for operators (a host name and process ID, say). It
// also removes members whose lease ended more than an hour ago.
func (s *Store) Join(ctx context.Context, name string, applied uint64) (*Member, time.Time, error) {
	if err := s.errClosed(); err != nil {
		return nil, time.Time{}, err
	}
	if s.readOnly {
		return nil, time.Time{}, ErrReadOnly
	}
	var b [12]byte
	rand.Read(b[:])
	m := &Member{s: s, id: hex.EncodeToString(b[:])}
	sent := time.Now()
	err := serialized(ctx, func() error {
		_, err := s.pool.Exec(ctx, s.sql.join, m.id, name, int64(applied), s.lease)
		return err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("postgres: joining as a member: %w", connectError(err))
	}
	return m, sent.Add(s.lease), nil
}

// ID returns the member's ID, random and unique.
func (m *Member) ID() string { return m.id }

// ErrLeft: the member has left, or was removed long after its lease
// ended; join again.
var ErrLeft = errors.New("postgres: not a member (left, or removed after its lease ended)")

// Renew records that the member has applied the log up to applied (it
// never goes back) and extends its lease. It returns when the lease ends
// by the local monotonic clock: until then the member may answer from
// memory. A renewal after the lease ended is a renewal like any other;
// the member must have caught up before it answers again.
func (m *Member) Renew(ctx context.Context, applied uint64) (time.Time, error) {
	sent := time.Now()
	var tag pgconn.CommandTag
	err := serialized(ctx, func() (err error) {
		tag, err = m.s.pool.Exec(ctx, m.s.sql.renew, m.id, int64(applied), m.s.lease)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("postgres: renewing the lease: %w", connectError(err))
	}
	if tag.RowsAffected() == 0 {
		return time.Time{}, ErrLeft
	}
	return sent.Add(m.s.lease), nil
}

// Leave removes the member: a cleanly closed follower holds no fence up.
func (m *Member) Leave(ctx context.Context) error {
	err := serialized(ctx, func() error {
		_, err := m.s.pool.Exec(ctx, m.s.sql.leave, m.id)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: leaving: %w", connectError(err))
	}
	return nil
}

// WaitApplied returns once every member other than except ("" for none)
// whose lease still runs, by the database's clock, has applied the log up
// to pos; a member cut off from the database holds it up until its lease
// ends at the latest. It polls, every few milliseconds at first.
func (s *Store) WaitApplied(ctx context.Context, pos uint64, except string) error {
	if err := s.errClosed(); err != nil {
		return err
	}
	wait := time.Millisecond
	// behind is the members found behind by the last query: a wait
	// whose context ends during the next one names them.
	var behind []behindMember
	waitingFor := func() string {
		if behind == nil {
			return "members"
		}
		return membersBehind(behind)
	}
	for {
		rows, err := s.pool.Query(ctx, s.sql.behind, int64(pos), except)
		if err != nil {
			return fmt.Errorf("postgres: waiting for %s to apply position %d: %w", waitingFor(), pos, connectError(err))
		}
		now, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (behindMember, error) {
			var m behindMember
			var applied int64
			var left float64
			err := r.Scan(&m.id, &m.name, &applied, &left)
			m.applied, m.left = uint64(applied), time.Duration(left*float64(time.Second))
			return m, err
		})
		if err != nil {
			return fmt.Errorf("postgres: waiting for %s to apply position %d: %w", waitingFor(), pos, connectError(err))
		}
		if len(now) == 0 {
			return nil
		}
		behind = now
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres: waiting for %s to apply position %d: %w", waitingFor(), pos, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// behindMember is a live member that has not applied the position a
// fence waits for.
type behindMember struct {
	id, name string
	applied  uint64
	left     time.Duration // until its lease ends, by the database's clock
}

// membersBehind names the members a fence waits for, for an operator to
// find the instances: up to three, each with its name, ID, how far it
// applied the log and when its lease ends.
func membersBehind(ms []behindMember) string {
	var b strings.Builder
	if len(ms) == 1 {
		b.WriteString("1 member")
	} else {
		fmt.Fprintf(&b, "%d members", len(ms))
	}
	for i, m := range ms[:min(len(ms), 3)] {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s, member %s, applied %d, lease ends in %v", m.name, m.id, m.applied, m.left.Round(100*time.Millisecond))
	}
	if len(ms) > 3 {
		fmt.Fprintf(&b, "; and %d more", len(ms)-3)
	}
	b.WriteString(")")
	return b.String()
}

// MemberState is a member as [Store.Members] reports it.
type MemberState struct {
	ID, Name string
	Applied  uint64
	Joined   time.Time
	// Expires is when the lease ends, by the database's clock.
	Expires time.Time
	// Live: the lease still runs, by the database's clock.
	Live bool
}

// Members lists the members, live or not, by ID: for operators and tests.
func (s *Store) Members(ctx context.Context) ([]MemberState, error) {
	if err := s.errClosed(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, s.sql.members)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing members: %w", connectError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MemberState, error) {
		var m MemberState
		var applied int64
		err := r.Scan(&m.ID, &m.Name, &applied, &m.Joined, &m.Expires, &m.Live)
		m.Applied = uint64(applied)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: listing members: %w", err)
	}
	return out, nil
}
