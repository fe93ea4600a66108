package residency

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/hashicorp/go-memdb"
	"golang.org/x/mod/sumdb/note"
)

// Router decides, records and guards where accounts live. Open one per
// process with [Open] (the zero Router is not usable) and share it: all
// methods are safe for concurrent use.
//
// Writes (Place, moves, agreements, statuses, Import) are applied one batch
// at a time; concurrent writers share a batch, and its commit to the store.
// A write is visible to reads only once it is durable. Lookup
// never waits: it reads a sharded index of the committed rows. Iterators and
// Verify read a snapshot of the committed state; they never wait for a
// write, even one stuck in the store. A store that fails, panics or hangs
// fails the writes concerned (see [ErrStoreFailed], [ErrUnavailable] and
// [WithWriteTimeout]) and never leaves memory guessing what it holds.
//
// Every value a Router returns (placements with their moves, events,
// agreements, reports, plans) is a copy that the caller may change freely.
type Router struct {
	catalog *provider.Catalog
	policy  *region.Policy
	now     func() time.Time
	metrics *metrics

	// dataCenters holds the catalog's data centers with their placement
	// hash seeds, also ordered by ID; topo their runtime status.
	dataCenters map[string]*dataCenter
	ordered     []*dataCenter
	topo        atomic.Pointer[topology]
	// accountsOn counts the accounts on each data center, for the metrics.
	// Its keys are fixed at Open; writers update the counts after commit.
	accountsOn map[string]*atomic.Int64

	db     *memdb.MemDB
	lookup *lookupIndex
	store  Store // nil: memory only
	// trails is the store when it keeps the audit trails (a TrailStore):
	// account rows then hold none.
	trails TrailStore
	// prompt says the store is a PromptStore (storeCall).
	prompt bool
	queue  queue // the group commit of writes (write.go)
	// behind holds committed account rows not yet in memdb's accounts
	// table (write.go). Only the leading writer changes it, and memdb,
	// under mem; snapshots read both under mem.
	mem    sync.Mutex
	behind []*account
	// gate holds gateClosed once closed, and gateStale while the lease on
	// a shared store has run out (shared.go), so that Lookup checks both
	// with one load; follow is nil unless the store is shared.
	gate      atomic.Uint32
	follow    *follower
	closeOnce sync.Once

	// Owned by the leading writer (write.go): the bounds on a store call,
	// the store call that did not return in time (closed once it does),
	// and the accounts, and whether the data centers' statuses, whose
	// stored state is unknown since a store call failed.
	writeTimeout time.Duration
	// callDeadline is the latest deadline of the callers of the batch
	// being led, zero when one of them has none (latestDeadline): store
	// calls end by it when it comes before the write timeout.
	callDeadline  time.Time
	storeBusy     chan struct{}
	unresolved    map[string]struct{}
	unresolvedDCs bool
	// outcomeUnknown is set while unresolved or unresolvedDCs holds
	// anything, for readers outside the leader (Create's fast path).
	outcomeUnknown atomic.Bool

	// logOrigin names the audit log; logSigner, when set, signs its
	// checkpoints (auditlog.go).
	logOrigin string
	logSigner note.Signer
}

// Open returns a Router configured by opts, with the state of its store
// loaded. Without [WithPath] or [WithStore] the state lives in memory only,
// for tests and one-off tools.
func Open(ctx context.Context, opts ...Option) (*Router, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := config{catalog: provider.DefaultCatalog(), policy: region.DefaultPolicy(), now: time.Now, writeTimeout: DefaultWriteTimeout}
	for _, o := range opts {
		if o == nil {
			cfg.nilOption = true
			continue
		}
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		if cfg.store != nil && !isNil(cfg.store) {
			cfg.store.Close()
		}
		return nil, err
	}
	if cfg.path != "" {
		s, err := openFileStore(ctx, cfg.path)
		if err != nil {
			return nil, err
		}
		cfg.store = s
	}
	r, err := open(ctx, cfg)
	if err != nil && cfg.store != nil {
		cfg.store.Close()
	}
	return r, err
}

