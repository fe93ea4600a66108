package residency

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Writes are group-committed. A caller queues its request; if no writer is
// leading, it leads: it takes every queued request, runs them in one memdb
// transaction, makes their changes durable in one Store.Apply (one fsync),
// commits, and answers each. Callers that queue meanwhile wait, and the
// first of them leads the next batch. A lone caller thus commits in its own
// goroutine, and under load the cost of a commit is shared by every caller
// that arrived during the previous one.
//
// What the store answers decides what the Router does (see Store.Apply):
//
//   - nil: the batch is durable; memdb's transaction commits and the batch
//     is published to Lookup.
//   - an error matching ErrConflict: nothing was applied. A batch of one
//     request answers it with the error; a larger batch is run again one
//     request at a time, so that only the request the store refuses fails.
//   - an error matching ErrStoreFailed: the store says that nothing was
//     applied. Nothing is read back: a batch of one request answers the
//     error, a larger batch is run again one request at a time, as for a
//     conflict, so that only a request the store refuses alone fails;
//     but when the store could not be reached (a network error), its
//     requests that changed something fail with it, and those that
//     changed nothing run again alone.
//   - any other error, a panic of the store, or no answer within the write
//     timeout: the outcome is unknown. The leader drops the batch's
//     transaction, re-reads the batch's accounts (and the data centers'
//     statuses) from the store, and makes memory match what is stored
//     (Router.reconcile). A request whose every change is stored succeeds;
//     one whose changes are not is answered with ErrStoreFailed, never
//     ErrConflict. Requests that changed nothing are answered as they were
//     when the whole batch is stored, else run again alone, since what they
//     read may not have happened.
//   - when the re-read fails too, or the store still has not returned, the
//     batch is answered with ErrUnavailable and its accounts are kept as
//     unresolved: every later batch first re-reads them (Router.resolve)
//     and is refused with ErrUnavailable until that succeeds. The Router
//     thus never writes on top of a state it does not know. Once a store
//     call that did not return in time returns, the Router resolves at
//     once (Router.kick), so that reads catch up without waiting for a
//     write.
//
// Every store call runs under a context with the write timeout
// (WithWriteTimeout), or with the latest of the batch's callers' deadlines
// when each has one and it is sooner (Router.callDeadline): a caller's
// write on a database that hangs ends by its deadline, its outcome
// unknown. A caller whose context ends while its batch is being committed
// returns at once, its outcome unknown; the leader goes on learning it (and
// when a read back that the deadline cut fails, kicks a resolve under the
// write timeout). A leading caller whose deadline comes before what its
// batch may take commits the batch in a goroutine of its own (lead), so
// that it can leave too.
// On a PromptStore, which returns by that deadline, the
// leader makes the call itself. On any other store the call runs in a
// goroutine of its own, and the leader stops waiting for it a little after
// its deadline (storeGrace); until such a call returns, no other store call
// is made (the Store contract: one call at a time). A panic while a batch
// is led (in a store's call, the clock or the Router itself), or
// runtime.Goexit there, fails that batch and releases the lead.

// writeFunc is one write request. It reads through the writer and changes
// state only through w.put, and only once it has decided to succeed: a
// request that returns an error must not have changed anything, since the
// batch's transaction goes on with the other requests. A request may run
// twice (when the store refuses its batch, each request is retried alone),
// so it must set its results afresh on each run, and count refusals with
// w.refuse, which counts them once, at the final answer.
type writeFunc func(w *writer) error

type request struct {
	fn   writeFunc
	what subject    // what the write concerns, for its errors (Router.write)
	done chan error // buffered: the answer, or errLead
	// deadline is the caller's context's deadline, zero when it has none.
	deadline time.Time
	// mu is held by the leader while fn runs, and by the caller when it
	// leaves before the outcome (left): from then on fn, which writes
	// the caller's variables, runs no more (request.run).
	mu   sync.Mutex
	left bool

	// Owned by the leader that runs the request.
	answered bool
	err      error   // fn's error on its last run
	refusals []error // the refusals of its last run, counted when answered
	// pos is the log position of its batch's write on a shared store, 0
	// when unknown; rereads counts the runs again after another Router's
	// write refused it; caughtUp is set once its batch read the shared
	// store's log before deciding again (see runBatch).
	pos      uint64
	rereads  int
	caughtUp bool
}

// maxRereads bounds how often a request refused because another Router
// wrote its accounts first is decided again.
const maxRereads = 8

// errLead tells a queued request that it leads the next batch. It is the
// only message a request gets while it is in queue.pending; a request gets
// its answer only once a leader took it out.
var errLead = errors.New("residency: lead the next batch")

// queue holds the requests waiting for a leader.
type queue struct {
	mu      sync.Mutex
	pending []*request
	leading bool
	closed  bool
	// lastBatch is the size of the last batch: more than one means
	// callers are waiting on each other.
	lastBatch int
	inflight  sync.WaitGroup
}

// write runs fn as part of a batch and returns once the batch is durable
// and published to Lookup, or fn's refusal (counted in the metrics), or why
// the write failed. A caller whose context ends while its request still
// waits for a leader withdraws it and gets the context's error; once a
// leader took it, the caller gets an error matching ErrUnavailable and the
// context's error, as the outcome is not known yet. what is the account, move or data center the write
// concerns, which fn's refusals name themselves: an error of any other
// cause (the context, the store, Close) is wrapped with it, so that a
// caller's log says which write failed. The zero subject wraps nothing.
func (r *Router) write(ctx context.Context, what subject, fn writeFunc) error {
	_, err := r.writeAt(ctx, what, fn)
	return err
}

