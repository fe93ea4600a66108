package residency

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/domicile-go/domicile/provider"
)

// Consent is a customer's prior consent that a consent-gated sub-processor
// (one whose catalog entry has RequiresConsent, such as the 24/7 support
// subcontractors) may access the account's data.
type Consent struct {
	AccountID string `json:"account_id"`
	// SubProcessor is the catalog ID of the sub-processor, such as
	// "support-247".
	SubProcessor string `json:"subprocessor"`
	// Reference identifies the consent (a ticket, a signed form): 1 to 255
	// bytes of valid UTF-8 without control characters. It is recorded on
	// the audit trail; [Router.RevokeAccess] names the consent by it.
	Reference string `json:"reference"`
	// ExpiresAt ends the consent; the zero time means it does not expire
	// (and is left out of JSON).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// ConsentRecord is a consent as the Router keeps it. In JSON the Consent's
// fields sit beside Granted and Revoked.
type ConsentRecord struct {
	Consent
	Granted time.Time `json:"granted"`
	// Revoked is when [Router.RevokeAccess] or [Router.Delete] ended the
	// consent; zero (and left out of JSON) while it stands.
	Revoked time.Time `json:"revoked,omitzero"`
}

// Live reports whether the consent allows access at time now: not revoked
// and not expired.
func (c ConsentRecord) Live(now time.Time) bool {
	return c.Revoked.IsZero() && (c.ExpiresAt.IsZero() || now.Before(c.ExpiresAt))
}

// Objection is a customer's objection to a service processor or
// subcontractor (GDPR Art. 28(2)): while it stands, that sub-processor may
// not touch the account's data, whatever the catalog says.
type Objection struct {
	AccountID string `json:"account_id"`
	// SubProcessor is the catalog ID of the sub-processor objected to, such
	// as "twilio". Hosts cannot be objected to: their access follows the
	// account's data centers, so the answer to an objection to a host is
	// a move ([Router.BeginMove]).
	SubProcessor string `json:"subprocessor"`
	// Reference identifies the objection (a ticket, a letter): 1 to 255
	// bytes of valid UTF-8 without control characters. It is recorded on
	// the audit trail; [Router.WithdrawObjection] names the objection by it.
	Reference string `json:"reference"`
}

// ObjectionRecord is an objection as the Router keeps it. In JSON the
// Objection's fields sit beside Raised and Withdrawn.
type ObjectionRecord struct {
	Objection
	Raised time.Time `json:"raised"`
	// Withdrawn is when [Router.WithdrawObjection] or [Router.Delete] ended
	// the objection; zero (and left out of JSON) while it stands.
	Withdrawn time.Time `json:"withdrawn,omitzero"`
}

// Live reports whether the objection stands.
func (o ObjectionRecord) Live() bool { return o.Withdrawn.IsZero() }

// The audit events of consents, objections and deletion. Their Event.To
// is the sub-processor's ID and Event.Reference the consent's or
// objection's reference; Deleted has the data center the account left in
// From and the reason given in Rule. Consents, agreements and objections
// that a deletion ends are recorded first, each with the Rule
// "account deleted", then the deletion (an account placed afresh after a
// Delete by an older version of this package, which left expired ones
// unrevoked, shows their ends after its placement instead). An event
// does not carry a consent's expiry: [Router.Consents] and the audit
// log's entry of the grant ([Router.LogEntries]) do, and an expiry ends a
// consent with no event.
const (
	AccessGranted      EventKind = "access-granted"
	AccessRevoked      EventKind = "access-revoked"
	Objected           EventKind = "objected"
	ObjectionWithdrawn EventKind = "objection-withdrawn"
	Deleted            EventKind = "deleted"
)

// ruleDeleted is the Rule of the events of what a deletion ends.
const ruleDeleted = "account deleted"

// Errors of access checks, consents and objections. Like the others, they
// are wrapped with the account and sub-processor they concern; match them
// with [errors.Is].
var (
	// ErrNoAccess: [Router.MayAccess] refuses: the sub-processor may not
	// touch the account's data now. Every refusal matches it; those where
	// consent is missing, an objection stands or the sub-processor or data
	// center is not yet effective also match ErrNoConsent, ErrObjected or
	// ErrNotEffective.
	ErrNoAccess = errors.New("residency: no access")
	// ErrNoConsent: a consent-gated sub-processor without a live consent
	// of the customer.
	ErrNoConsent = errors.New("residency: no consent")
	// ErrObjected: the customer objected to the sub-processor, and the
	// objection stands.
	ErrObjected = errors.New("residency: objected")
	// ErrNotEffective: a sub-processor or data center that the catalog
	// announces from a date still ahead (by the Router's clock).
	ErrNotEffective = errors.New("residency: not yet effective")
	// ErrInvalidConsent: a consent without a valid account, sub-processor
	// or reference, already expired, for a sub-processor that needs no
	// consent or does not serve the account's home region. One for an
	// unknown sub-processor also matches [provider.ErrUnknownSubProcessor].
	ErrInvalidConsent = errors.New("residency: invalid consent")
	// ErrInvalidObjection: an objection without a valid account,
	// sub-processor or reference, or to a host. One to an unknown
	// sub-processor also matches [provider.ErrUnknownSubProcessor].
	ErrInvalidObjection = errors.New("residency: invalid objection")
)

// kindsError is an error that matches several sentinels, its message
// prefixed by the last one's.
type kindsError struct {
	kinds []error
	msg   string
}

func (e *kindsError) Error() string   { return e.kinds[len(e.kinds)-1].Error() + ": " + e.msg }
func (e *kindsError) Unwrap() []error { return e.kinds }

// denied is a refusal of MayAccess: it matches ErrNoAccess and kind.
func denied(kind error, format string, args ...any) error {
	return &kindsError{kinds: []error{ErrNoAccess, kind}, msg: fmt.Sprintf(format, args...)}
}

// notYet refuses a placement or move onto a data center that is announced,
// not yet effective: it matches ErrNoDataCenter and ErrNotEffective.
func notYet(accountID string, d *dataCenter) error {
	return &kindsError{kinds: []error{ErrNoDataCenter, ErrNotEffective},
		msg: fmt.Sprintf("account %q: data center %s is announced from %s and takes no accounts before", accountID, d.ID, d.Effective.Format(time.RFC3339))}
}

// storedRow is the account row of a stored account.
func storedRow(s StoredAccount) *account {
	return &account{Placement: s.Placement, history: s.History, access: newAccess(s.Consents, s.Objections)}
}

// access is what an account row keeps of its consents and objections,
// ended ones included, each ordered by reference. It is immutable: a change
// makes a new one. Most accounts have none (a nil *access), so that the
// row grows by one pointer only.
type access struct {
	consents   []ConsentRecord
	objections []ObjectionRecord
}

func newAccess(consents []ConsentRecord, objections []ObjectionRecord) *access {
	if len(consents) == 0 && len(objections) == 0 {
		return nil
	}
	x := &access{consents: slices.Clone(consents), objections: slices.Clone(objections)}
	slices.SortFunc(x.consents, func(a, b ConsentRecord) int { return strings.Compare(a.Reference, b.Reference) })
	slices.SortFunc(x.objections, func(a, b ObjectionRecord) int { return strings.Compare(a.Reference, b.Reference) })
	return x
}

func (x *access) consent(reference string) (ConsentRecord, bool) {
	if x == nil {
		return ConsentRecord{}, false
	}
	i, ok := slices.BinarySearchFunc(x.consents, reference, func(c ConsentRecord, ref string) int { return strings.Compare(c.Reference, ref) })
	if !ok {
		return ConsentRecord{}, false
	}
	return x.consents[i], true
}

func (x *access) objection(reference string) (ObjectionRecord, bool) {
	if x == nil {
		return ObjectionRecord{}, false
	}
	i, ok := slices.BinarySearchFunc(x.objections, reference, func(o ObjectionRecord, ref string) int { return strings.Compare(o.Reference, ref) })
	if !ok {
		return ObjectionRecord{}, false
	}
	return x.objections[i], true
}

// liveConsent returns the reference of a live consent to the
// sub-processor, or "".
func (x *access) liveConsent(subProcessor string, clk *lazyClock) string {
	if x == nil {
		return ""
	}
	for i := range x.consents {
		c := &x.consents[i]
		if c.SubProcessor == subProcessor && c.Revoked.IsZero() && (c.ExpiresAt.IsZero() || clk.get().Before(c.ExpiresAt)) {
			return c.Reference
		}
	}
	return ""
}

// standingObjection returns the reference of a standing objection to the
// sub-processor, or "".
func (x *access) standingObjection(subProcessor string) string {
	if x == nil {
		return ""
	}
	for i := range x.objections {
		if o := &x.objections[i]; o.SubProcessor == subProcessor && o.Live() {
			return o.Reference
		}
	}
	return ""
}

// withConsent returns a copy of x with c in place of the consent of the
// same reference, or added.
func (x *access) withConsent(c ConsentRecord) *access {
	n := &access{}
	if x != nil {
		n.consents, n.objections = slices.Clone(x.consents), x.objections
	}
	i, ok := slices.BinarySearchFunc(n.consents, c.Reference, func(c ConsentRecord, ref string) int { return strings.Compare(c.Reference, ref) })
	if ok {
		n.consents[i] = c
	} else {
		n.consents = slices.Insert(n.consents, i, c)
	}
	return n
}

// withObjection returns a copy of x with o in place of the objection of
// the same reference, or added.
func (x *access) withObjection(o ObjectionRecord) *access {
	n := &access{}
	if x != nil {
		n.consents, n.objections = x.consents, slices.Clone(x.objections)
	}
	i, ok := slices.BinarySearchFunc(n.objections, o.Reference, func(o ObjectionRecord, ref string) int { return strings.Compare(o.Reference, ref) })
	if ok {
		n.objections[i] = o
	} else {
		n.objections = slices.Insert(n.objections, i, o)
	}
	return n
}

// live returns the account's row unless the account does not exist or was
// deleted; writers that change an account read it through live.
func (w *writer) live(id string) *account {
	if a := w.account(id); a != nil && !a.deleted() {
		return a
	}
	return nil
}

// putRecord records an account's new row, as put does, with the consent or
// objection the change grants or ends, for the store.
func (w *writer) putRecord(a *account, c *ConsentRecord, o *ObjectionRecord) {
	w.put(a, nil)
	if w.durable {
		last := &w.changes[len(w.changes)-1]
		last.Consent, last.Objection = c, o
	}
}

// GrantAccess records a customer's consent that a consent-gated
// sub-processor may access the account's data: while the consent is live
// (until c.ExpiresAt, if set, and until revoked), [Router.MayAccess] allows
// that sub-processor, provided it serves the account's home region, is
// effective and no objection of the customer stands against it. The
// consent is durable and on the account's audit trail with its reference
// before GrantAccess returns.
//
// The account must exist ([ErrNotFound]). The sub-processor must be in the
// catalog, need consent and serve the account's home region; the reference
// must be like an account ID; the expiry, if set, in the future and before
// the year 10000: otherwise [ErrInvalidConsent]. A consent may be given before the sub-processor's
// effective date. Granting the same consent again, while it stands and
// the sub-processor serves the account's region, changes nothing; any other consent under a reference the account has
// used, revoked ones and ones of before a [Router.Delete] included, is
// [ErrConflict]: a reference names one consent for good.
func (r *Router) GrantAccess(ctx context.Context, c Consent) error {
	if r.isClosed() {
		return ErrClosed
	}
	if err := ValidAccountID(c.AccountID); err != nil {
		return r.refuse(err)
	}
	if err := validText(c.Reference, ErrInvalidConsent, "reference"); err != nil {
		return r.refuse(fmt.Errorf("residency: account %q: %w", c.AccountID, err))
	}
	sc, err := r.catalog.Scope(c.SubProcessor)
	if err != nil {
		return r.refuse(fmt.Errorf("%w: account %q: %w", ErrInvalidConsent, c.AccountID, err))
	}
	if !sc.RequiresConsent {
		return r.refuse(fmt.Errorf("%w: account %q: sub-processor %s needs no consent", ErrInvalidConsent, c.AccountID, c.SubProcessor))
	}
	if err := validTime(c.ExpiresAt); err != nil {
		return r.refuse(fmt.Errorf("%w: account %q: consent %q: expiry %w", ErrInvalidConsent, c.AccountID, c.Reference, err))
	}
	c.ExpiresAt = c.ExpiresAt.UTC()
	return r.write(ctx, subject{"account", c.AccountID}, func(w *writer) error {
		a := w.live(c.AccountID)
		if a == nil {
			return fmt.Errorf("%w: account %q", ErrNotFound, c.AccountID)
		}
		// Expired is expired, also for the same consent again: it no
		// longer stands, and nil would tell the caller it does.
		if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(w.now) {
			return fmt.Errorf("%w: account %q: consent %q expired at %s", ErrInvalidConsent, c.AccountID, c.Reference, c.ExpiresAt.Format(time.RFC3339))
		}
		// Nor does a consent for a sub-processor that does not serve the
		// account's region (it moved out of them): it allows nothing.
		if !sc.Serves(a.Region) {
			return fmt.Errorf("%w: account %q lives in %s, which sub-processor %s does not serve", ErrInvalidConsent, c.AccountID, a.Region, c.SubProcessor)
		}
		if old, ok := a.access.consent(c.Reference); ok {
			if old.Consent == c && old.Revoked.IsZero() {
				return nil
			}
			return conflictWith(a, fmt.Sprintf("already has consent %q (for %s, revoked %v)", c.Reference, old.SubProcessor, !old.Revoked.IsZero()))
		}
		rec := ConsentRecord{Consent: c, Granted: w.now}
		next := a.change(w.now, Event{Kind: AccessGranted, To: c.SubProcessor, Reference: c.Reference}, func(*Placement) {})
		next.access = a.access.withConsent(rec)
		w.putRecord(next, &rec, nil)
		w.onCommit(func() { r.metrics.consent("granted") })
		return nil
	})
}

// RevokeAccess ends the account's consent with the given reference: from
// then on it allows no access. On a shared store it returns once every
// live Router has applied it, as [Router.CompleteMove] does, so that no
// instance lets the sub-processor in after it returns; when that wait
// gives up, the error matches [ErrNotFenced] and the revocation stands
// ([Router.Fence] waits again). Revoking a consent twice changes nothing
// (and waits for the fence again); a reference the account has no
// consent under is [ErrNotFound].
func (r *Router) RevokeAccess(ctx context.Context, accountID, reference string) error {
	return r.endRecord(ctx, accountID, reference, "consent", true, func(w *writer, a *account) bool {
		c, ok := a.access.consent(reference)
		if ok && c.Revoked.IsZero() {
			w.revokeConsent(a, c, "")
			w.onCommit(func() { r.metrics.consent("revoked") })
		}
		return ok
	})
}

// endRecord is the write of [Router.RevokeAccess],
// [Router.WithdrawObjection] and [Router.RevokeTransfer]. On the
// account's live row, end looks up the record under reference, ends it
// unless it has ended already, and reports whether the account has one;
// noun names the record in the error for a reference it has none under.
// A fenced end, which narrows what the account allows, returns once every
// live Router has applied it (writeFenced).
func (r *Router) endRecord(ctx context.Context, accountID, reference, noun string, fenced bool, end func(w *writer, a *account) (found bool)) error {
	if r.isClosed() {
		return ErrClosed
	}
	if err := ValidAccountID(accountID); err != nil {
		return r.refuse(err)
	}
	write := r.write
	if fenced {
		write = r.writeFenced
	}
	return write(ctx, subject{"account", accountID}, func(w *writer) error {
		a := w.live(accountID)
		if a == nil {
			return fmt.Errorf("%w: account %q", ErrNotFound, accountID)
		}
		if !end(w, a) {
			return fmt.Errorf("%w: account %q has no %s %.80q", ErrNotFound, accountID, noun, reference)
		}
		return nil
	})
}

// revokeConsent records the end of a consent, and returns the new row.
func (w *writer) revokeConsent(a *account, c ConsentRecord, rule string) *account {
	c.Revoked = w.now
	next := a.change(w.now, Event{Kind: AccessRevoked, To: c.SubProcessor, Reference: c.Reference, Rule: rule}, func(*Placement) {})
	next.access = a.access.withConsent(c)
	w.putRecord(next, &c, nil)
	return next
}

// Object records a customer's objection to a service processor or
// subcontractor: while it stands, [Router.MayAccess] refuses that
// sub-processor ([ErrObjected]) and [Router.SubProcessors] leaves it out,
// consent or not; on a shared store, on every live Router once Object
// returns (it waits as [Router.RevokeAccess] does, [ErrNotFenced] when
// the wait gives up). An objection may be raised before the sub-processor's
// effective date (the notice period is for that) and against one that does
// not serve the account's region today. It is durable and on the account's
// audit trail with its reference before Object returns.
//
// The account must exist ([ErrNotFound]); the sub-processor must be in the
// catalog and not a host, and the reference like an account ID
// ([ErrInvalidObjection]). Raising the same objection again changes
// nothing; any other objection under a reference the account has used,
// withdrawn ones and ones of before a [Router.Delete] included, is
// [ErrConflict].
func (r *Router) Object(ctx context.Context, o Objection) error {
	if r.isClosed() {
		return ErrClosed
	}
	if err := ValidAccountID(o.AccountID); err != nil {
		return r.refuse(err)
	}
	if err := validText(o.Reference, ErrInvalidObjection, "reference"); err != nil {
		return r.refuse(fmt.Errorf("residency: account %q: %w", o.AccountID, err))
	}
	sc, err := r.catalog.Scope(o.SubProcessor)
	if err != nil {
		return r.refuse(fmt.Errorf("%w: account %q: %w", ErrInvalidObjection, o.AccountID, err))
	}
	if sc.Kind == provider.Host {
		return r.refuse(fmt.Errorf("%w: account %q: %s is a host, whose access follows the account's data centers: move the account instead", ErrInvalidObjection, o.AccountID, o.SubProcessor))
	}
	return r.writeFenced(ctx, subject{"account", o.AccountID}, func(w *writer) error {
		a := w.live(o.AccountID)
		if a == nil {
			return fmt.Errorf("%w: account %q", ErrNotFound, o.AccountID)
		}
		if old, ok := a.access.objection(o.Reference); ok {
			if old.Objection == o && old.Live() {
				return nil
			}
			return conflictWith(a, fmt.Sprintf("already has objection %q (to %s, withdrawn %v)", o.Reference, old.SubProcessor, !old.Live()))
		}
		rec := ObjectionRecord{Objection: o, Raised: w.now}
		next := a.change(w.now, Event{Kind: Objected, To: o.SubProcessor, Reference: o.Reference}, func(*Placement) {})
		next.access = a.access.withObjection(rec)
		w.putRecord(next, nil, &rec)
		w.onCommit(func() { r.metrics.objection("raised") })
		return nil
	})
}

// WithdrawObjection ends the account's objection with the given reference.
// Withdrawing it twice changes nothing; a reference the account has no
// objection under is [ErrNotFound].
func (r *Router) WithdrawObjection(ctx context.Context, accountID, reference string) error {
	return r.endRecord(ctx, accountID, reference, "objection", false, func(w *writer, a *account) bool {
		o, ok := a.access.objection(reference)
		if ok && o.Live() {
			w.withdrawObjection(a, o, "")
			w.onCommit(func() { r.metrics.objection("withdrawn") })
		}
		return ok
	})
}

// withdrawObjection records the end of an objection, and returns the new
// row.
func (w *writer) withdrawObjection(a *account, o ObjectionRecord, rule string) *account {
	o.Withdrawn = w.now
	next := a.change(w.now, Event{Kind: ObjectionWithdrawn, To: o.SubProcessor, Reference: o.Reference, Rule: rule}, func(*Placement) {})
	next.access = a.access.withObjection(o)
	w.putRecord(next, nil, &o)
	return next
}

// Consents returns the account's consents, revoked and expired ones
// included, ordered by reference. Like [Router.History], it answers for a
// deleted account too.
func (r *Router) Consents(accountID string) ([]ConsentRecord, error) {
	a, err := r.account(accountID)
	if err != nil || a.access == nil {
		return nil, err
	}
	return slices.Clone(a.access.consents), nil
}

// Objections returns the account's objections, withdrawn ones included,
// ordered by reference. Like [Router.History], it answers for a deleted
// account too.
func (r *Router) Objections(accountID string) ([]ObjectionRecord, error) {
	a, err := r.account(accountID)
	if err != nil || a.access == nil {
		return nil, err
	}
	return slices.Clone(a.access.objections), nil
}

// MayAccess is the check a support tool makes before a sub-processor opens
// an account's data. It returns nil only for
//   - the hosts (a provider's token, such as "aws") of the account's data
//     center, its backup data center and the target of its open move;
//   - the service processors and subcontractors that serve the account's
//     home region, unless an objection of the customer stands against them
//     ([ErrObjected]), and consent-gated ones only under a live consent
//     ([ErrNoConsent]);
//
// and only once their effective date, and that of the data center, has
// come by the Router's clock ([ErrNotEffective]). Every refusal matches
// [ErrNoAccess] and says why. An unknown account is [ErrNotFound] (deleted
// accounts too), an invalid account ID (empty, for one) [ErrInvalidAccount],
// an unknown sub-processor [provider.ErrUnknownSubProcessor]; none of these
// matches ErrNoAccess.
//
// Like [Router.Lookup], it is a memory read: it takes no transaction, and
// allocates nothing when it allows. Like Lookup, it answers [ErrStale]
// rather than from old memory while the lease of a Router on a shared
// store has run out: a host the account has left must not be let in.
func (r *Router) MayAccess(accountID, subProcessorID string) error {
	if err := r.readable(); err != nil {
		return err
	}
	a := r.lookup.get(accountID)
	if a == nil || a.deleted() {
		r.metrics.access(accessNotFound)
		if err := ValidAccountID(accountID); err != nil {
			return err
		}
		return fmt.Errorf("%w: account %q", ErrNotFound, accountID)
	}
	sc, err := r.catalog.Scope(subProcessorID)
	if err != nil {
		r.metrics.access(accessUnknown)
		return fmt.Errorf("residency: account %q: %w", accountID, err)
	}
	err = r.mayAccess(a, subProcessorID, sc, &lazyClock{now: r.now})
	r.metrics.accessResult(err)
	return err
}

// lazyClock reads the Router's clock once, and only when a check needs
// it: most entries have no effective date and most consents no expiry.
type lazyClock struct {
	now  func() time.Time
	t    time.Time
	read bool
}

func (c *lazyClock) get() time.Time {
	if !c.read {
		c.t, c.read = c.now(), true
	}
	return c.t
}

// mayAccess decides MayAccess for an account row.
func (r *Router) mayAccess(a *account, id string, sc provider.Scope, clk *lazyClock) error {
	if sc.Kind == provider.Host {
		var announced *dataCenter
		for _, dcID := range [3]string{a.DataCenter, a.Backup, a.Move.To} {
			if dcID == "" {
				continue
			}
			d, ok := r.dataCenters[dcID]
			if !ok || string(d.Provider) != id {
				continue
			}
			if d.Effective.IsZero() || d.EffectiveAt(clk.get()) {
				return nil
			}
			announced = d
		}
		if announced != nil {
			return denied(ErrNotEffective, "account %q: data center %s of host %s is announced from %s", a.AccountID, announced.ID, id, announced.Effective.Format(time.RFC3339))
		}
		return denied(ErrNoAccess, "account %q: host %s runs none of its data centers (%s)", a.AccountID, id, dataCentersOf(a))
	}
	switch {
	case !sc.Serves(a.Region):
		return denied(ErrNoAccess, "account %q: sub-processor %s does not serve its home region %s", a.AccountID, id, a.Region)
	case !sc.Effective.IsZero() && !sc.EffectiveAt(clk.get()):
		return denied(ErrNotEffective, "account %q: sub-processor %s is announced from %s", a.AccountID, id, sc.Effective.Format(time.RFC3339))
	}
	if ref := a.access.standingObjection(id); ref != "" {
		return denied(ErrObjected, "account %q: the customer objected to sub-processor %s (objection %q)", a.AccountID, id, ref)
	}
	if sc.RequiresConsent && a.access.liveConsent(id, clk) == "" {
		return denied(ErrNoConsent, "account %q: sub-processor %s needs the customer's prior consent, and no live consent covers it", a.AccountID, id)
	}
	return nil
}

// dataCentersOf lists the data centers whose hosts may touch the account's
// data, for messages.
func dataCentersOf(a *account) string {
	s := a.DataCenter
	if a.Backup != "" {
		s += ", backup " + a.Backup
	}
	if a.Moving() {
		s += ", moving to " + a.Move.To
	}
	return s
}

// SubProcessors returns who may touch the account's data now, the answer of
// [Router.MayAccess] as a list, for the customer's own page: the hosts of
// its data center, backup and open move's target, each restricted to
// those data centers and ordered by ID; then, in catalog order, the
// service processors and subcontractors MayAccess allows. An unknown or
// deleted account is [ErrNotFound], an invalid account ID
// [ErrInvalidAccount].
func (r *Router) SubProcessors(accountID string) ([]provider.SubProcessor, error) {
	if err := r.readable(); err != nil {
		return nil, err
	}
	a := r.lookup.get(accountID)
	if a == nil || a.deleted() {
		if err := ValidAccountID(accountID); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: account %q", ErrNotFound, accountID)
	}
	now := r.now()
	var hosts []provider.Provider
	byHost := map[provider.Provider][]string{}
	for _, id := range [3]string{a.DataCenter, a.Backup, a.Move.To} {
		d, ok := r.dataCenters[id]
		if !ok || !d.EffectiveAt(now) || slices.Contains(byHost[d.Provider], id) {
			continue
		}
		if _, seen := byHost[d.Provider]; !seen {
			hosts = append(hosts, d.Provider)
		}
		byHost[d.Provider] = append(byHost[d.Provider], id)
	}
	slices.Sort(hosts)
	var out []provider.SubProcessor
	for _, p := range hosts {
		if sp, ok := r.catalog.Host(p, byHost[p]...); ok {
			out = append(out, sp)
		}
	}
	for _, sp := range r.catalog.SubProcessors() {
		if sp.Kind != provider.Host && r.mayAccess(a, sp.ID, sp.Scope(), &lazyClock{t: now, read: true}) == nil {
			out = append(out, sp)
		}
	}
	return out, nil
}
