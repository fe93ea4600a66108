package residency

import (
	"context"
	"errors"
	"fmt"
)

// Store keeps a Router's state durably. The Router loads everything from it
// at [Open] (except the audit trails of a [TrailStore]) and writes every
// change through it before the change is visible or acknowledged.
// [WithPath] gives the embedded file store; [WithStore] takes any other,
// such as one on PostgreSQL.
//
// A Store is used by one Router, which makes one call at a time. While
// writing, each call (Apply, and the LoadAccounts and DataCenters that learn
// the outcome of an Apply that failed) runs with a context that ends after
// the write timeout ([WithWriteTimeout]); a store should return when it
// ends. The Router stops waiting for a call that does not, and makes no
// other call until it has returned.
//
// What a store reads back is exactly what it was given: every field of
// every record, account IDs and references compared bytewise, and times as
// the same instant to the nanosecond, in UTC, from year 1 to 9999 (the
// Router gives only UTC times; the zero time reads back as the zero time).
// A StoredAccount's Agreements are in reference order, one per reference,
// the last written; DataCenters returns one state per data center, the
// last written, in ID order. Apply with a context already ended writes
// nothing and returns an error matching the context's. After Close, every
// other method fails. A store keeps no
// reference to what it is given and gives callers values of their own.
// The package [github.com/domicile-go/domicile/residency/storetest] checks
// a store against this whole contract; [MemoryStore] keeps it in memory.
type Store interface {
	// Load calls fn with every stored account, in account ID order. It
	// stops at fn's first error and returns it.
	Load(ctx context.Context, fn func(StoredAccount) error) error
	// LoadAccounts calls fn with each account of ids that the store holds,
	// in the order of ids, and skips those it does not hold. The Router
	// uses it (and Trail, on a [TrailStore]) to learn the outcome of an
	// Apply that failed.
	LoadAccounts(ctx context.Context, ids []string, fn func(StoredAccount) error) error
	// DataCenters returns the data center states set at run time, at Open.
	DataCenters(ctx context.Context) ([]DataCenterState, error)
	// Apply makes changes durable as one atomic unit, and returns only once
	// they are. Each change carries the account's new version, or the data
	// center's new status version: the store refuses the whole unit with
	// an error matching [ErrConflict] when an account's or data center's
	// stored version is not one less (0 for a new one; several changes of
	// one in a unit follow each other), so that a store shared by several
	// processes refuses stale writes: a [*ConflictError] with Stale set
	// (and AccountID or DataCenter), which also matches [ErrStaleVersion].
	//
	// A unit holding a change that [Change.Check] refuses is refused
	// whole, before anything is written, with that error
	// ([ErrInvalidChange]).
	//
	// An error matching ErrConflict means that nothing was applied, and so
	// does one matching [ErrStoreFailed], by which a store says that it
	// failed before anything could be applied (a connection that could
	// not be made, a statement the database refused): the Router answers
	// it as it is. Any other error leaves the outcome unknown: the changes
	// may be durable all the same (an fsync that failed after the data
	// reached the file, a COMMIT whose reply was lost), and the Router
	// reads the accounts back before it answers or writes again.
	Apply(ctx context.Context, changes []Change) error
	// Close releases the store.
	Close() error
}

// StoredAccount is everything a store keeps about one account.
type StoredAccount struct {
	Placement Placement
	// History is the audit trail, oldest first; its last event has the
	// placement's version. A [TrailStore] leaves it empty, and gives it
	// through Trail instead.
	History []Event
	// Agreements are the account's transfer agreements, by reference.
	Agreements []Agreement
	// Consents and Objections are the account's consents and objections,
	// ended ones included, by reference.
	Consents   []ConsentRecord
	Objections []ObjectionRecord
}

// TrailStore is a Store that reads an account's audit trail when it is
// asked for, so that a Router holds placements, not trails, in memory:
// with several Routers on one database ([SharedStore]), each holding every
// account's whole trail would multiply memory and Open time by the number
// of instances, and a trail only grows. Its Load and LoadAccounts leave
// StoredAccount.History empty; Trail returns what they would have put
// there. A Router on a TrailStore answers [Router.History] with Trail.
type TrailStore interface {
	Store
	// Trail returns the account's audit trail, oldest first, as committed:
	// it may be ahead of what a Router has applied. It is empty for an
	// account the store does not hold.
	Trail(ctx context.Context, accountID string) ([]Event, error)
}

// PromptStore is a Store whose every call returns soon after its context
// is done, as a client that honours its context on the network does:
// [github.com/domicile-go/domicile/residency/postgres.Store] is one. A
// Router calls such a store in the goroutine of the caller that leads a
// write, and waits for it. Any other store it calls in a goroutine that it
// can give up on, a little after the write timeout ([WithWriteTimeout]),
// so that a call that ignores its deadline (a disk that hangs an fsync)
// costs the callers an error matching [ErrUnavailable], not their
// goroutines; handing each call over costs time. A store that says it is
// prompt and then hangs holds up every write of the Router, and its Close,
// for as long as it hangs. A call of a PromptStore that ends its goroutine
// (runtime.Goexit, as testing's FailNow does) ends the leading caller's:
// that caller's call never returns, and the batch's other callers get an
// error, matching [ErrUnavailable] when the store may hold their changes.
// A wrapper that embeds a PromptStore is one too, unless it hides the
// method.
type PromptStore interface {
	Store
	// ReturnsPromptly does nothing: it says that the store is a
	// PromptStore.
	ReturnsPromptly()
}