// writeFenced is write for a change that narrows whom MayAccess lets in
// (a consent revoked, an objection raised, a move aborted, the account
// deleted): once it is committed, it returns only when every other live
// Router on a shared store has applied it too (Router.fence), so that
// none lets a sub-processor in that the caller was just told is shut
// out. When that wait gives up, the error matches ErrNotFenced: the
// change stands.
func (r *Router) writeFenced(ctx context.Context, what subject, fn writeFunc) error {
	pos, err := r.writeAt(ctx, what, fn)
	if err != nil {
		return err
	}
	return r.fence(ctx, pos, what.String())
}

// writeAt is write that also returns the log position of the write on a
// shared store (0 when unknown or not shared).
func (r *Router) writeAt(ctx context.Context, what subject, fn writeFunc) (uint64, error) {
	req := &request{fn: fn, what: what, done: make(chan error, 1)}
	req.deadline, _ = ctx.Deadline()
	if err := r.submit(ctx, req); err != nil {
		if what != (subject{}) {
			// A caller's write, not the Router's own empty one.
			r.metrics.writeFailed(err)
		}
		return 0, err // the leader may still set req.pos if the caller left
	}
	return req.pos, nil
}

// subject is what a write concerns, named in its errors: a kind
// ("account") and an ID, or a kind alone.
type subject struct{ kind, id string }

// String names the subject as its errors do.
func (s subject) String() string {
	if s.id == "" {
		return s.kind
	}
	return fmt.Sprintf("%s %q", s.kind, s.id)
}

// about wraps err, a write's error that is not its own refusal, with what
// the write concerns. A ConflictError of an account or data center names
// it already.
func (req *request) about(err error) error {
	var ce *ConflictError
	switch {
	case req.what.kind == "" || errors.As(err, &ce) && (ce.AccountID != "" || ce.DataCenter != ""):
		return err
	}
	return fmt.Errorf("%s: %w", req.what, err)
}

func (r *Router) submit(ctx context.Context, req *request) error {
	if err := ctx.Err(); err != nil {
		return req.about(err)
	}
	q := &r.queue
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return req.about(ErrClosed)
	}
	q.inflight.Add(1)
	defer q.inflight.Done()
	q.pending = append(q.pending, req)
	lead := !q.leading
	q.leading = true
	q.mu.Unlock()
	if !lead {
		select {
		case err := <-req.done:
			if err != errLead {
				return err
			}
		case <-ctx.Done():
			if q.withdraw(req) {
				return req.about(ctx.Err())
			}
			return req.leave(ctx)
		}
	}
	if !r.lead(req) {
		return <-req.done
	}
	// Its batch is committed in a goroutine of its own (lead): wait
	// for it, or leave at the context's end.
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return req.leave(ctx)
	}
}

// leave is the answer to a caller whose context ended while its request's
// batch is being committed: the leader learns the outcome whether or not
// the caller waits, and once the caller left, fn, which writes the
// caller's variables, runs no more.
func (req *request) leave(ctx context.Context) error {
	req.mu.Lock()
	defer req.mu.Unlock()
	select {
	case err := <-req.done:
		return err
	default:
	}
	req.left = true
	return req.about(fmt.Errorf("%w: the context ended while the write was being committed, and its outcome is not known yet: %w", ErrUnavailable, ctx.Err()))
}

// errLeft is the outcome of a request whose caller left (request.left):
// it writes nothing, and is no refusal.
var errLeft = errors.New("residency: the caller left")

// run runs the request's fn in w, unless its caller has left.
func (req *request) run(w *writer) error {
	req.mu.Lock()
	defer req.mu.Unlock()
	if req.left {
		return errLeft
	}
	return req.fn(w)
}

// withdraw takes out of the queue the request of a caller that gave up,
// and reports whether it was still there. A request told to lead passes
// the lead on to the next one.
func (q *queue) withdraw(req *request) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.pending, req)
	if i < 0 {
		return false
	}
	q.pending = slices.Delete(q.pending, i, i+1)
	select {
	case <-req.done: // errLead, the only message a queued request gets
		q.handOff()
	default:
	}
	return true
}

// passLead is handOff, taking q.mu.
func (q *queue) passLead() {
	q.mu.Lock()
	q.handOff()
	q.mu.Unlock()
}

// handOff gives the lead to the first queued request, if any; q.mu is held.
func (q *queue) handOff() {
	if len(q.pending) == 0 {
		q.leading = false
		return
	}
	q.pending[0].done <- errLead
}

