package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// Why a head row, and not a sequence: a sequence hands out numbers before
// commit, so transactions commit out of order, and a reader that takes
// "pos > last" skips a change that commits later with a smaller number.
// Each Apply instead takes its positions from the single head row in its
// last statement (UPDATE head SET pos = pos + n RETURNING pos): the row
// lock, held until commit, makes the next writer wait for this one's
// commit or rollback and then read the position it left, so positions
// have no gaps and follow commit order, and once a reader sees position p
// every position below p is committed and visible too. The price is that
// commits of one database take turns for the time of a commit; the
// Router's group commit puts many changes in each. Watermill's answer
// (storing pg_current_xact_id() and reading only below the snapshot's
// xmin) lets commits run in parallel but gives positions with gaps and
// holds readers back behind any long transaction; at the rate of writes
// of this store the head row is simpler and exact.

// changesPage is how many log rows Changes reads per query.
const changesPage = 1000

// Head returns the log position of the last committed change (0 when
// there is none).
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.errClosed(); err != nil {
		return 0, err
	}
	pos, err := s.head(ctx)
	return uint64(pos), err
}

// head reads the head's position.
func (s *Store) head(ctx context.Context) (int64, error) {
	return read(ctx, s, func() (int64, error) {
		var pos int64
		if err := s.pool.QueryRow(ctx, s.sql.head).Scan(&pos); err != nil {
			return 0, fmt.Errorf("postgres: reading the head: %w", connectError(err))
		}
		return pos, nil
	})
}

// Changes calls fn, in commit order, with every change committed after log
// position after, and returns the position of the last one fn accepted
// (after itself when there was none). It stops at fn's first error and
// returns it with the position of the change before. A change of an
// account carries its placement, its event and its agreement; a change of
// a data center its status. Changes of one Apply have consecutive
// positions and arrive in the order Apply got them.
func (s *Store) Changes(ctx context.Context, after uint64, fn func(pos uint64, c residency.Change) error) (last uint64, err error) {
	if err := s.errClosed(); err != nil {
		return after, err
	}
	last = after
	for {
		var fnErr error // fn's own error, given back as it is
		n, err := readSome(ctx, s, func(n *int) (int, error) {
			return s.changesPage(ctx, &last, func(pos uint64, c residency.Change) error {
				*n++
				fnErr = fn(pos, c)
				return fnErr
			})
		})
		if fnErr != nil {
			return last, fnErr
		}
		if err != nil || n < changesPage {
			return last, err
		}
	}
}

// changesPage reads one page of the log after *last.
func (s *Store) changesPage(ctx context.Context, last *uint64, fn func(uint64, residency.Change) error) (int, error) {
	rows, err := s.pool.Query(ctx, s.sql.changes, int64(*last), changesPage)
	if err != nil {
		return 0, fmt.Errorf("postgres: reading changes: %w", connectError(err))
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			trimmed int64
			pos     *int64
			raw     []byte
		)
		if err := rows.Scan(&trimmed, &pos, &raw); err != nil {
			return n, fmt.Errorf("postgres: reading changes: %w", err)
		}
		if *last < uint64(trimmed) {
			return n, fmt.Errorf("%w: reading after position %d, the log starts after %d", ErrTrimmed, *last, trimmed)
		}
		if pos == nil {
			break // no changes after *last
		}
		// Positions have no gaps (see above): a gap is damage, and
		// reading past it would skip changes.
		if uint64(*pos) != *last+1 {
			return n, fmt.Errorf("%w: changes log jumps from position %d to %d", residency.ErrCorrupt, *last, *pos)
		}
		var c residency.Change
		if err := json.Unmarshal(raw, &c); err != nil {
			return n, fmt.Errorf("%w: change at position %d: %v", residency.ErrCorrupt, *pos, err)
		}
		if err := fn(uint64(*pos), c); err != nil {
			return n, err
		}
		*last = uint64(*pos)
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("postgres: reading changes: %w", err)
	}
	return n, nil
}

// Listener wakes a follower when changes may have been committed: on each
// notification of the store's channel, once after every connection (the
// first included), which covers what was missed while it was not
// listening, and every poll interval ([WithPollInterval]) in any case,
// which covers lost notifications. The wake-ups coalesce: C holds at most
// one. A wake-up is a hint, never the data: the follower reads the log
// with [Store.Changes].
//
// It listens on a connection of its own, outside the pool but opened as
// the pool opens its connections (with a pool from [WithPool], through
// the pool's BeforeConnect and AfterConnect hooks), pinged every poll
// interval, and reconnects by itself with backoff after the
// connection is lost; while it cannot, it goes on polling. With
// [WithPollOnly] it only polls.
type Listener struct {
	// C receives the wake-ups.
	C <-chan struct{}

	c      chan struct{}
	s      *Store
	cancel context.CancelFunc
	done   chan struct{}

	// skipOwn: a notification of one of the store's own Appends, which
	// ends with its tag, wakes no one (see [Store.Wakeups]).
	skipOwn bool

	mu        sync.Mutex
	listening bool
	err       error
}

