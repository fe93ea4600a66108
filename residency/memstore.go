package residency

import (
	"context"
	"errors"
	"fmt"
	"github.com/domicile-go/domicile/auditlog"
	"golang.org/x/mod/sumdb/tlog"
	"maps"
	"slices"
	"strings"
	"sync"
)

// MemoryStore is a [Store] that keeps its state in memory, for tests and
// dry runs: give it to [WithStore]. It honours the whole Store contract
// (versions, refusal of a whole unit with a stale [*ConflictError], atomic
// units, accounts in ID order) and copies every value it is given or returns, so
// that neither side can change the other's. Nothing survives the process.
//
// A MemoryStore value is one handle on its data. [MemoryStore.Reopen]
// returns another handle on the same data, as reopening a file or
// connecting again to a database does: after Close, to check that what was
// written is still there, or while the first is open, to share the data
// between two Routers as two processes share a database (the versions
// then refuse stale writes). Methods of a closed handle return
// [ErrStoreClosed]; the data stays for the other handles.
//
// To make a store that fails on purpose, wrap it: embed *MemoryStore in a
// struct and override Apply, calling the embedded Apply to write.
//
// A MemoryStore is safe for concurrent use.
type MemoryStore struct {
	data   *memData
	mu     sync.Mutex // guards closed
	closed bool
}

// ErrStoreClosed: a store's method was called after its Close.
var ErrStoreClosed = errors.New("residency: store closed")

// memData is the state that the handles of one MemoryStore share. Every
// value in it is owned by it: Apply stores copies, readers get copies.
type memData struct {
	mu          sync.Mutex
	accounts    map[string]*memAccount
	dataCenters map[string]DataCenterState
	// log holds the audit log's entries, hashes their tree's stored
	// hashes (both appended by Apply).
	log    [][]byte
	hashes auditlog.MemoryHashes
}

// memAccount is one account as the MemoryStore keeps it. Placement, Event,
// Agreement, ConsentRecord and ObjectionRecord hold no pointers or slices,
// so copying the values copies them deeply.
type memAccount struct {
	placement  Placement
	history    []Event
	agreements map[string]Agreement // by reference
	// consents and objections, by reference, are nil until the first.
	consents   map[string]ConsentRecord
	objections map[string]ObjectionRecord
}

// put records a consent or objection under its reference, the last one
// written winning, in the map *m made on first use.
func put[T any](m *map[string]T, reference string, v T) {
	if *m == nil {
		*m = make(map[string]T)
	}
	(*m)[reference] = v
}

// byReference returns the values of m in the order of their references, or
// nil for none.
func byReference[T any](m map[string]T) []T {
	if len(m) == 0 {
		return nil
	}
	refs := slices.Sorted(maps.Keys(m))
	out := make([]T, len(refs))
	for i, ref := range refs {
		out[i] = m[ref]
	}
	return out
}

// NewMemoryStore returns an empty, open MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{data: &memData{accounts: make(map[string]*memAccount), dataCenters: make(map[string]DataCenterState)}}
}

