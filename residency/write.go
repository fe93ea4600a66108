package residency

import (
	"context"
	"errors"
	"runtime"
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

// writeFunc is one write request. It reads through the writer and changes
// state only through w.put, and only once it has decided to succeed: a
// request that returns an error must not have changed anything, since the
// batch's transaction goes on with the other requests. A request may run
// twice (when the store refuses its batch, each request is retried alone),
// so it must set its results afresh on each run.
type writeFunc func(w *writer) error

type request struct {
	fn   writeFunc
	done chan error // buffered: the result, or errLead
	// wantSnapshot asks the batch to bring memdb up to date and take a
	// read snapshot of it, returned in snapshot.
	wantSnapshot bool
	snapshot     *memdb.Txn
}

// errLead tells a queued request that it leads the next batch.
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
// and published to Lookup, or fn's refusal (counted in the metrics).
func (r *Router) write(ctx context.Context, fn writeFunc) error {
	return r.submit(ctx, &request{fn: fn, done: make(chan error, 1)})
}

func (r *Router) submit(ctx context.Context, req *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q := &r.queue
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.inflight.Add(1)
	defer q.inflight.Done()
	q.pending = append(q.pending, req)
	lead := !q.leading
	q.leading = true
	q.mu.Unlock()
	if lead {
		r.lead()
	}
	err := <-req.done
	if err == errLead {
		r.lead()
		err = <-req.done
	}
	return err
}

// lead commits the queued requests as one batch, then hands the lead to the
// first request queued meanwhile, if any.
func (r *Router) lead() {
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
	q.mu.Unlock()

	r.commit(batch)

	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		q.leading = false
		return
	}
	q.pending[0].done <- errLead
}

// behindLimit is how many committed account rows may wait for memdb's
// accounts table. Inserting a row costs go-memdb a path copy of the radix
// tree (~70 allocations) and the garbage collection that follows; rows
// inserted together in one transaction share the copied nodes. So a batch
// does not insert its account rows: it appends them to Router.behind, and a
// batch inserts all waiting rows at once when there are behindLimit of them,
// or when a reader needs a snapshot (Router.snapshot). Writers never read
// the accounts table (writer.account reads the lookup index); the moves and
// transfers tables are written at once.
const behindLimit = 4096

// commit runs a batch in one transaction and answers every request in it.
func (r *Router) commit(batch []*request) {
	w := &writer{db: r.db, lookup: r.lookup, topo: r.topo.Load(), now: r.now(), durable: r.store != nil}
	defer func() {
		if w.txn != nil {
			w.txn.Abort()
		}
	}()
	results := make([]error, len(batch))
	flush := len(r.behind) >= behindLimit
	for i, req := range batch {
		flush = flush || req.wantSnapshot
		if err := req.fn(w); err != nil {
			results[i] = r.refuse(err)
		}
	}
	if len(w.changes) > 0 {
		// The batch is durable before it is visible. Context-free: once
		// requests are queued, their callers wait for the outcome.
		if err := r.store.Apply(context.Background(), w.changes); err != nil {
			if len(batch) > 1 {
				// Find the request the store refuses: commit one by one,
				// once this batch let go of memdb's writer lock.
				if w.txn != nil {
					w.txn.Abort()
				}
				for _, req := range batch {
					r.commit([]*request{req})
				}
				return
			}
			results[0] = err
			batch[0].done <- err
			return
		}
	}
	if flush {
		txn := w.tx()
		for _, rows := range [][]*account{r.behind, w.changed} {
			for _, a := range rows {
				mustInsert(txn, tableAccounts, a)
			}
		}
	}
	if w.txn != nil {
		w.txn.Commit()
	}
	r.publish(w)
	if flush {
		clear(r.behind)
		r.behind = r.behind[:0]
	} else {
		r.behind = append(r.behind, w.changed...)
	}
	for i, req := range batch {
		if req.wantSnapshot {
			req.snapshot = r.db.Txn(false)
		}
		req.done <- results[i]
	}
}

// snapshot returns a read transaction on memdb with every committed change,
// for the readers that scan the accounts table (iterators, Verify).
func (r *Router) snapshot() *memdb.Txn {
	req := &request{fn: func(*writer) error { return nil }, done: make(chan error, 1), wantSnapshot: true}
	if err := r.submit(context.Background(), req); err != nil {
		<-r.flushed // closed: Close brings memdb up to date
		return r.db.Txn(false)
	}
	return req.snapshot
}

// flushBehind inserts the waiting account rows, once writes have stopped.
func (r *Router) flushBehind() {
	txn := r.db.Txn(true)
	for _, a := range r.behind {
		mustInsert(txn, tableAccounts, a)
	}
	txn.Commit()
	r.behind = nil
	close(r.flushed)
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
	for _, f := range w.after {
		f()
	}
}

// closeWrites refuses new writes and waits for queued ones to finish.
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
	changed []*account
	byID    map[string]*account // changed by ID, once there are many
	changes []Change
	counts  []dcDelta
	after   []func()
}

type dcDelta struct {
	id    string
	delta int64
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
