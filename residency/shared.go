package residency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// SharedStore is a [Store] that several Routers, in several processes,
// share: the store of [github.com/domicile-go/domicile/residency/postgres]
// is one. Besides the Store's methods it keeps a log of the changes
// applied, in commit order at positions without gaps, and a lease for each
// Router that follows it. [Open] detects it and then the Router
//
//   - loads the state with the log position it is at (SnapshotAt), after
//     starting its wake-ups (Wakeups), so that it misses nothing, and
//     once it has joined the members (see below) applies the log up to
//     the head before Open returns: a fence that counted the members
//     before it joined did not wait for it;
//   - follows the log: on every wake-up it reads the changes after the
//     last position it applied (Changes) and applies those of other
//     Routers to its memory, through the same serialised path as its own
//     writes (versions decide what is new, for accounts and data center
//     statuses alike);
//   - writes with Append, which also says where in the log the write went;
//   - keeps a lease (JoinMembership, [Membership.Renew]) and answers
//     [Router.Lookup] with [ErrStale] once it has not renewed it in time;
//   - fences [Router.CompleteMove] and [Router.Drain], and the writes that
//     narrow whom [Router.MayAccess] lets in ([Router.RevokeAccess],
//     [Router.Object], [Router.AbortMove], [Router.Delete]): they return
//     once every other live Router has applied them (WaitApplied);
//   - on a write refused with [ErrConflict] (another Router wrote the
//     account first, or changed a data center's status since the write was
//     decided: see Append), re-reads the accounts (LoadAccounts) and the
//     statuses (DataCenters), applies what is stored and decides again;
//   - on a write that memory alone would answer, refused (an account, a
//     move, a consent or an agreement not found, a conflict) or with
//     nothing to write (placing an account that exists, draining a
//     draining data center, granting a consent again), first reads the
//     log up to the store's head (Head, Changes), applies it and decides
//     again: memory may lag behind a write of another Router that no
//     refusal of the store would reveal. Placing an account that exists
//     thus costs a query of the store, which it does not on a file. When
//     the store cannot be read, memory decides, as Lookup answers from it
//     within the lease.
//
// Which clock judges what: leases are judged by the database's clock (a
// Router judges its own lease from the moment it sent the renewal, by its
// monotonic clock, so it gives up before the database does); times written
// in changes (events, agreements granted, expiry checks of agreements) are
// the writing Router's clock ([WithClock]).
type SharedStore interface {
	Store
	// SnapshotAt calls fn with every stored account, as Load does, and
	// returns the data centers' statuses and the log position, all from
	// one consistent snapshot.
	SnapshotAt(ctx context.Context, fn func(StoredAccount) error) (pos uint64, dcs []DataCenterState, err error)
	// Append is Apply that also returns the log position of the last of
	// the changes. statuses is how many data center status changes the
	// writer had seen when it decided the changes (the sum of the
	// versions of the states it holds): the store refuses the unit with
	// a stale [*ConflictError] when more have been committed, so that no
	// write decided on an old status commits after a newer one, such as
	// an account placed into a data center that another Router drained
	// meanwhile.
	Append(ctx context.Context, changes []Change, statuses uint64) (uint64, error)
	// Head returns the position of the last committed change.
	Head(ctx context.Context) (uint64, error)
	// Changes calls fn with every change after position after, in
	// commit order, and returns the position of the last one fn accepted.
	Changes(ctx context.Context, after uint64, fn func(pos uint64, c Change) error) (uint64, error)
	// Wakeups starts waking the caller, on c, whenever changes may have
	// been committed (at least once after it starts listening, and by
	// polling); stop ends it. It may skip the changes of this store's
	// own Appends: the Router learns their positions from Append, and
	// reads the log itself when an Append fails.
	Wakeups(ctx context.Context) (c <-chan struct{}, stop func(), err error)
	// JoinMembership adds a follower that has applied the log up to
	// applied, and returns it with the end of its lease by the local
	// clock.
	JoinMembership(ctx context.Context, name string, applied uint64) (Membership, time.Time, error)
	// WaitApplied returns once every member other than except whose
	// lease runs has applied the log up to pos.
	WaitApplied(ctx context.Context, pos uint64, except string) error
	// Lease is how long a follower may answer from memory after its
	// last renewal.
	Lease() time.Duration
}