// lead commits the queued requests as one batch, then hands the lead to the
// first request queued meanwhile, if any. Once the Router is closed, it
// answers the queued requests with ErrClosed instead: they changed nothing.
// It runs in the goroutine of self, the request of the caller that leads,
// unless the batch's store calls may run past self's deadline (another
// request has a later deadline, or none): then it commits the batch in a goroutine of its own, so that
// its caller can leave by its deadline, and reports true.
func (r *Router) lead(self *request) (async bool) {
	q := &r.queue
	q.mu.Lock()
	if q.lastBatch > 1 && r.store != nil {
		// Under load, the callers the last batch answered are about to
		// queue again: let them, so that one fsync serves them all,
		// rather than commit the one or two already here.
		for range 8 {
			n := len(q.pending)
			q.mu.Unlock()
			runtime.Gosched()
			q.mu.Lock()
			if len(q.pending) == n {
				break
			}
		}
	}
	batch := q.pending
	q.pending = nil
	q.lastBatch = len(batch)
	closed := q.closed
	async = !closed && r.store != nil && runsPast(batch, self.deadline)
	if async {
		q.inflight.Add(1) // Close waits for the batch
	}
	q.mu.Unlock()
	// The lead passes on in a deferred call, even if the leading
	// goroutine ends inside the batch (runtime.Goexit in a store's call
	// or a write).
	if async {
		go func() {
			defer q.inflight.Done()
			defer q.passLead()
			r.commit(batch)
		}()
		return true
	}
	defer q.passLead()

	if closed {
		for _, req := range batch {
			r.answer(req, req.about(ErrClosed))
		}
	} else {
		r.commit(batch)
	}
	return false
}

// runsPast reports whether the store calls of batch may last past
// deadline, a leading caller's: it has one, and another request of the
// batch has a later one, or none (latestDeadline).
func runsPast(batch []*request, deadline time.Time) bool {
	if deadline.IsZero() {
		return false
	}
	latest := latestDeadline(batch)
	return latest.IsZero() || latest.After(deadline)
}

// behindLimit is how many committed account rows may wait for memdb's
// accounts table. Inserting a row costs go-memdb a path copy of the radix
// tree (~70 allocations) and the garbage collection that follows; rows
// inserted together in one transaction share the copied nodes. So a batch
// does not insert its account rows: it appends them to Router.behind, and a
// batch inserts all waiting rows at once when there are behindLimit of them.
// Readers that scan the accounts table see the waiting rows through a view
// (Router.snapshot). Writers never read the accounts table (writer.account
// reads the lookup index); the moves and transfers tables are written at
// once.
const behindLimit = 4096

// commit runs a batch in one transaction and answers every request in it.
func (r *Router) commit(batch []*request) {
	w := &writer{db: r.db, lookup: r.lookup, topo: r.topo.Load(), durable: r.store != nil, dropTrails: r.trails != nil}
	applying := false // the store may hold some of the batch
	finished := false
	defer func() {
		w.abort()
		p := recover()
		if p == nil && finished {
			return
		}
		// A panic, or runtime.Goexit (for example a test's t.FailNow in a
		// store's call): this goroutine ends, but the batch's other
		// callers get their answer.
		err := errWriteExited
		if p != nil {
			err = fmt.Errorf("residency: internal error: a write panicked: %v", p)
		}
		if applying {
			r.unresolve(w.touched())
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			if r.follow != nil {
				// The write may be in the log, where this Router's
				// follower must read it by itself (as after settle).
				r.follow.wakeUp()
			}
		}
		for _, req := range batch {
			r.fail(req, err)
		}
	}()
	if batch = r.dropExpired(batch); len(batch) == 0 {
		finished = true
		return
	}
	r.callDeadline = latestDeadline(batch)
	// The clock (WithClock) is the caller's code too: it may panic or
	// end the goroutine, like a store's call.
	w.now = r.now()
	r.runBatch(w, batch, &applying)
	finished = true
}

// dropExpired answers the requests whose callers' deadline has passed
// with context.DeadlineExceeded, as their callers would have withdrawn
// them had they been quicker: they change nothing. It returns the others.
func (r *Router) dropExpired(batch []*request) []*request {
	now := time.Now()
	expired := func(req *request) bool { return !req.deadline.IsZero() && !now.Before(req.deadline) }
	if !slices.ContainsFunc(batch, expired) {
		return batch
	}
	live := make([]*request, 0, len(batch))
	for _, req := range batch {
		if expired(req) {
			r.fail(req, context.DeadlineExceeded)
		} else {
			live = append(live, req)
		}
	}
	return live
}

// latestDeadline returns the latest of the batch's callers' deadlines, or
// the zero time when one of them has none. The Router's own empty writes
// (the zero subject: a follower's, kick's), which write nothing, bound
// nothing.
func latestDeadline(batch []*request) time.Time {
	var latest time.Time
	for _, req := range batch {
		if req.what == (subject{}) {
			continue
		}
		if req.deadline.IsZero() {
			return time.Time{}
		}
		if req.deadline.After(latest) {
			latest = req.deadline
		}
	}
	return latest
}

// errWriteExited is a batch's error when a call within it ended its
// goroutine with runtime.Goexit.
var errWriteExited = errors.New("residency: internal error: a write ended its goroutine (runtime.Goexit)")