func open(ctx context.Context, cfg config) (*Router, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("residency: schema: %w", err)
	}
	r := &Router{
		policy:       cfg.policy,
		now:          func() time.Time { return cfg.now().UTC() },
		db:           db,
		lookup:       newLookupIndex(),
		store:        cfg.store,
		trails:       trailStore(cfg.store),
		prompt:       isPrompt(cfg.store),
		writeTimeout: cfg.writeTimeout,
		logOrigin:    cfg.logOrigin,
		logSigner:    cfg.logSigner,
	}
	if r.logSigner != nil {
		r.logOrigin = r.logSigner.Name()
	} else if r.logOrigin == "" {
		r.logOrigin = DefaultLogOrigin
	}
	var states []DataCenterState
	if shared, ok := r.store.(SharedStore); ok {
		var check func(*StoredAccount) error
		if !cfg.unverified {
			check = newStateCheck(cfg.catalog)
		}
		if states, err = r.openShared(ctx, shared, check); err != nil {
			return nil, err
		}
	} else if r.store != nil {
		var check func(*StoredAccount) error
		if !cfg.unverified {
			check = newStateCheck(cfg.catalog)
		}
		if err := r.load(ctx, check); err != nil {
			return nil, err
		}
		if states, err = r.store.DataCenters(ctx); err != nil {
			return nil, fmt.Errorf("residency: loading data center states: %w", err)
		}
	}
	r.useCatalog(cfg.catalog, states)
	if err := r.catchUpJoined(ctx); err != nil {
		r.closeFollow()
		return nil, err
	}
	if r.metrics, err = newMetrics(cfg.registerer, r); err != nil {
		r.closeFollow()
		return nil, err
	}
	r.startFollowing()
	return r, nil
}

// trailStore returns s as a TrailStore, or nil when it is not one.
func trailStore(s Store) TrailStore {
	t, _ := s.(TrailStore)
	return t
}

// isPrompt reports whether s is a PromptStore.
func isPrompt(s Store) bool {
	_, ok := s.(PromptStore)
	return ok
}

// load reads the store into memdb, in one write transaction, and into the
// lookup index, which is empty until then. check, unless nil, may refuse
// an account.
func (r *Router) load(ctx context.Context, check func(*StoredAccount) error) error {
	return r.loadWith(func(fn func(StoredAccount) error) error { return r.store.Load(ctx, fn) }, check)
}

// loadWith is load from the accounts that load gives.
func (r *Router) loadWith(load func(func(StoredAccount) error) error, check func(*StoredAccount) error) error {
	txn := r.db.Txn(true)
	defer txn.Abort()
	var rows []*account       // for the lookup index, filled at once at the end
	var checked StoredAccount // one for all: &s would move every s to the heap
	err := load(func(s StoredAccount) error {
		if h := s.History; r.trails == nil && (len(h) == 0 || h[len(h)-1].Version != s.Placement.Version) {
			// A TrailStore behind a wrapper that hides Trail, or a
			// damaged store: History would answer a part of the trail.
			return fmt.Errorf("%w: account %q at version %d comes with %d events of audit trail, and the store is not a TrailStore",
				ErrCorrupt, s.Placement.AccountID, s.Placement.Version, len(h))
		}
		if check != nil {
			checked = s
			if err := check(&checked); err != nil {
				return err
			}
		}
		a := storedRow(s)
		mustInsert(txn, tableAccounts, a)
		if a.Moving() {
			mustInsert(txn, tableMoves, &a.Move)
		}
		for i := range s.Agreements {
			mustInsert(txn, tableTransfers, &s.Agreements[i])
		}
		rows = append(rows, a)
		return nil
	})
	if err != nil {
		return fmt.Errorf("residency: loading the store: %w", err)
	}
	txn.Commit()
	r.lookup.fill(rows)
	return nil
}