// Membership is a Router's lease on a [SharedStore].
type Membership interface {
	// ID identifies the member.
	ID() string
	// Renew records how far the member has applied the log and extends
	// its lease; it returns when the lease ends by the local clock. An
	// error matching [ErrStale] says the member was removed (its lease
	// ended long ago): join again.
	Renew(ctx context.Context, applied uint64) (time.Time, error)
	// Leave removes the member, so that it holds no fence up.
	Leave(ctx context.Context) error
}

// ErrStale: the Router has not been able to renew its lease on a shared
// store (it cannot reach the database, or the database refuses the
// renewal) for longer than the lease, so its memory may miss changes
// others made: Lookup refuses to answer from it. It clears once the
// Router has caught up. The error a Router returns then matches ErrStale
// and, when a call to the store failed since the last renewal, says how
// the last one failed, such as
//
//	residency: this Router lost touch with the shared store for longer than its lease; its state may be stale: renewing its lease failed: ERROR: permission denied for table members (SQLSTATE 42501)
//
// That failure is told, not wrapped: it is in the past, not the outcome of
// the call, so the error matches none of its sentinels (a timeout of the
// renewal is not the caller's [context.DeadlineExceeded]).
var ErrStale = errors.New("residency: this Router lost touch with the shared store for longer than its lease; its state may be stale")

// follower is what a Router on a SharedStore keeps to follow the log.
type follower struct {
	s      SharedStore
	member Membership
	wake   <-chan struct{}
	stop   func()          // ends the wake-ups
	alive  context.Context // ends when the Router closes (cancel)
	cancel context.CancelFunc
	done   chan struct{}

	// fetched is the position the log was read to, or known without
	// reading it (this Router's own writes, see ownWrite); applied the
	// position applied to memory. Both only grow, under inboxMu.
	fetched uint64
	applied atomic.Uint64
	inboxMu sync.Mutex
	inbox   []logged
	// advanced is closed, and replaced, when applied advances.
	advanced chan struct{}
	poke     chan struct{} // asks the follow goroutine to read the log now

	// The lease: the timer sets Router.gate's gateStale at the local end of the
	// lease; a renewal moves it. leaseEnd is that end, by the monotonic
	// clock in nanoseconds after origin, which the reads check too
	// (Router.readable): after a pause of the process (SIGSTOP, a frozen
	// VM, a long garbage collection) the timer runs late, and a read
	// must not answer from memory meanwhile.
	origin    time.Time
	leaseEnd  atomic.Int64
	renewedAt time.Time // when the lease was last renewed (the follow goroutine's)
	reported  uint64    // the position the last renewal that succeeded reported (the follow goroutine's)
	leaseMu   sync.Mutex
	leaseGen  uint64
	timer     *time.Timer
	// failure is how the last call of the follow goroutine to the store
	// failed, since the last renewal that succeeded (nil if none did),
	// under leaseMu; staleErr is the error Lookup and the writes answer
	// while the gate says stale, set before the gate is (staleError).
	failure  error
	staleErr atomic.Pointer[staleErr]
}

// staleErr holds the error of a Router whose lease ran out.
type staleErr struct{ err error }

// staleError is the error of a Router whose lease has run out: ErrStale,
// with how the last call to the store failed when one did. It allocates
// nothing: the error is built when the lease runs out or a call fails.
func (r *Router) staleError() error {
	if f := r.follow; f != nil {
		if e := f.staleErr.Load(); e != nil {
			return e.err
		}
	}
	return ErrStale
}

// setStale builds the stale error from f.failure; f.leaseMu is held.
func (f *follower) setStale() {
	err := ErrStale
	if f.failure != nil {
		err = fmt.Errorf("%w: %v", ErrStale, f.failure)
	}
	f.staleErr.Store(&staleErr{err})
}

// storeOp is a call the follow goroutine makes to the shared store, as
// its failures are counted (domicile_store_errors_total) and told.
type storeOp int

const (
	opFollow storeOp = iota // reading the log
	opRenew                 // renewing the lease
	opJoin                  // joining the members again
	opHead                  // reading the log's head
)

// storeOps are the operation label values of the storeOp values, in order,
// and storeOpFailed what the stale error says of each.
var (
	storeOps      = [...]string{"follow", "renew", "join", "head"}
	storeOpFailed = [...]string{
		"following its log failed",
		"renewing its lease failed",
		"joining the members again failed",
		"reading the head of its log failed",
	}
)