// runBatch is commit's work: it decides the batch in w, has the store
// apply it (setting *applying first) and answers every request.
func (r *Router) runBatch(w *writer, batch []*request, applying *bool) {
	r.absorb()
	if err := r.resolve(); err != nil {
		for _, req := range batch {
			r.fail(req, err)
		}
		return
	}
	// The statuses as the inbox and the store's answers left them.
	w.topo = r.topo.Load()
	statuses := w.topo.statuses // what the batch decides on
	for _, req := range batch {
		w.begin(req)
		req.refusals = req.refusals[:0]
		if req.err = req.run(w); req.err != nil && req.err != errLeft {
			req.refusals = append(req.refusals, req.err)
		}
	}
	w.cur = nil
	if r.follow != nil && !batch[0].caughtUp && fromMemory(w, batch) {
		// A request would be answered from memory alone, refused or with
		// nothing to write: memory may lag behind another Router's
		// write (an account it created or deleted, a consent it
		// granted, a status it changed), which a write that writes
		// learns of through the store's refusal, and this one would
		// not. Read the log up to the store's head and decide again.
		w.abort()
		batch[0].caughtUp = true
		r.readToHead()
		r.commit(batch)
		return
	}
	if len(w.changes) > 0 {
		*applying = true
		pos, err := storeCall(r, func(ctx context.Context) (uint64, error) {
			if r.follow != nil {
				return r.follow.s.Append(ctx, w.changes, statuses)
			}
			return 0, r.store.Apply(ctx, w.changes)
		})
		switch {
		case err == nil:
			if r.follow != nil {
				r.wrote(batch, pos)
			}
		case r.follow != nil && statusConflict(err) && batch[0].rereads < maxRereads:
			// Another Router changed a data center's status since the
			// batch was decided, on statuses every request of it
			// read: learn them, and decide the whole batch again.
			w.abort()
			batch[0].rereads++
			st, rerr := r.reread(nil, true)
			if rerr != nil {
				for _, req := range batch {
					r.fail(req, err)
				}
				return
			}
			r.reconcile(st)
			r.commit(batch)
			return
		case errors.Is(err, ErrConflict) && len(batch) > 1:
			// Nothing was applied. Find the request the store refuses:
			// commit one by one, once this batch let go of memdb's
			// writer lock.
			w.abort()
			r.oneByOne(batch)
			return
		case errors.Is(err, ErrConflict) && r.follow != nil && batch[0].rereads < maxRereads:
			// Another Router wrote first: learn what it wrote (the
			// accounts, and the data centers' statuses, which
			// every decision reads), and decide again.
			w.abort()
			req := batch[0]
			req.rereads++
			ids, _ := w.touched()
			st, rerr := r.reread(ids, true)
			if rerr != nil {
				r.fail(req, err)
				return
			}
			r.reconcile(st)
			r.commit(batch)
			return
		case errors.Is(err, ErrConflict):
			r.fail(batch[0], err)
			return
		default:
			w.abort()
			r.settle(batch, w, err)
			return
		}
	}
	r.install(w)
	if r.follow != nil && len(w.changes) > 0 && batch[0].pos > 0 {
		r.follow.ownWrite(batch[0].pos, w.changes)
	}
	for _, f := range w.after {
		f()
	}
	for _, req := range batch {
		r.answer(req, req.err)
	}
}

// fromMemory reports whether a request of the batch, one a caller asked
// for (not a Router's own empty write), wrote nothing, or answered an
// account's placement from memory (an Import's existing row, beside rows
// it writes).
func fromMemory(w *writer, batch []*request) bool {
	if w.existing {
		return true
	}
	for i, req := range batch {
		if changes, _ := w.of(i); len(changes) == 0 && req.what != (subject{}) && req.err != errLeft {
			return true
		}
	}
	return false
}

// statusConflict reports whether err refuses a write for data center
// statuses that changed since it was decided, rather than for an account.
func statusConflict(err error) bool {
	var ce *ConflictError
	return errors.As(err, &ce) && ce.Stale && ce.AccountID == ""
}

// wrote records where a batch's write went in the shared store's log, for
// the fences of its requests.
func (r *Router) wrote(batch []*request, pos uint64) {
	for _, req := range batch {
		req.pos = pos
	}
}

// answer gives a request its answer, once, and counts the refusals of the
// run that answered it.
func (r *Router) answer(req *request, err error) {
	if req.answered {
		return
	}
	req.answered = true
	for _, e := range req.refusals {
		r.refuse(e)
	}
	req.done <- err
}

// fail answers a request with why its batch failed: its refusals, if any,
// did not happen.
func (r *Router) fail(req *request, err error) {
	req.refusals = nil
	r.answer(req, req.about(err))
}

// install commits a durable batch to memdb and publishes it. A snapshot
// takes r.mem to see memdb and Router.behind as of one batch.
func (r *Router) install(w *writer) {
	flush := len(r.behind) >= behindLimit
	if flush {
		txn := w.tx()
		for _, rows := range [][]*account{r.behind, w.changed} {
			for _, a := range rows {
				mustInsert(txn, tableAccounts, a)
			}
		}
	}
	r.mem.Lock()
	if w.txn != nil {
		w.txn.Commit()
		w.txn = nil
	}
	if flush {
		// A new slice: snapshots may still read the old one.
		r.behind = make([]*account, 0, behindLimit)
	} else {
		r.behind = append(r.behind, w.changed...)
	}
	r.mem.Unlock()
	r.publish(w)
}

// publish makes a committed transaction visible to Lookup and the metrics.
func (r *Router) publish(w *writer) {
	r.topo.Store(w.topo)
	for _, a := range w.changed {
		r.lookup.put(a)
	}
	for _, c := range w.counts {
		if n, ok := r.accountsOn[c.id]; ok {
			n.Add(c.delta)
		}
	}
}