// newStateCheck returns the check of [Open] that a stored account lives by
// the catalog (WithUnverifiedState turns it off): its data center and
// backup are catalog data centers of its home region, and its open move
// targets a catalog data center of that region, or of the region of one
// of its agreements that names the move. It refuses what Verify reports as
// a violation, except that an agreement that has since expired or been
// revoked does not refuse the open move it allowed: time alone must not
// stop a server from starting; Verify reports such moves, and they can
// only be aborted.
func newStateCheck(c *provider.Catalog) func(*StoredAccount) error {
	regions := make(map[string]region.Region)
	for _, d := range c.All() {
		regions[d.ID] = d.Region
	}
	return func(s *StoredAccount) error {
		p := &s.Placement
		if p.DataCenter == "" { // deleted: it lives nowhere
			if p.Backup != "" || p.Moving() {
				return fmt.Errorf("%w: deleted account %q has backup %q and move %q", ErrCorrupt, p.AccountID, p.Backup, p.Move.ID)
			}
			return nil
		}
		for _, dc := range [...]struct{ id, what string }{{p.DataCenter, "data center"}, {p.Backup, "backup data center"}} {
			reg, ok := regions[dc.id]
			switch {
			case dc.id == "" && dc.what != "data center":
			case !ok:
				return fmt.Errorf("%w: account %q: stored %s %q is not in the catalog (open WithUnverifiedState to repair it)", ErrUnknownDataCenter, p.AccountID, dc.what, dc.id)
			case reg != p.Region:
				return fmt.Errorf("%w: account %q lives in %s, its stored %s %s is in %s (open WithUnverifiedState to repair it)", ErrCrossRegion, p.AccountID, p.Region, dc.what, dc.id, reg)
			}
		}
		if m := &p.Move; p.Moving() {
			reg, ok := regions[m.To]
			if !ok {
				return fmt.Errorf("%w: account %q: open move %s targets data center %q, which is not in the catalog (open WithUnverifiedState to repair it)", ErrUnknownDataCenter, p.AccountID, m.ID, m.To)
			}
			if reg != p.Region && !slices.ContainsFunc(s.Agreements, func(a Agreement) bool { return a.Reference == m.Transfer && a.To == reg }) {
				return fmt.Errorf("%w: account %q lives in %s, its open move %s targets %s in %s, and no agreement of the account covers it (open WithUnverifiedState to repair it)", ErrCrossRegion, p.AccountID, p.Region, m.ID, m.To, reg)
			}
		}
		return nil
	}
}

// useCatalog indexes the catalog's data centers, with their statuses
// overridden at run time, and counts the accounts on every data center, in
// the catalog or not.
func (r *Router) useCatalog(c *provider.Catalog, states []DataCenterState) {
	r.catalog = c
	r.dataCenters = make(map[string]*dataCenter)
	r.ordered = nil
	r.accountsOn = make(map[string]*atomic.Int64)
	for _, d := range c.All() {
		dc := newDataCenter(d)
		r.dataCenters[d.ID] = dc
		r.ordered = append(r.ordered, dc)
		r.accountsOn[d.ID] = new(atomic.Int64)
	}
	byID := make(map[string]DataCenterState, len(states))
	for _, st := range states {
		byID[st.ID] = st
	}
	r.topo.Store(r.newTopology(byID))
	for a := range all[*account](r.db.Txn(false), tableAccounts) {
		if a.deleted() {
			continue
		}
		n, ok := r.accountsOn[a.DataCenter]
		if !ok {
			n = new(atomic.Int64)
			r.accountsOn[a.DataCenter] = n
		}
		n.Add(1)
	}
}