// NewMemoryStoreFrom returns a MemoryStore holding a copy of everything
// src holds: its accounts and data center states. It is for dry runs on a
// real state: a Router on the copy makes the real calls, and src never
// changes. It does not close src. From a [TrailStore] it reads each
// account's trail with Trail, one read (on PostgreSQL, one query) per
// account.
func NewMemoryStoreFrom(ctx context.Context, src Store) (*MemoryStore, error) {
	s := NewMemoryStore()
	d := s.data
	err := src.Load(ctx, func(a StoredAccount) error {
		id := a.Placement.AccountID
		if _, dup := d.accounts[id]; dup {
			return fmt.Errorf("residency: copying a store: account %q loaded twice", id)
		}
		m := &memAccount{placement: a.Placement, history: slices.Clone(a.History), agreements: make(map[string]Agreement, len(a.Agreements))}
		for _, ag := range a.Agreements {
			m.agreements[ag.Reference] = ag
		}
		for _, c := range a.Consents {
			put(&m.consents, c.Reference, c)
		}
		for _, o := range a.Objections {
			put(&m.objections, o.Reference, o)
		}
		d.accounts[id] = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ts, ok := src.(TrailStore); ok {
		// Its Load gave no trails: read them, as of the placements
		// loaded (a trail may have grown since).
		for id, m := range d.accounts {
			h, err := ts.Trail(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("residency: copying a store: %w", err)
			}
			if v := m.placement.Version; v == 0 || uint64(len(h)) < v || h[v-1].Version != v {
				return nil, fmt.Errorf("%w: copying a store: the trail of account %q does not reach version %d", ErrCorrupt, id, v)
			}
			m.history = h[:m.placement.Version:m.placement.Version]
		}
	}
	states, err := src.DataCenters(ctx)
	if err != nil {
		return nil, err
	}
	for _, st := range states {
		d.dataCenters[st.ID] = st
	}
	if ls, ok := src.(LogStore); ok {
		err := ls.LogEntries(ctx, 0, func(_ int64, e []byte) error {
			e = slices.Clone(e)
			d.log = append(d.log, e)
			_, err := d.hashes.Append(e)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Reopen returns a new open handle on s's data, whether s is open or
// closed.
func (s *MemoryStore) Reopen() *MemoryStore { return &MemoryStore{data: s.data} }

// Close closes this handle; later calls of its methods return
// [ErrStoreClosed]. Closing twice is not an error.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// check returns ErrStoreClosed once s is closed, else ctx's error.
func (s *MemoryStore) check(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrStoreClosed
	}
	return ctx.Err()
}

// Apply makes the changes as one unit: all of them, or none when an
// account's version is not one more than the stored one, or than the one a
// change before it in changes gave it (0 for a new account); that refusal
// is a [*ConflictError] with Stale set, whose Stored is the account as the
// store, or the changes before it, left it. A cancelled ctx writes
// nothing and returns ctx's error.
func (s *MemoryStore) Apply(ctx context.Context, changes []Change) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	d := s.data
	d.mu.Lock()
	defer d.mu.Unlock()
	// Check the whole unit before changing anything. unit holds the
	// placements as the unit's changes so far leave them.
	entries := make([][]byte, len(changes))
	for i := range changes {
		if err := changes[i].Check(); err != nil {
			return fmt.Errorf("residency: the store refuses change %d: %w", i, err)
		}
		var err error
		if entries[i], err = EncodeEntry(changes[i]); err != nil {
			return err
		}
	}
	unit := make(map[string]*Placement)
	var dcs map[string]uint64 // the data centers' versions as the unit leaves them
	for i := range changes {
		c := &changes[i]
		if st := c.DataCenter; st != nil {
			stored, ok := dcs[st.ID]
			if !ok {
				stored = d.dataCenters[st.ID].Version
			}
			if st.Version != stored+1 {
				return staleStatus(st, stored)
			}
			if dcs == nil {
				dcs = make(map[string]uint64)
			}
			dcs[st.ID] = st.Version
			continue
		}
		id := c.Placement.AccountID
		cur, ok := unit[id]
		if !ok {
			if a := d.accounts[id]; a != nil {
				cur = &a.placement
			}
		}
		var stored Placement
		if cur != nil {
			stored = *cur
		}
		if c.Placement.Version != stored.Version+1 {
			return staleWrite(&c.Placement, stored)
		}
		unit[id] = &c.Placement
	}
	for i := range changes {
		c := &changes[i]
		if st := c.DataCenter; st != nil {
			d.dataCenters[st.ID] = *st
			continue
		}
		id := c.Placement.AccountID
		a := d.accounts[id]
		if a == nil {
			a = &memAccount{agreements: make(map[string]Agreement)}
			d.accounts[id] = a
		}
		a.placement = c.Placement
		a.history = append(a.history, c.Event)
		if ag := c.Agreement; ag != nil {
			a.agreements[ag.Reference] = *ag
		}
		if cr := c.Consent; cr != nil {
			put(&a.consents, cr.Reference, *cr)
		}
		if o := c.Objection; o != nil {
			put(&a.objections, o.Reference, *o)
		}
	}
	if _, err := d.hashes.Append(entries...); err != nil {
		panic(fmt.Sprintf("residency: MemoryStore: appending to the log: %v", err)) // it reads only hashes it holds
	}
	d.log = append(d.log, entries...)
	return nil
}

// LogSize returns the number of entries in the audit log.
func (s *MemoryStore) LogSize(ctx context.Context) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	d := s.data
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(len(d.log)), nil
}

// LogEntries calls fn with each entry of the audit log from index from on,
// as of the call.
func (s *MemoryStore) LogEntries(ctx context.Context, from int64, fn func(int64, []byte) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	d := s.data
	d.mu.Lock()
	log := d.log[:len(d.log):len(d.log)] // entries are never changed: share them
	d.mu.Unlock()
	for i := max(from, 0); i < int64(len(log)); i++ {
		if err := fn(i, slices.Clone(log[i])); err != nil {
			return err
		}
	}
	return nil
}

// ReadHashes returns the stored hashes of the log's tree at indexes.
func (s *MemoryStore) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s.data.hashes.ReadHashes(indexes)
}

// staleWrite is the refusal of a change to placement p, whose account is
// stored at another version than p's previous one; stored is the account
// as stored, the zero Placement when it is not. Stores share it.
func staleWrite(p *Placement, stored Placement) *ConflictError {
	return &ConflictError{AccountID: p.AccountID, Version: p.Version - 1, Stored: stored, Stale: true}
}

// staleStatus is the error of a data center status change st whose
// version does not follow stored, the stored version (0 for none).
func staleStatus(st *DataCenterState, stored uint64) *ConflictError {
	return &ConflictError{DataCenter: st.ID, Version: max(st.Version, 1) - 1, Stored: Placement{Version: stored}, Stale: true}
}

// Load calls fn with a copy of every account, in account ID order, as of
// the call: changes applied while fn runs are not seen. It stops at fn's
// first error and returns it.
func (s *MemoryStore) Load(ctx context.Context, fn func(StoredAccount) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	d := s.data
	d.mu.Lock()
	ids := make([]string, 0, len(d.accounts))
	for id := range d.accounts {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, strings.Compare)
	all := make([]StoredAccount, len(ids))
	for i, id := range ids {
		all[i] = d.accounts[id].stored()
	}
	d.mu.Unlock()
	return emit(ctx, all, fn)
}

// LoadAccounts calls fn with a copy of each account of ids that the store
// holds, in the order of ids, and skips the others.
func (s *MemoryStore) LoadAccounts(ctx context.Context, ids []string, fn func(StoredAccount) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	d := s.data
	d.mu.Lock()
	found := make([]StoredAccount, 0, len(ids))
	for _, id := range ids {
		if a := d.accounts[id]; a != nil {
			found = append(found, a.stored())
		}
	}
	d.mu.Unlock()
	return emit(ctx, found, fn)
}

// emit calls fn with each account, outside the lock, so that fn may call
// the store.
func emit(ctx context.Context, accounts []StoredAccount, fn func(StoredAccount) error) error {
	for i := range accounts {
		if i%4096 == 4095 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(accounts[i]); err != nil {
			return err
		}
	}
	return nil
}

// stored returns a copy of a: history, agreements, consents and objections
// in new slices, the last three in reference order.
func (a *memAccount) stored() StoredAccount {
	out := StoredAccount{Placement: a.placement, History: slices.Clone(a.history),
		Consents: byReference(a.consents), Objections: byReference(a.objections)}
	if len(a.agreements) > 0 {
		out.Agreements = make([]Agreement, 0, len(a.agreements))
		for _, ag := range a.agreements {
			out.Agreements = append(out.Agreements, ag)
		}
		slices.SortFunc(out.Agreements, func(x, y Agreement) int { return strings.Compare(x.Reference, y.Reference) })
	}
	return out
}

// DataCenters returns the data center states set, one per data center (the
// last set), in data center ID order.
func (s *MemoryStore) DataCenters(ctx context.Context) ([]DataCenterState, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	d := s.data
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]DataCenterState, 0, len(d.dataCenters))
	for _, st := range d.dataCenters {
		out = append(out, st)
	}
	slices.SortFunc(out, func(x, y DataCenterState) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}