// settle answers a batch whose Apply failed with an error other than a
// conflict: the outcome is unknown until the store is read again, unless
// the store's error matches ErrStoreFailed, which says that nothing was
// applied.
func (r *Router) settle(batch []*request, w *writer, applyErr error) {
	if errors.Is(applyErr, ErrStoreFailed) {
		// Memory, which the batch's transaction left as it was, is what
		// the store holds: nothing to read back. The store may refuse
		// what one request wrote (a value, a table its role may not
		// write): as for a conflict, the requests of a larger batch run
		// again one by one, unless the store could not be reached at
		// all, which each of them would meet in turn (a connection
		// attempt may take seconds).
		if len(batch) > 1 && !unreachable(applyErr) {
			r.oneByOne(batch)
		} else {
			r.notApplied(batch, w, applyErr)
		}
		return
	}
	if r.follow != nil {
		// The write may be in the log, at a position this Router does
		// not know, and a shared store need not wake it for its own
		// writes: its follower reads the log now.
		defer r.follow.wakeUp()
	}
	ids, dcs := w.touched()
	st, err := r.reread(ids, dcs)
	if err == nil && r.trails != nil {
		// A TrailStore's LoadAccounts gives no trail: holds reads the
		// accounts' trails instead.
		st.trails, err = r.rereadTrails(ids)
	}
	if err != nil {
		r.unresolve(ids, dcs)
		if !r.callDeadline.IsZero() && r.storeBusy == nil {
			// The callers' deadline bounded the reading back (and may
			// have ended it, as it may have the write): learn the
			// outcome in the background, under the write timeout (a
			// kick bounds nothing else).
			go r.kick()
		}
		err = fmt.Errorf("%w: the store failed (%w) and reading it back failed too (%w): the outcome is unknown", ErrUnavailable, applyErr, err)
		for _, req := range batch {
			r.fail(req, err)
		}
		return
	}
	r.reconcile(st)
	stored := true
	var unchanged []*request
	for i, req := range batch {
		switch changes, after := w.of(i); {
		case len(changes) == 0:
			unchanged = append(unchanged, req)
		case st.holds(changes):
			for _, f := range after {
				f()
			}
			r.answer(req, req.err)
		default:
			stored = false
			r.fail(req, fmt.Errorf("%w: %w", ErrStoreFailed, applyErr))
		}
	}
	for _, req := range unchanged {
		if stored {
			r.answer(req, req.err)
		} else {
			r.commit([]*request{req})
		}
	}
}

// unreachable reports whether a store's error says that it could not be
// reached: a network error (a connection refused, timed out, reset).
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// notApplied answers a batch whose Apply failed with an error matching
// ErrStoreFailed, by which the store says that nothing was applied, when
// the store could not be reached: the requests that changed something
// fail with it, and those that changed nothing run again alone, since
// what they read may not have happened.
func (r *Router) notApplied(batch []*request, w *writer, applyErr error) {
	var unchanged []*request
	for i, req := range batch {
		if changes, _ := w.of(i); len(changes) == 0 {
			unchanged = append(unchanged, req)
			continue
		}
		r.fail(req, applyErr)
	}
	for _, req := range unchanged {
		r.commit([]*request{req})
	}
}

// oneByOne commits the requests of a batch the store refused, applying
// nothing, one at a time, so that only those it refuses alone fail; the
// batch has let go of memdb's writer lock.
func (r *Router) oneByOne(batch []*request) {
	for _, req := range batch {
		if req.what == (subject{}) {
			// The Router's own empty write: this batch did what it is
			// for (absorb, resolve), and alone it would hold up the
			// caller of this goroutine, whose deadline does not bound
			// it.
			r.answer(req, nil)
			continue
		}
		r.commit([]*request{req})
	}
}