// failed records how a call of the follow goroutine to the store failed,
// for the stale error, which it renews when the lease has run out
// already, and counts it.
func (r *Router) failed(op storeOp, err error) {
	r.metrics.storeFailed(op)
	f := r.follow
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	f.failure = fmt.Errorf("%s: %v", storeOpFailed[op], err)
	if r.gate.Load()&gateStale != 0 {
		f.setStale()
	}
}

// logged is a change read from the log, with its position.
type logged struct {
	pos uint64
	c   Change
}

// openShared loads the Router's state from a shared store and starts
// following it.
func (r *Router) openShared(ctx context.Context, s SharedStore, check func(*StoredAccount) error) ([]DataCenterState, error) {
	wake, stop, err := s.Wakeups(context.Background())
	if err != nil {
		return nil, fmt.Errorf("residency: listening to the shared store: %w", err)
	}
	f := &follower{s: s, stop: stop, done: make(chan struct{}), advanced: make(chan struct{}), poke: make(chan struct{}, 1), origin: time.Now()}
	var pos uint64
	var dcs []DataCenterState
	err = r.loadWith(func(fn func(StoredAccount) error) error {
		pos, dcs, err = s.SnapshotAt(ctx, fn)
		return err
	}, check)
	if err != nil {
		stop()
		return nil, err
	}
	m, end, err := s.JoinMembership(ctx, memberName(), pos)
	if err != nil {
		stop()
		return nil, fmt.Errorf("residency: joining the shared store's members: %w", err)
	}
	f.member, f.fetched = m, pos
	f.applied.Store(pos)
	f.wake = wake
	r.follow = f
	r.renewed(end, false)
	return dcs, nil
}

// catchUpJoined applies, at Open, what was committed between the
// snapshot Open loaded and the join of its member: a fence that counted
// the members before the join did not wait for this Router, so its change
// must be in memory before Open returns and Lookup answers. The head is
// read after the join: whatever such a fence waited for was committed
// before it counted the members, so before the head read here. Nothing
// else runs yet: no follow goroutine, no writer.
func (r *Router) catchUpJoined(ctx context.Context) error {
	f := r.follow
	if f == nil {
		return nil
	}
	rd, err := f.readToHead(ctx)
	if err != nil {
		return fmt.Errorf("residency: reading the shared store's log up to its head after joining its members: %w", err)
	}
	f.queue(rd)
	r.absorb()
	return nil
}

// logRead is what follower.readToHead read of the log: the changes, and
// the position read up to.
type logRead struct {
	got  []logged
	last uint64
}

// readToHead reads the log after the position read to, up to the shared
// store's head, read first; nothing when the head is no further.
func (f *follower) readToHead(ctx context.Context) (logRead, error) {
	head, err := f.s.Head(ctx)
	f.inboxMu.Lock()
	from := f.fetched
	f.inboxMu.Unlock()
	if err != nil || from >= head {
		return logRead{}, err
	}
	var rd logRead
	rd.last, err = f.s.Changes(ctx, from, func(pos uint64, c Change) error {
		rd.got = append(rd.got, logged{pos, c})
		return nil
	})
	return rd, err
}

// queue adds what was read to the inbox, for the leader to apply.
func (f *follower) queue(rd logRead) {
	if len(rd.got) == 0 {
		return
	}
	f.inboxMu.Lock()
	f.inbox = append(f.inbox, rd.got...)
	f.fetched = max(f.fetched, rd.last)
	f.inboxMu.Unlock()
}

// startFollowing starts the follow goroutine, once the Router is set up.
func (r *Router) startFollowing() {
	f := r.follow
	if f == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.alive, f.cancel = ctx, cancel
	go r.following(ctx, f.wake)
}

// memberName names this process to operators listing members.
func memberName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s pid %d", host, os.Getpid())
}

// memberID returns the ID of the Router's member.
func (f *follower) memberID() string {
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	return f.member.ID()
}

// following is the follow goroutine: it reads the log on every wake-up,
// has the leader apply it, and renews the lease.
func (r *Router) following(ctx context.Context, wake <-chan struct{}) {
	f := r.follow
	defer close(f.done)
	tick := time.NewTicker(max(f.s.Lease()/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-f.poke:
		case <-tick.C:
		}
		r.catchUp(ctx)
	}
}