// Change is one change to one account: its new placement (one version
// later), the event that records the change, and the agreement, consent or
// objection the change grants or ends, if any. A change with DataCenter set
// is instead a data center's new runtime status, and has no placement.
//
// Agreement, Consent and Objection are each kept by account and reference:
// a later record under the same reference replaces the earlier one (it is
// the same agreement, consent or objection, now ended), and Load returns
// them in StoredAccount.
//
// A change whose placement has an empty DataCenter (its event is
// [Deleted]) deletes the account. A store keeps a deleted account as it
// keeps any other (the placement with its version, the audit trail, the
// agreements, consents and objections) and returns it from Load and
// LoadAccounts: the Router needs it to answer History, and to go on
// counting versions when the ID is placed afresh (its next change is one
// version later, as always). A store never drops an account.
//
// A committed Change is an entry of the audit log; its JSON form, with
// these names, is the entry's bytes ([EncodeEntry]).
type Change struct {
	Placement  Placement        `json:"placement,omitzero"`
	Event      Event            `json:"event,omitzero"`
	Agreement  *Agreement       `json:"agreement,omitempty"`
	Consent    *ConsentRecord   `json:"consent,omitempty"`
	Objection  *ObjectionRecord `json:"objection,omitempty"`
	DataCenter *DataCenterState `json:"datacenter,omitempty"`
}

// Check reports whether c is a change that a Router could make, as the
// stores of this module check every change of a unit before they apply
// it: either a data center's status, with an ID and a valid status; or a
// placement of a valid account ID in a valid region (and, during a move,
// to a valid region), with the event of that account and version, and the
// agreement, consent or objection it carries, if any, of that account and
// with a reference (and a region or a sub-processor). Versions are not its
// business: a store refuses a stale one as a conflict. Otherwise the error
// matches [ErrInvalidChange], and [ErrInvalidAccount] too for an account
// ID that is not valid.
func (c *Change) Check() error {
	if st := c.DataCenter; st != nil {
		if st.ID == "" || !st.Status.IsValid() {
			return fmt.Errorf("%w: data center %.80q with status %.40q", ErrInvalidChange, st.ID, st.Status)
		}
		return nil
	}
	p, e := &c.Placement, &c.Event
	if err := ValidAccountID(p.AccountID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidChange, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: account %q: %s", ErrInvalidChange, p.AccountID, fmt.Sprintf(format, args...))
	}
	switch {
	case !p.Region.IsValid():
		return bad("region %d", uint8(p.Region))
	case p.Moving() && !p.Move.ToRegion.IsValid():
		return bad("move to region %d", uint8(p.Move.ToRegion))
	case e.AccountID != p.AccountID || e.Version != p.Version:
		return bad("an event of account %.80q version %d with a placement at version %d", e.AccountID, e.Version, p.Version)
	}
	if a := c.Agreement; a != nil && (a.AccountID != p.AccountID || a.Reference == "" || !a.To.IsValid()) {
		return bad("agreement %.80q of account %.80q to region %d", a.Reference, a.AccountID, uint8(a.To))
	}
	if k := c.Consent; k != nil && (k.AccountID != p.AccountID || k.Reference == "" || k.SubProcessor == "") {
		return bad("consent %.80q of account %.80q to sub-processor %.80q", k.Reference, k.AccountID, k.SubProcessor)
	}
	if o := c.Objection; o != nil && (o.AccountID != p.AccountID || o.Reference == "" || o.SubProcessor == "") {
		return bad("objection %.80q of account %.80q to sub-processor %.80q", o.Reference, o.AccountID, o.SubProcessor)
	}
	return nil
}

// Errors of stores.
var (
	// ErrInvalidChange: a store's Apply was given a change that no Router
	// makes ([Change.Check]), and applied nothing.
	ErrInvalidChange = errors.New("residency: invalid change")
	// ErrLocked: the store file is in use by another process.
	ErrLocked = errors.New("residency: store is in use by another process")
	// ErrCorrupt: the file is not a domicile store, is damaged, or holds a
	// record that does not decode.
	ErrCorrupt = errors.New("residency: store is damaged or not a domicile store")
	// ErrFormat: the store was written in a format version this version of
	// domicile does not read: a newer one, or an older one that only a
	// writable open upgrades, opened read-only.
	ErrFormat = errors.New("residency: store format version not readable")
)

// Errors of writes that the store failed. Neither says that the request was
// wrong: a retry may succeed once the store works again.
var (
	// ErrStoreFailed: the store failed while making the change durable,
	// and the change was not applied: reading it back showed so, or the
	// store's own error said so (a database that could not be reached,
	// or refused the statement). The error also wraps the store's own
	// error.
	ErrStoreFailed = errors.New("residency: the store failed; the change was not applied")
	// ErrUnavailable: the store could not be reached, or did not answer in
	// time. For a write, the Router cannot tell whether the change is
	// durable: the store failed, and reading the affected accounts back
	// failed too, or a call of the store has not returned within the write
	// timeout ([WithWriteTimeout]) or by its callers' deadline, or the
	// write's context ended while it was being committed (the error then
	// also matches the context's error). The change may or may not have
	// been applied. After a store call that failed so, every write fails
	// with ErrUnavailable until the Router has read those accounts back,
	// which it tries before each later write; reads answer the state from
	// before the failed write.
	// A CompleteMove or Drain that returns it did not wait for its fence:
	// should the change turn out to be committed, [Router.Fence] waits for
	// it. For a read of the store ([Router.Sync], [Router.History] on a
	// [TrailStore], the audit log's reads), the read may be tried again.
	ErrUnavailable = errors.New("residency: store unavailable")
)