// resolve learns the outcome of earlier writes whose outcome is unknown, if
// any, before a batch runs.
func (r *Router) resolve() error {
	if len(r.unresolved) == 0 && !r.unresolvedDCs {
		return nil
	}
	ids := make([]string, 0, len(r.unresolved))
	for id := range r.unresolved {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	st, err := r.reread(ids, r.unresolvedDCs)
	if err != nil {
		return fmt.Errorf("%w: the outcome of an earlier write is unknown and reading the store failed: %w", ErrUnavailable, err)
	}
	r.reconcile(st)
	clear(r.unresolved)
	r.unresolvedDCs = false
	r.outcomeUnknown.Store(false)
	return nil
}

// unresolve records accounts (and the data centers' statuses) whose stored
// state is unknown.
func (r *Router) unresolve(ids []string, dcs bool) {
	if r.unresolved == nil {
		r.unresolved = make(map[string]struct{})
	}
	for _, id := range ids {
		r.unresolved[id] = struct{}{}
	}
	r.unresolvedDCs = r.unresolvedDCs || dcs
	r.outcomeUnknown.Store(len(r.unresolved) > 0 || r.unresolvedDCs)
}

// kick resolves unknown outcomes as soon as a store call that did not
// return in time has returned, by leading an empty write.
func (r *Router) kick() {
	r.write(context.Background(), subject{}, func(*writer) error { return nil })
}

// stored is what the store holds of some accounts, and the data centers'
// statuses when they were read.
type stored struct {
	accounts map[string]StoredAccount
	ids      []string // the accounts read, in order
	readDCs  bool
	dcs      []DataCenterState
	// trails holds the accounts' trails read from a TrailStore (whose
	// LoadAccounts gives none), for holds; nil on other stores.
	trails map[string][]Event
}

// rereadTrails reads the trails of accounts from the TrailStore.
func (r *Router) rereadTrails(ids []string) (map[string][]Event, error) {
	return storeCall(r, func(ctx context.Context) (map[string][]Event, error) {
		m := make(map[string][]Event, len(ids))
		for _, id := range ids {
			h, err := r.trails.Trail(ctx, id)
			if err != nil {
				return nil, err
			}
			m[id] = h
		}
		return m, nil
	})
}

// reread reads accounts, and the data centers' statuses if dcs, back from
// the store.
func (r *Router) reread(ids []string, dcs bool) (stored, error) {
	return storeCall(r, func(ctx context.Context) (stored, error) {
		st := stored{accounts: make(map[string]StoredAccount, len(ids)), ids: ids, readDCs: dcs}
		err := r.store.LoadAccounts(ctx, ids, func(s StoredAccount) error {
			st.accounts[s.Placement.AccountID] = s
			return nil
		})
		if err != nil {
			return stored{}, err
		}
		if dcs {
			if st.dcs, err = r.store.DataCenters(ctx); err != nil {
				return stored{}, err
			}
		}
		return st, nil
	})
}

// holds reports whether every change is stored: the account's trail has
// the change's event, or the data center the change's status.
func (st stored) holds(changes []Change) bool {
	for _, c := range changes {
		if d := c.DataCenter; d != nil {
			if !slices.ContainsFunc(st.dcs, func(s DataCenterState) bool {
				return s.ID == d.ID && s.Status == d.Status && s.Changed.Equal(d.Changed)
			}) {
				return false
			}
			continue
		}
		s, ok := st.accounts[c.Placement.AccountID]
		trail := s.History
		if st.trails != nil {
			trail = st.trails[c.Placement.AccountID]
		}
		if !ok || !slices.ContainsFunc(trail, func(e Event) bool { return sameEvent(e, c.Event) }) {
			return false
		}
	}
	return true
}

func sameEvent(a, b Event) bool {
	return a.Version == b.Version && a.Kind == b.Kind && a.Time.Equal(b.Time) && a.AccountID == b.AccountID &&
		a.From == b.From && a.To == b.To && a.Rule == b.Rule && a.Reference == b.Reference && a.MoveID == b.MoveID
}

// reconcile makes memory match what the store holds of the accounts read,
// and of the data centers' statuses if they were read: the lookup index,
// the account rows, the moves and transfers tables and the counts per data
// center. An account the store does not hold is left as memory has it:
// memory holds only committed rows, which the store had.
func (r *Router) reconcile(st stored) {
	txn := r.db.Txn(true)
	defer txn.Abort()
	var rows []*account
	var counts []dcDelta
	for _, id := range st.ids {
		s, ok := st.accounts[id]
		old := r.lookup.get(id)
		if !ok || old != nil && old.Version >= s.Placement.Version {
			continue
		}
		a := storedRow(s)
		if old != nil && old.Moving() && getMove(txn, old.Move.ID) != nil {
			mustDelete(txn, tableMoves, &old.Move)
		}
		if a.Moving() {
			mustInsert(txn, tableMoves, &a.Move)
		}
		var gone []*Agreement
		for ag := range agreementsOf(txn, id) {
			gone = append(gone, ag)
		}
		for _, ag := range gone {
			mustDelete(txn, tableTransfers, ag)
		}
		for i := range s.Agreements {
			mustInsert(txn, tableTransfers, &s.Agreements[i])
		}
		switch {
		case old == nil:
			counts = append(counts, dcDelta{a.DataCenter, +1})
		case old.DataCenter != a.DataCenter:
			counts = append(counts, dcDelta{old.DataCenter, -1}, dcDelta{a.DataCenter, +1})
		}
		rows = append(rows, a)
	}
	topo := r.topo.Load()
	if states := topo.newer(st.dcs); states != nil {
		topo = r.newTopology(states)
	}
	w := &writer{changed: rows, counts: counts, topo: topo}
	r.mem.Lock()
	txn.Commit()
	r.behind = append(r.behind, rows...)
	r.mem.Unlock()
	r.publish(w)
}

// storeCall runs f, a call of the store, with a context that ends after
// the write timeout, or by the batch's callers' deadline when that is
// sooner (Router.callDeadline), and returns f's result or an error for a
// panic of f. On a PromptStore, which returns by the deadline, f runs in
// the caller's goroutine (where runtime.Goexit in f ends the leader:
// commit answers its batch). On any other store it runs in a goroutine of
// its own, and when f has not returned storeGrace after its deadline,
// storeCall returns an error matching ErrUnavailable; until f returns,
// later calls fail at once the same way; runtime.Goexit in f is an error,
// as a panic is. Only the leader calls it.
func storeCall[T any](r *Router, f func(context.Context) (T, error)) (v T, err error) {
	var zero T
	deadline, byCallers := time.Now().Add(r.writeTimeout), false
	if d := r.callDeadline; !d.IsZero() && d.Before(deadline) {
		deadline, byCallers = d, true
	}
	if r.prompt {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				v, err = zero, fmt.Errorf("residency: the store panicked: %v", p)
			}
		}()
		v, err = f(ctx)
		return v, timedOut(ctx, err, r.writeTimeout, byCallers)
	}
	if r.storeBusy != nil {
		select {
		case <-r.storeBusy:
			r.storeBusy = nil
		default:
			return zero, fmt.Errorf("%w: an earlier call of the store has not returned", ErrUnavailable)
		}
	}
	type result struct {
		v   T
		err error
	}
	answer := make(chan result, 1)
	returned := make(chan struct{})
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	go func() {
		defer close(returned)
		defer cancel()
		res := result{err: errStoreExited} // unless f returns or panics
		defer func() {
			if p := recover(); p != nil {
				res = result{err: fmt.Errorf("residency: the store panicked: %v", p)}
			}
			answer <- res
		}()
		res.v, res.err = f(ctx)
	}()
	t := time.NewTimer(time.Until(deadline) + storeGrace(r.writeTimeout))
	defer t.Stop()
	select {
	case res := <-answer:
		return res.v, timedOut(ctx, res.err, r.writeTimeout, byCallers)
	case <-t.C:
		r.storeBusy = returned
		go func() {
			<-returned
			r.kick()
		}()
		by := fmt.Sprintf("within %v", r.writeTimeout+storeGrace(r.writeTimeout))
		if byCallers {
			by = fmt.Sprintf("by its callers' deadline and %v after", storeGrace(r.writeTimeout))
		}
		return zero, fmt.Errorf("%w: the store did not return %s; the outcome is unknown", ErrUnavailable, by)
	}
}