// Close ends the Router: later calls return [ErrClosed]. It waits for the
// batch of writes being committed, which a store that fails or hangs ends
// within a few write timeouts ([WithWriteTimeout]; a [PromptStore] is
// trusted to); writes still queued return ErrClosed and change nothing.
// Then it closes the store, unless a store call has not returned: then
// Close returns an error matching [ErrUnavailable] and the store is closed
// once that call returns. On a shared store it first stops the reads
// (Lookup, MayAccess and SubProcessors answer ErrClosed from then on) and
// leaves the members, so that it holds no fence up; that is best effort,
// given a few seconds at most: a database that does not answer costs
// Close seconds, not the write timeout. When leaving fails, Close still
// closes the store, and returns an error that says so and wraps the
// store's: other Routers' fences then wait for this one until its lease
// has run out. Closing twice is not an error.
func (r *Router) Close() error {
	var left error
	r.closeOnce.Do(func() { left = r.closeFollow() })
	if r.queue.closeWrites() {
		return nil
	}
	r.gate.Or(gateClosed)
	r.metrics.unregister()
	if r.store == nil {
		return nil
	}
	if busy := r.storeBusy; busy != nil {
		select {
		case <-busy:
		default:
			go func() {
				<-busy
				r.store.Close()
			}()
			return errors.Join(left, fmt.Errorf("%w: a call of the store did not return within %v; the store is closed once it does", ErrUnavailable, r.writeTimeout))
		}
	}
	return errors.Join(left, r.store.Close())
}

// The bits of Router.gate.
const (
	gateClosed uint32 = 1 << iota
	gateStale
)

// readable says whether the memory may answer the reads that decide where
// data lives and who may touch it (Lookup, MayAccess, SubProcessors):
// ErrClosed after Close, ErrStale while the lease on a shared store has run
// out (with why: staleError), else nil. One atomic load when readable,
// and on a shared store a read of the monotonic clock: the lease's timer
// may run late (after a pause of the process), and its end, not the
// timer, is what other Routers' fences count on.
func (r *Router) readable() error {
	if g := r.gate.Load(); g != 0 {
		if g&gateClosed != 0 {
			return ErrClosed
		}
		return r.staleError()
	}
	if f := r.follow; f != nil && f.leaseOver() {
		return r.expireLate()
	}
	return nil
}

// Ready returns nil while the Router answers the reads that decide where
// data lives and who may touch it ([Router.Lookup], [Router.MayAccess],
// [Router.SubProcessors]) from its memory, and otherwise the error they
// answer now: [ErrClosed] once Close has begun, [ErrStale] (with why)
// while its lease on a shared store has run out. It is what a load
// balancer's readiness check asks: an instance that is not ready answers
// no reads until it has caught up, which it does by itself, and another
// instance can answer them meanwhile. On a file or in memory it is nil
// until Close. It costs what Lookup's own check costs: no allocation,
// and no call of the store.
func (r *Router) Ready() error { return r.readable() }

// isClosed reports whether Close has ended the Router.
func (r *Router) isClosed() bool { return r.gate.Load()&gateClosed != 0 }

// Catalog returns the catalog the Router places accounts in. It is
// configuration, not state, and stays readable after [Router.Close]. Each
// call returns a new handle: overwriting what it points to cannot change
// the Router's catalog.
func (r *Router) Catalog() *provider.Catalog {
	c := *r.catalog
	return &c
}

// Lookup returns the account's placement. It is the hot path: it takes no
// transaction and allocates nothing when the account exists. While a move
// is in progress it answers the source data center. On a shared store
// ([SharedStore]) it answers [ErrStale] while the Router's lease has run
// out, rather than from a memory that may be old.
func (r *Router) Lookup(accountID string) (Placement, error) {
	if err := r.readable(); err != nil {
		return Placement{}, err
	}
	if a := r.lookup.get(accountID); a != nil && !a.deleted() {
		return a.Placement, nil
	}
	if err := ValidAccountID(accountID); err != nil {
		return Placement{}, err
	}
	return Placement{}, fmt.Errorf("%w: account %q", ErrNotFound, accountID)
}