// catchUp reads the log from where it was read to, applies it, renews the
// lease, and clears ErrStale once nothing committed before the renewal is
// missing. Errors (the database unreachable) are retried at the next
// wake-up; the lease runs out meanwhile.
func (r *Router) catchUp(ctx context.Context) {
	f := r.follow
	for range 3 {
		read, err := r.fetchAndApply(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.failed(opFollow, err)
			}
			return
		}
		applied := f.applied.Load()
		if !read && applied <= f.reported && r.gate.Load()&gateStale == 0 && time.Since(f.renewedAt) < f.s.Lease()/4 {
			// Nothing new in the log: nobody waits for this Router, so
			// the lease need not be renewed yet. Anything read may be
			// another Router's write whose fence waits, even when
			// memory had it already (read afresh after a conflict); so
			// may what the leader applied since the last renewal,
			// having read the log itself (readToHead).
			return
		}
		f.renewedAt = time.Now()
		rctx, cancel := context.WithTimeout(ctx, f.s.Lease())
		f.leaseMu.Lock()
		m := f.member
		f.leaseMu.Unlock()
		end, err := m.Renew(rctx, applied)
		if err != nil {
			if !errors.Is(err, ErrStale) {
				cancel()
				if ctx.Err() == nil {
					r.failed(opRenew, err)
				}
				return
			}
			// Removed after a long cut: join again.
			var m Membership
			if m, end, err = f.s.JoinMembership(rctx, memberName(), applied); err == nil {
				f.leaseMu.Lock()
				f.member = m
				f.leaseMu.Unlock()
			}
		}
		if err != nil {
			cancel()
			if ctx.Err() == nil {
				r.failed(opJoin, err)
			}
			return
		}
		f.reported = applied
		// A lease that ended before this renewal, its timer and no read
		// having noticed yet (a pause of the process), is over all the
		// same: other Routers' fences stopped waiting for this one.
		r.expireLate()
		if r.gate.Load()&gateStale == 0 {
			cancel()
			r.renewed(end, false)
			return
		}
		// Stale: answer again only once everything committed before
		// this renewal (after which any fence waits for us) is applied.
		head, err := f.s.Head(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				r.failed(opHead, err)
			}
			return
		}
		if head <= applied {
			r.renewed(end, true)
			return
		}
		r.renewed(end, false)
	}
}

// fetchAndApply reads the log after the position read to, and has the
// leader apply what memory lacks (others' writes); when memory had it all
// (this Router's own, or accounts read afresh after a conflict), it marks
// it applied without a batch. It reports whether it read any change, and
// why it failed.
func (r *Router) fetchAndApply(ctx context.Context) (read bool, err error) {
	f := r.follow
	var got []logged
	f.inboxMu.Lock()
	from := f.fetched
	f.inboxMu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, max(f.s.Lease(), r.writeTimeout))
	last, err := f.s.Changes(cctx, from, func(pos uint64, c Change) error {
		got = append(got, logged{pos, c})
		return nil
	})
	cancel()
	foreign := false // memory lacks some of it
	topo := r.topo.Load()
	for _, l := range got {
		// Versions in memory only grow: a change memory has now, it
		// keeps.
		if d := l.c.DataCenter; d != nil {
			if d.Version > topo.states[d.ID].Version {
				foreign = true
				break
			}
			continue
		}
		if a := r.lookup.get(l.c.Placement.AccountID); a == nil || a.Version < l.c.Placement.Version {
			foreign = true
			break
		}
	}
	read = len(got) > 0
	if read {
		f.inboxMu.Lock()
		if foreign || len(f.inbox) > 0 {
			f.inbox = append(f.inbox, got...)
		} else {
			f.advance(got[len(got)-1].pos)
		}
		// The leader may have moved fetched past what was read
		// meanwhile (ownWrite): it only grows.
		f.fetched = max(f.fetched, last)
		f.inboxMu.Unlock()
	}
	if err != nil {
		return read, err
	}
	if foreign {
		// An empty write: its leader applies the inbox first.
		if err := r.write(ctx, subject{}, func(*writer) error { return nil }); err != nil {
			return read, err
		}
	}
	return read, nil
}