// timedOut returns err, a store call's error, as a writeTimeoutError when
// the call's context, ctx, ran out of the write timeout: the caller's own
// context may have no deadline, and a context.DeadlineExceeded in the
// chain would tell it that it ended. When the callers' deadline ended it
// (byCallers), a context.DeadlineExceeded is theirs, and err stays as it
// is; so does a conflict.
func timedOut(ctx context.Context, err error, timeout time.Duration, byCallers bool) error {
	if err == nil || byCallers || ctx.Err() != context.DeadlineExceeded || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrConflict) {
		return err
	}
	return &writeTimeoutError{err: err, timeout: timeout}
}

// writeTimeoutError is a store call's error when the write timeout ended
// the call. It matches what the store's error matches (errors.Is and
// errors.As, a driver's error types included), but for
// context.DeadlineExceeded, which is the Router's deadline and not the
// caller's. It has no Unwrap, which would let errors.Is reach it.
type writeTimeoutError struct {
	err     error
	timeout time.Duration
}

func (e *writeTimeoutError) Error() string {
	return fmt.Sprintf("residency: the store did not answer within the write timeout of %v (%v)", e.timeout, e.err)
}

func (e *writeTimeoutError) Is(target error) bool {
	return target != context.DeadlineExceeded && errors.Is(e.err, target)
}

func (e *writeTimeoutError) As(target any) bool { return errors.As(e.err, target) }

// errStoreExited is a store call's error when it ended its goroutine
// with runtime.Goexit (for example a test's t.FailNow in a store double).
var errStoreExited = errors.New("residency: the store's call ended its goroutine (runtime.Goexit)")

// storeGrace is how long a store call is waited for past its deadline, for
// a store that honours its context to return: a quarter of the timeout, at
// least a second.
func storeGrace(timeout time.Duration) time.Duration { return max(timeout/4, time.Second) }

// view is a consistent read of the state for scans (iterators, Verify):
// memdb's tables as of one read transaction, with the account rows that
// were committed but still wait for memdb's accounts table.
type view struct {
	txn     *memdb.Txn
	waiting []*account // by account ID, the newest row of each
}

// snapshot returns a view with every committed change. It never waits for
// a write in progress: it takes r.mem, which a leader holds only while it
// commits memdb's transaction after the store answered.
func (r *Router) snapshot() view {
	r.mem.Lock()
	txn := r.db.Txn(false)
	behind := r.behind
	r.mem.Unlock()
	// The leader appends past len(behind) and replaces the slice when it
	// flushes: the rows read here are not written meanwhile.
	waiting := slices.Clone(behind)
	slices.SortStableFunc(waiting, func(a, b *account) int { return strings.Compare(a.AccountID, b.AccountID) })
	out := waiting[:0]
	for i, a := range waiting {
		if i+1 < len(waiting) && waiting[i+1].AccountID == a.AccountID {
			continue // a newer row follows
		}
		out = append(out, a)
	}
	return view{txn: txn, waiting: out}
}

// accounts yields every account row, in account ID order (memdb's order:
// IDs hold no NUL byte, so byte order with the key's NUL is string order).
func (v view) accounts() func(yield func(*account) bool) {
	return func(yield func(*account) bool) {
		waiting := v.waiting
		for a := range all[*account](v.txn, tableAccounts) {
			for len(waiting) > 0 && waiting[0].AccountID < a.AccountID {
				if !yield(waiting[0]) {
					return
				}
				waiting = waiting[1:]
			}
			if len(waiting) > 0 && waiting[0].AccountID == a.AccountID {
				a, waiting = waiting[0], waiting[1:]
			}
			if !yield(a) {
				return
			}
		}
		for _, a := range waiting {
			if !yield(a) {
				return
			}
		}
	}
}