// ruleChoice is the rule recorded when the customer chose the region.
const ruleChoice = "customer's choice"

// Place returns the account's placement, creating it if the account is new.
//
// The home region is req.Region when set (the customer's choice), else the
// policy's region for req.Country. The data center is one of the home
// region's active data centers, chosen by weighted rendezvous hashing of
// the account ID: deterministic, and in proportion to the weights over
// many accounts. A region without an active data center is
// [ErrNoDataCenter]; Place never falls back to another region.
//
// Placing an existing account returns its placement unchanged, or
// [ErrConflict] when the request's region differs from the account's home
// region (also after an agreed move to another region). Concurrent calls
// for one account all get the same placement. On a shared store it fails
// with [ErrStale] while the Router's lease has run out, as Lookup does,
// and an existing account costs a read of the store's log ([SharedStore]).
func (r *Router) Place(ctx context.Context, req PlaceRequest) (Placement, error) {
	p, _, err := r.Create(ctx, req)
	return p, err
}

// Create is [Router.Place] that also says whether this call created the
// placement (true) or found it (false), as an HTTP handler needs to answer
// 201 or 200.
func (r *Router) Create(ctx context.Context, req PlaceRequest) (p Placement, created bool, err error) {
	if r.isClosed() {
		return Placement{}, false, ErrClosed
	}
	if err := ValidAccountID(req.AccountID); err != nil {
		return Placement{}, false, r.refuse(err)
	}
	home, err := r.home(req)
	if err != nil {
		return Placement{}, false, r.refuse(err)
	}
	if r.gate.Load()&gateStale != 0 {
		err := fmt.Errorf("account %q: %w", req.AccountID, r.staleError())
		r.metrics.writeFailed(err)
		return Placement{}, false, err
	}
	if a := r.lookup.get(req.AccountID); a != nil && !a.deleted() && r.follow == nil && !r.outcomeUnknown.Load() {
		// On a shared store memory may lag behind another Router's
		// deletion, and after a write whose outcome is unknown it may
		// not be what the store holds: there the write decides, after
		// reading the log or the store back.
		p, err := r.existing(a, home)
		return p, false, err
	}
	var a *account
	err = r.write(ctx, subject{"account", req.AccountID}, func(w *writer) (err error) {
		a, created, err = r.placeIn(w, req.AccountID, home, nil, Placed)
		return err
	})
	if err != nil {
		return Placement{}, false, err
	}
	return a.Placement, created, nil
}

// placeIn places an account in the writer's transaction: on data center at
// when given (Import), else on the data center the hash picks. An existing
// account is returned unchanged (new is false) unless it conflicts.
func (r *Router) placeIn(w *writer, id string, home region.Assignment, at *dataCenter, kind EventKind) (row *account, new bool, err error) {
	if at != nil && at.Region != home.Region {
		return nil, false, fmt.Errorf("%w: account %q: data center %s is in %s, the account's region is %s", ErrCrossRegion, id, at.ID, at.Region, home.Region)
	}
	prev := w.account(id)
	if a := prev; a != nil && !a.deleted() {
		w.existing = true
		switch {
		case a.Region != home.Region:
			return nil, false, conflict(a, home.Region)
		case at != nil && a.DataCenter != at.ID:
			return nil, false, conflictWith(a, fmt.Sprintf("lives on %s, not %s", a.DataCenter, at.ID))
		}
		return a, false, nil
	}
	primary, backup := at, ""
	if primary == nil {
		if primary, backup, err = w.topo.choose(home.Region, id); err != nil {
			return nil, false, err
		}
	} else {
		backup = w.topo.backupFor(id, primary)
	}
	first := account{Placement: Placement{
		AccountID:  id,
		Country:    home.Country,
		Region:     home.Region,
		DataCenter: primary.ID,
		Provider:   primary.Provider,
		Backup:     backup,
		Rule:       home.Rule,
		Created:    w.now,
	}}
	if prev != nil {
		// A deleted account placed afresh: its trail and versions go on,
		// with every consent, agreement and objection ended.
		first.Version, first.history, first.access = prev.Version, prev.history, prev.access
	}
	a := first.change(w.now, Event{Kind: kind, To: primary.ID, Rule: home.Rule}, func(*Placement) {})
	w.put(a, nil)
	if prev != nil {
		// A Delete by an older version of this package left expired
		// consents and agreements unrevoked: end them now, after the
		// placement (a deleted row takes no change but the deletion's).
		a = r.endAll(w, a)
	}
	w.onCommit(func() { r.metrics.placed(primary) })
	return a, true, nil
}