// readToHead applies, for the leader between two batches, what the log
// holds up to the shared store's head, read at once: the wait of Sync,
// without the follow goroutine. Its store calls are bounded as a write's
// are (storeCall); when they fail it leaves memory as it is, which Lookup
// trusts within the lease.
func (r *Router) readToHead() {
	f := r.follow
	rd, err := storeCall(r, f.readToHead)
	if err != nil {
		return
	}
	f.queue(rd)
	r.absorb()
	if len(rd.got) > 0 {
		// The follow goroutine renews the lease with what was applied:
		// another Router's fence may wait for it, and the follow
		// goroutine, finding the log read, would not otherwise renew
		// before a quarter of a lease has passed.
		f.wakeUp()
	}
}

// ownWrite records, once memory holds a batch this Router wrote, that the
// log holds it at positions pos-n+1 to pos. When those follow right after
// what was read, the log need not be read back for them: fetched moves to
// pos, and applied with it once the inbox is applied (its changes come
// first). Otherwise others committed in between, and the follow goroutine
// reads them now; the store need not wake it for this Router's own
// writes (the postgres store's Wakeups does not).
func (f *follower) ownWrite(pos uint64, changes []Change) {
	n := uint64(len(changes))
	f.inboxMu.Lock()
	defer f.inboxMu.Unlock()
	switch {
	case pos <= f.fetched:
		// Read back already.
	case f.fetched == pos-n:
		f.fetched = pos
		if len(f.inbox) == 0 {
			f.advance(pos)
			return
		}
		// absorb applies the inbox, skips these (memory has them) and
		// advances to pos.
		for i, c := range changes {
			f.inbox = append(f.inbox, logged{pos - n + 1 + uint64(i), c})
		}
	default:
		f.wakeUp()
	}
}

// wakeUp asks the follow goroutine to read the log now.
func (f *follower) wakeUp() {
	select {
	case f.poke <- struct{}{}:
	default:
	}
}

// advance records that memory holds the log up to pos; f.inboxMu is held.
func (f *follower) advance(pos uint64) {
	if pos <= f.applied.Load() {
		return
	}
	f.applied.Store(pos)
	close(f.advanced)
	f.advanced = make(chan struct{})
}

// renewed sets the local end of the lease, and clears ErrStale if clear.
func (r *Router) renewed(end time.Time, clear bool) {
	f := r.follow
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	f.leaseGen++
	gen := f.leaseGen
	if f.timer != nil {
		f.timer.Stop()
	}
	// A renewal succeeded: a failure before it is not why the lease
	// will run out next, if it does. (While stale, the stale error keeps
	// naming why it ran out.)
	f.failure = nil
	if clear {
		r.gate.And(^gateStale)
	}
	f.leaseEnd.Store(int64(end.Sub(f.origin)))
	f.timer = time.AfterFunc(time.Until(end), func() {
		f.leaseMu.Lock()
		defer f.leaseMu.Unlock()
		if f.leaseGen == gen {
			r.expire()
		}
	})
}

// leaseOver reports whether the lease has ended by the monotonic clock.
func (f *follower) leaseOver() bool {
	return time.Since(f.origin) >= time.Duration(f.leaseEnd.Load())
}

// expire marks the Router stale, its lease over; f.leaseMu is held.
func (r *Router) expire() {
	if r.gate.Load()&gateStale == 0 {
		// The error first: whoever sees the gate sees it.
		r.follow.setStale()
		r.gate.Or(gateStale)
	}
}

// expireLate is the lease timer's work for a read that finds the lease
// over before the timer ran (readable): it marks the Router stale unless
// a renewal moved the lease meanwhile, and returns the read's error.
func (r *Router) expireLate() error {
	f := r.follow
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	if !f.leaseOver() {
		return nil
	}
	r.expire()
	return r.staleError()
}