// account returns the account's row, or nil.
func (v view) account(id string) *account {
	if i, ok := slices.BinarySearchFunc(v.waiting, id, func(a *account, id string) int { return strings.Compare(a.AccountID, id) }); ok {
		return v.waiting[i]
	}
	return getAccount(v.txn, id)
}

// closeWrites refuses new writes and waits for those in progress to finish.
// The batch being committed finishes within a few write timeouts; requests
// still queued are answered with ErrClosed by the next leader.
func (q *queue) closeWrites() (already bool) {
	q.mu.Lock()
	already, q.closed = q.closed, true
	q.mu.Unlock()
	q.inflight.Wait()
	return already
}

// writer is one batch's write transaction: memdb's, plus what to make
// durable and to publish once it commits.
type writer struct {
	db      *memdb.MemDB
	txn     *memdb.Txn // created by tx() when the batch first needs it
	lookup  *lookupIndex
	topo    *topology // the data centers' status as this batch sees it
	now     time.Time
	durable bool // collect changes for the store
	// dropTrails: rows keep no audit trail, the store does (a
	// TrailStore); the zero value keeps them.
	dropTrails bool
	changed    []*account
	byID       map[string]*account // changed by ID, once there are many
	changes    []Change
	counts     []dcDelta
	after      []func()
	// cur is the request running; marks where each request's changes and
	// after functions start, when durable (an Apply that fails is settled
	// request by request).
	cur   *request
	marks []mark
	// existing is set once the batch answered an account's placement as
	// memory holds it (placeIn of an existing account).
	existing bool
}

type mark struct{ changes, after int }

type dcDelta struct {
	id    string
	delta int64
}

// begin starts running req.
func (w *writer) begin(req *request) {
	w.cur = req
	if w.durable {
		w.marks = append(w.marks, mark{len(w.changes), len(w.after)})
	}
}

// of returns the changes and after functions of the i-th request run.
func (w *writer) of(i int) ([]Change, []func()) {
	end := mark{len(w.changes), len(w.after)}
	if i+1 < len(w.marks) {
		end = w.marks[i+1]
	}
	return w.changes[w.marks[i].changes:end.changes], w.after[w.marks[i].after:end.after]
}

// touched returns the accounts the batch's changes touch, and whether it
// changes a data center's status.
func (w *writer) touched() (ids []string, dcs bool) {
	seen := make(map[string]bool, len(w.changes))
	for _, c := range w.changes {
		if c.DataCenter != nil {
			dcs = true
			continue
		}
		if id := c.Placement.AccountID; !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, dcs
}

// refuse records a refusal of the running request, to be counted in the
// metrics once the request is answered, and returns it.
func (w *writer) refuse(err error) error {
	if w.cur != nil {
		w.cur.refusals = append(w.cur.refusals, err)
	}
	return err
}

// abort drops the batch's memdb transaction, if any.
func (w *writer) abort() {
	if w.txn != nil {
		w.txn.Abort()
		w.txn = nil
	}
}

// account returns the account's row as this transaction sees it. It reads
// the lookup index, which holds exactly the committed rows while a batch is
// led, rather than memdb: a memdb read costs a key and an iterator.
func (w *writer) account(id string) *account {
	if w.byID != nil {
		if a, ok := w.byID[id]; ok {
			return a
		}
		return w.lookup.get(id)
	}
	for i := len(w.changed) - 1; i >= 0; i-- {
		if w.changed[i].AccountID == id {
			return w.changed[i]
		}
	}
	return w.lookup.get(id)
}

// scanLimit is how many changed rows a batch scans before it indexes them.
const scanLimit = 16

// put records an account's new row, and the agreement it grants or
// revokes, if any. It keeps the moves table and the per-data-center counts
// in step with the account's move and data center.
func (w *writer) put(a *account, ag *Agreement) {
	old := w.account(a.AccountID)
	var oldMove Move
	if old != nil {
		oldMove = old.Move
	}
	if oldMove.ID != a.Move.ID {
		if oldMove.ID != "" {
			mustDelete(w.tx(), tableMoves, &oldMove)
		}
		if a.Moving() {
			mustInsert(w.tx(), tableMoves, &a.Move)
		}
	}
	switch {
	case old == nil:
		w.counts = append(w.counts, dcDelta{a.DataCenter, +1})
	case old.DataCenter != a.DataCenter:
		w.counts = append(w.counts, dcDelta{old.DataCenter, -1}, dcDelta{a.DataCenter, +1})
	}
	if ag != nil {
		mustInsert(w.tx(), tableTransfers, ag)
	}
	w.changed = append(w.changed, a)
	switch {
	case w.byID != nil:
		w.byID[a.AccountID] = a
	case len(w.changed) > scanLimit:
		w.byID = make(map[string]*account, 2*len(w.changed))
		for _, c := range w.changed {
			w.byID[c.AccountID] = c
		}
	}
	if w.durable {
		w.changes = append(w.changes, Change{Placement: a.Placement, Event: a.history[len(a.history)-1], Agreement: ag})
	}
	if w.dropTrails {
		a.history = nil // the store keeps it (TrailStore)
	}
}

func (w *writer) onCommit(f func()) { w.after = append(w.after, f) }

// tx returns the batch's memdb write transaction, opening it on first use:
// a batch of placements needs none.
func (w *writer) tx() *memdb.Txn {
	if w.txn == nil {
		w.txn = w.db.Txn(true)
	}
	return w.txn
}