// Listen starts a Listener. It runs until ctx is done, [Listener.Close] or
// [Store.Close]. The first wake-up comes once it listens (at once with
// [WithPollOnly]): a follower that starts a Listener and then loads a
// [Store.Snapshot] misses nothing, as the wake-up after the snapshot makes
// it read the log from the snapshot's position.
func (s *Store) Listen(ctx context.Context) (*Listener, error) {
	return s.listen(ctx, false)
}

func (s *Store) listen(ctx context.Context, skipOwn bool) (*Listener, error) {
	c := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(ctx)
	l := &Listener{C: c, c: c, s: s, cancel: cancel, done: make(chan struct{}), skipOwn: skipOwn}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return nil, ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	go l.run(ctx)
	return l, nil
}

// Close stops the listener and waits until it has.
func (l *Listener) Close() {
	l.cancel()
	<-l.done
	l.s.mu.Lock()
	delete(l.s.listeners, l)
	l.s.mu.Unlock()
}

// Listening reports whether the listener is connected and listening, and
// otherwise the last error it met (nil while it first connects, and in
// poll-only mode).
func (l *Listener) Listening() (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.listening, l.err
}

func (l *Listener) set(listening bool, err error) {
	l.mu.Lock()
	l.listening, l.err = listening, err
	l.mu.Unlock()
}

func (l *Listener) wake() {
	select {
	case l.c <- struct{}{}:
	default:
	}
}

func (l *Listener) run(ctx context.Context) {
	defer close(l.done)
	poll := l.s.poll
	if l.s.pollOnly {
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			l.wake()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
	const minBackoff, maxBackoff = 50 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		err := l.listen(ctx, func() { backoff = minBackoff })
		if ctx.Err() != nil {
			return
		}
		l.set(false, err)
		// Not listening: poll while waiting to reconnect.
		l.wake()
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(backoff, poll)):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listen connects, listens and waits for notifications until the
// connection fails or ctx is done.
func (l *Listener) listen(ctx context.Context, connected func()) error {
	conn, err := l.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.s.channel}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: listener: %w", err)
	}
	connected()
	l.set(true, nil)
	l.wake()
	// The next poll, a poll interval after the last wake-up: a skipped
	// notification does not put it off.
	pollAt := time.Now().Add(l.s.poll)
	for {
		wctx, cancel := context.WithDeadline(ctx, pollAt)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if !l.skipOwn || !strings.HasSuffix(n.Payload, *l.s.ownTag.Load()) {
				l.wake()
				pollAt = time.Now().Add(l.s.poll)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			// No wake-up for a poll interval: poll, and check the
			// connection.
			l.wake()
			pctx, cancel := context.WithTimeout(ctx, max(l.s.poll, time.Second))
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("postgres: listener: ping: %w", err)
			}
			pollAt = time.Now().Add(l.s.poll)
		default:
			return fmt.Errorf("postgres: listener: %w", err)
		}
	}
}

// connect opens the listener's connection as the pool opens its own: with
// a copy of the pool's connection settings, passed through the pool's
// BeforeConnect hook (which may set credentials fetched for each
// connection, such as cloud IAM tokens or Vault's dynamic passwords), and
// handed to its AfterConnect hook once connected. Only the context
// watcher is the listener's own.
func (l *Listener) connect(ctx context.Context) (*pgx.Conn, error) {
	pc := l.s.pool.Config()
	cfg := pc.ConnConfig // a copy already
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "domicile listener"
	}
	ctx, cancel := context.WithTimeout(ctx, max(cfg.ConnectTimeout, defaultConnectTimeout))
	defer cancel()
	if pc.BeforeConnect != nil {
		if err := pc.BeforeConnect(ctx, cfg); err != nil {
			return nil, fmt.Errorf("postgres: listener: the pool's BeforeConnect: %w", err)
		}
	}
	// Interrupt waits by a deadline only: the default handler also sends
	// a cancel request, which could arrive late and cancel the ping that
	// follows an interrupted wait. Set after BeforeConnect, which must
	// not undo it.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: listener: %w", connectError(err))
	}
	if pc.AfterConnect != nil {
		if err := pc.AfterConnect(ctx, conn); err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("postgres: listener: the pool's AfterConnect: %w", err)
		}
	}
	return conn, nil
}