// absorb applies the changes the follow goroutine read from the log, in
// their order, as one batch of its own; the leader calls it before each
// batch. An account's change applies when it is the next version of the
// account in memory (older ones are already there: this Router's own
// writes come back too); an account whose memory is further behind is
// read afresh from the store. A data center's status applies when no
// change of a higher position was applied.
func (r *Router) absorb() {
	f := r.follow
	if f == nil {
		return
	}
	f.inboxMu.Lock()
	in := f.inbox
	f.inbox = nil
	f.inboxMu.Unlock()
	if len(in) == 0 {
		return
	}
	// No clock: what absorb applies was decided elsewhere, and a clock
	// (WithClock) that panicked here would lose the inbox.
	w := &writer{db: r.db, lookup: r.lookup, topo: r.topo.Load(), dropTrails: r.trails != nil}
	defer w.abort()
	var gaps []string
	for _, l := range in {
		c := l.c
		if d := c.DataCenter; d != nil {
			// Versions decide, as for accounts: a status memory has
			// already (this Router's own, or read back after a
			// conflict) is not applied again.
			if states := w.topo.newer([]DataCenterState{*d}); states != nil {
				w.topo = r.newTopology(states)
			}
			continue
		}
		old := w.account(c.Placement.AccountID)
		var have uint64
		if old != nil {
			have = old.Version
		}
		switch {
		case c.Placement.Version <= have:
			continue
		case c.Placement.Version > have+1:
			gaps = append(gaps, c.Placement.AccountID)
			continue
		}
		a := &account{Placement: c.Placement}
		if old != nil {
			a.access = old.access
		}
		if !w.dropTrails {
			var trail []Event
			if old != nil {
				trail = old.history
			}
			a.history = append(trail, c.Event)
		}
		if c.Consent != nil {
			a.access = a.access.withConsent(*c.Consent)
		}
		if c.Objection != nil {
			a.access = a.access.withObjection(*c.Objection)
		}
		var ag *Agreement
		if c.Agreement != nil {
			cp := *c.Agreement
			ag = &cp
		}
		w.put(a, ag)
	}
	r.install(w)
	if len(gaps) > 0 {
		if st, err := r.reread(gaps, false); err == nil {
			r.reconcile(st)
		} else {
			r.unresolve(gaps, false)
		}
	}
	// The leader's readToHead and the follow goroutine may both have
	// read the log: the inbox then holds some changes twice, and need
	// not end with the furthest.
	last := in[0].pos
	for _, l := range in {
		last = max(last, l.pos)
	}
	f.inboxMu.Lock()
	f.advance(last)
	f.inboxMu.Unlock()
}

// Sync returns once this Router has applied every change committed, by
// any Router on its store, before the call: for a read ([Router.Lookup],
// [Router.MayAccess]) that must see a write made a moment before through
// another Router. Writes need none (see [SharedStore]). It costs one query
// of the store. On a store that is not shared (a file, memory) it returns
// at once. Its error matches [ErrUnavailable] when the store cannot be
// read, [ErrStale] when the store's log is shorter than what this Router
// applied (the database lost commits: restored from a backup, say), and
// [ErrClosed] when the Router is closed, before or while it waits; it
// wraps ctx's error when ctx ends first.
func (r *Router) Sync(ctx context.Context) error {
	if r.isClosed() {
		return ErrClosed
	}
	f := r.follow
	if f == nil {
		return ctx.Err()
	}
	applied := f.applied.Load() // committed positions all, so at most the head read next
	hctx, cancel := r.untilClose(ctx)
	defer cancel()
	head, err := f.s.Head(hctx)
	if err != nil {
		if f.alive.Err() != nil {
			return ErrClosed
		}
		return fmt.Errorf("%w: Sync: reading the shared store's head: %w", ErrUnavailable, err)
	}
	if head < applied {
		return fmt.Errorf("%w: Sync: the shared store's log ends at position %d, before position %d, which this Router applied: the database lost commits (restored from a backup, or failed over to a standby that missed them); open the Routers again", ErrStale, head, applied)
	}
	if err := f.waitApplied(ctx, head); err != nil {
		return fmt.Errorf("residency: Sync: waiting to apply position %d: %w", head, err)
	}
	return nil
}

// untilClose returns ctx, ended by Close too on a shared store, for a
// read of the store under a caller's context: on a database that does
// not answer, such a read would go on past Close, and hold up the
// Store's Close, which waits for the queries in flight. cancel releases
// it.
func (r *Router) untilClose(ctx context.Context) (_ context.Context, cancel func()) {
	f := r.follow
	if f == nil || f.alive == nil {
		return ctx, func() {}
	}
	ctx, end := context.WithCancel(ctx)
	stop := context.AfterFunc(f.alive, end)
	return ctx, func() {
		stop()
		end()
	}
}