// home decides the region a request asks for.
func (r *Router) home(req PlaceRequest) (region.Assignment, error) {
	var c region.Country
	if req.Country != "" {
		var err error
		if c, err = region.ParseCountry(req.Country); err != nil {
			return region.Assignment{}, fmt.Errorf("residency: account %q: %w", req.AccountID, err)
		}
	}
	switch {
	case req.Region != 0:
		if !req.Region.IsValid() {
			return region.Assignment{}, fmt.Errorf("residency: account %q: %w %d", req.AccountID, region.ErrUnknownRegion, uint8(req.Region))
		}
		return region.Assignment{Country: c, Region: req.Region, Rule: ruleChoice}, nil
	case c == region.Country{}:
		return region.Assignment{}, fmt.Errorf("residency: account %q: %w: no country and no region given", req.AccountID, region.ErrInvalidCountry)
	}
	a, err := r.policy.Resolve(c)
	if err != nil {
		return region.Assignment{}, fmt.Errorf("residency: account %q: %w", req.AccountID, err)
	}
	return a, nil
}

func (r *Router) existing(a *account, home region.Assignment) (Placement, error) {
	if a.Region != home.Region {
		return Placement{}, r.refuse(conflict(a, home.Region))
	}
	return a.Placement, nil
}

func conflict(a *account, asked region.Region) error {
	return conflictWith(a, fmt.Sprintf("lives in %s (%s), the request asks for %s", a.Region, a.Rule, asked))
}

// conflictWith is the error for a request that contradicts the account's
// recorded state, for the reason given.
func conflictWith(a *account, reason string) *ConflictError {
	return &ConflictError{AccountID: a.AccountID, Version: a.Version, Stored: a.Placement, Reason: reason}
}

// change returns a new row: the placement edited by edit, one version
// later, with e on its audit trail.
func (a *account) change(now time.Time, e Event, edit func(*Placement)) *account {
	n := &account{Placement: a.Placement, access: a.access}
	edit(&n.Placement)
	n.Version++
	n.Updated = now
	e.Time, e.AccountID, e.Version = now, a.AccountID, n.Version
	n.history = append(a.history, e)
	return n
}

// The audit trail is shared, not copied: a change appends its event to the
// trail of the row it changes, in place when the backing array has room, so
// that a row costs O(1) amortised however long the trail, and the rows that
// wait for memdb (Router.behind) share one array rather than each holding
// a copy (O(n²) for n events).
//
// This is safe because a row's history is never written below its length,
// and the one writer (the leading writer) appends only to the trail of an
// account's newest committed row (writer.account), or of a row its batch
// made from it. Appending to a row that already has a child overwrites the
// child's last event only when that child was never published: a batch the
// store refused, or whose outcome is settled by re-reading the store
// (write.go), whose rows are dropped and replaced by the stored ones.
// Published rows, which readers may hold, are the ancestors of the newest
// row, so the slot written is past every published trail. Readers get the
// trail only through History, which returns a copy, so no caller's append
// can write into the shared array either.

// refuse counts a refused call and returns its error.
func (r *Router) refuse(err error) error {
	r.metrics.refused(err)
	return err
}