// waitApplied returns once this Router has applied the log up to pos,
// waking its follow goroutine as it goes, or ctx's error.
func (f *follower) waitApplied(ctx context.Context, pos uint64) error {
	for {
		f.inboxMu.Lock()
		done, advanced := f.applied.Load() >= pos, f.advanced
		f.inboxMu.Unlock()
		if done {
			return nil
		}
		f.wakeUp()
		select {
		case <-advanced:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.alive.Done():
			return ErrClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Fence returns once this Router, and every other live Router on the
// shared store, has applied every change committed, by any Router, before
// the call: the wait that [Router.CompleteMove], [Router.Drain] and the
// writes that narrow whom [Router.MayAccess] lets in make for their own
// change.
// It is for a change whose fence was not waited for: a CompleteMove that
// returned [ErrUnavailable] (outcome unknown) or [ErrNotFenced] may have
// committed the move; once [Router.Sync] and [Router.Lookup] show the
// account on its target, Fence says when the source copy may go. As for
// CompleteMove, a Router cut off from the store holds it up for at most
// its lease. When the wait gives up (ctx's end, or the lease and the write
// timeout), the error matches ErrNotFenced; when the Router is closed
// meanwhile, it matches ErrClosed too, and after Close, Fence returns
// ErrClosed. On a store that is not shared (a file, memory) it returns at
// once.
func (r *Router) Fence(ctx context.Context) error {
	if r.isClosed() {
		return ErrClosed
	}
	return r.fence(ctx, 0, "fence")
}

// fence waits until this Router, and every other live Router on the
// shared store, has applied the log up to pos (0: the head, read now); a Router cut off
// holds it up for at most its lease. The change is committed whatever
// happens here; an error (ErrNotFenced) says only that the wait did not
// end: by ctx's end, after the lease and the write timeout, or because
// the Router was closed (then it wraps ErrClosed).
func (r *Router) fence(ctx context.Context, pos uint64, what string) (err error) {
	f := r.follow
	if f == nil {
		return nil
	}
	start := time.Now()
	r.metrics.fenceBegun()
	defer func() { r.metrics.fenceEnded(start, err) }()
	// A live member applies within its lease, and a cut-off one stops
	// counting when its lease ends: past the lease and a write timeout,
	// waiting longer means this Router cannot reach the store.
	ctx, cancel := context.WithTimeout(ctx, f.s.Lease()+r.writeTimeout)
	defer cancel()
	defer context.AfterFunc(f.alive, cancel)()
	gaveUp := func(err error) error {
		if f.alive.Err() != nil {
			err = ErrClosed
		}
		return fmt.Errorf("%w: %s: %w", ErrNotFenced, what, err)
	}
	for pos == 0 {
		// Where the write went is unknown (its outcome was settled by
		// reading back), or it changed nothing: wait for the head.
		head, err := f.s.Head(ctx)
		if err == nil {
			pos = head
			break
		}
		if ctx.Err() != nil {
			return gaveUp(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	// This Router first: what others committed before pos may not be
	// in its memory yet (its own write does not read the log), and a
	// caller goes on from here with Lookup or PlanEvacuation.
	if err := f.waitApplied(ctx, pos); err != nil {
		return gaveUp(err)
	}
	for {
		err := f.s.WaitApplied(ctx, pos, f.memberID())
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return gaveUp(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// closeFollow stops following and leaves the members, so that this
// Router holds no fence up. It returns why leaving failed, if it did.
func (r *Router) closeFollow() error {
	f := r.follow
	if f == nil {
		return nil
	}
	// Reads stop first: once the member has left, fences elsewhere no
	// longer wait for this Router, whose memory is no longer followed.
	r.gate.Or(gateClosed)
	if f.cancel != nil {
		f.cancel()
		<-f.done
	}
	f.stop()
	f.leaseMu.Lock()
	f.leaseGen++
	if f.timer != nil {
		f.timer.Stop()
	}
	f.leaseMu.Unlock()
	// Best effort, and bounded on its own: a database that does not
	// answer must not hold Close for the write timeout. A Router that
	// could not leave holds fences elsewhere up for its lease at most.
	ctx, cancel := context.WithTimeout(context.Background(), min(r.writeTimeout, leaveTimeout))
	defer cancel()
	f.leaseMu.Lock()
	m := f.member
	f.leaseMu.Unlock()
	if err := m.Leave(ctx); err != nil {
		return fmt.Errorf("residency: could not leave the shared store's members: fences of other Routers wait for this one until its lease of %v has run out: %w", f.s.Lease(), err)
	}
	return nil
}

// leaveTimeout bounds Close's leaving of the members of a shared store.
const leaveTimeout = 3 * time.Second
