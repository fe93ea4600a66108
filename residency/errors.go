package residency

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors returned by the Router. They are wrapped with the account, data
// center or move they concern: match them with [errors.Is]. A call that
// returns one of them changed nothing, but for [ErrNotFenced].
var (
	// ErrNotFound: no such account, move, transfer agreement, consent or
	// objection (deleted accounts included).
	ErrNotFound = errors.New("residency: not found")
	// ErrInvalidAccount: an account ID that is empty, longer than 255
	// bytes, not valid UTF-8 or holding control characters.
	ErrInvalidAccount = errors.New("residency: invalid account ID")
	// ErrCrossRegion: a data center outside the account's home region: a
	// move that no live transfer agreement covers, or an imported account
	// said to live in another region.
	ErrCrossRegion = errors.New("residency: outside the home region")
	// ErrUnknownDataCenter: a data center the catalog does not have.
	ErrUnknownDataCenter = errors.New("residency: unknown data center")
	// ErrNoDataCenter: no active data center to place or move an account
	// to in its region. domicile never falls back to another region.
	ErrNoDataCenter = errors.New("residency: no active data center in the region")
	// ErrMoveInProgress: the account is already moving.
	ErrMoveInProgress = errors.New("residency: move in progress")
	// ErrConflict: the request contradicts the recorded state, such as
	// placing an existing account in another region, or a store refused a
	// write based on a stale version of the account. The error is a
	// [*ConflictError] that says which account and what is stored.
	ErrConflict = errors.New("residency: conflict")
	// ErrNotFenced is the one error that comes with a change made: a
	// change that [Router.CompleteMove] or [Router.Drain] committed (or
	// a fenced write that narrows whom [Router.MayAccess] lets in:
	// [Router.RevokeAccess], [Router.Object], [Router.AbortMove],
	// [Router.Delete]), but that not every other live Router on the
	// shared store was seen to
	// apply before the wait gave up (after their lease and the write
	// timeout: this Router cannot reach the store, say). The change
	// stands, and CompleteMove returns the placement with it; but what
	// waits for the fence must not go on: a move's source copy may still
	// be read by an instance that has not applied the move. Each instance
	// catches up by itself once it reaches the store again, or answers
	// [ErrStale] once its lease has run out; [Router.Fence] waits again.
	// It wraps why the wait ended, a context's error for one: check for
	// ErrNotFenced first.
	ErrNotFenced = errors.New("residency: committed, but not every other Router was seen to apply it")
	// ErrStaleVersion: a [*ConflictError] whose write was based on an
	// out-of-date version of the account: another writer (another process
	// on a shared store) changed it first. Unlike other conflicts, a retry
	// may succeed. It also matches ErrConflict.
	ErrStaleVersion = errors.New("residency: conflict: stale version")
	// ErrInvalidTransfer: a transfer agreement without a valid account,
	// reference or region (one other than the account's home region), or
	// with an expiry already past or after the year 9999. The zero expiry
	// is valid: the agreement then does not expire.
	ErrInvalidTransfer = errors.New("residency: invalid transfer agreement")
	// ErrInvalidOption: an Open option that cannot be used, such as a nil
	// catalog.
	ErrInvalidOption = errors.New("residency: invalid option")
	// ErrClosed: the Router has been closed.
	ErrClosed = errors.New("residency: router closed")
)

// ConflictError is a write refused because it contradicts what is recorded
// about an account, in the style of [fs.PathError]. It matches [ErrConflict]
// with [errors.Is], and [ErrStaleVersion] too when Stale is set. Read its
// fields with [errors.As]:
//
//	var ce *residency.ConflictError
//	if errors.As(err, &ce) && ce.Stale {
//		// another writer was first: read the account again and retry
//	}
//
// The Router returns it for conflicts of meaning (placing an existing
// account in another region or, by Import, on another data center; moving
// an account to where it lives; a transfer agreement, consent or objection
// reference used for another one). A [Store] returns it from Apply, with Stale set, for
// a change whose account is not stored at the version before the change's:
// nothing of that Apply was applied.
type ConflictError struct {
	// AccountID is the account the refused write concerns, if any.
	AccountID string
	// DataCenter is set instead when what is stale is a data center's
	// status: Version is then the status version the write expected and
	// Stored.Version the stored one. Both are empty when a shared store
	// refused a write decided on statuses that another Router has changed
	// since ([SharedStore]).
	DataCenter string
	// Version is the account's version the write was based on: for a stale
	// write, the version it expected the store to hold (one less than the
	// version it writes; 0 for a new account); otherwise the version of the
	// account it was checked against.
	Version uint64
	// Stored is the account as recorded when the write was refused; its
	// Version is the stored version. It is the zero Placement when no such
	// account is stored, and a store that cannot read the account back may
	// fill in AccountID and Version only.
	Stored Placement
	// Stale reports a write based on an out-of-date version: a retry on
	// the current state may succeed. When false, the request contradicts
	// the current state and a retry gets the same answer.
	Stale bool
	// Reason says what conflicts, after the account ID, such as
	// "lives in EU (EU member state), the request asks for US"; it may be
	// empty for a stale write.
	Reason string
}

// Error says which account conflicts and why, such as
//
//	residency: conflict: account "acme" lives in EU (EU member state), the request asks for US
//	residency: conflict: stale version: account "acme" is at version 5, the write expected version 4
func (e *ConflictError) Error() string {
	var b strings.Builder
	switch {
	case e.Stale && e.DataCenter != "":
		fmt.Fprintf(&b, "%v: data center %q has status version %d, the write expected version %d", ErrStaleVersion, e.DataCenter, e.Stored.Version, e.Version)
	case e.Stale && e.AccountID == "":
		fmt.Fprintf(&b, "%v: the data centers' statuses changed since the write was decided", ErrStaleVersion)
	case e.Stale:
		fmt.Fprintf(&b, "%v: account %q is at version %d, the write expected version %d", ErrStaleVersion, e.AccountID, e.Stored.Version, e.Version)
	}
	if e.Stale {
		if e.Reason != "" {
			b.WriteString(": " + e.Reason)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%v: account %q", ErrConflict, e.AccountID)
	if e.Reason != "" {
		b.WriteString(" " + e.Reason)
	} else {
		fmt.Fprintf(&b, " at version %d", e.Version)
	}
	return b.String()
}

// Unwrap returns [ErrConflict].
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Is reports whether target is [ErrStaleVersion] and the write was stale.
// [ErrConflict] matches through Unwrap.
func (e *ConflictError) Is(target error) bool { return target == ErrStaleVersion && e.Stale }

// MaxAccountIDLen is the longest account ID, in bytes.
const MaxAccountIDLen = 255

// ValidAccountID reports whether id is 1 to 255 bytes of valid UTF-8 with no
// control characters; if not, the error matches [ErrInvalidAccount].
func ValidAccountID(id string) error {
	return validText(id, ErrInvalidAccount, "account ID")
}

// validText checks the rules shared by account IDs and agreement references.
func validText(s string, kind error, what string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", kind, what)
	case len(s) > MaxAccountIDLen:
		return fmt.Errorf("%w: %s of %d bytes, longer than %d", kind, what, len(s), MaxAccountIDLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", kind, what, s)
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return fmt.Errorf("%w: %s %q holds a control character", kind, what, s)
		}
	}
	return nil
}

// refusalReasons name each error for the refusals metric, in match order.
var refusalReasons = []struct {
	err    error
	reason string
}{
	{ErrInvalidAccount, "invalid_account"},
	{ErrNotFound, "not_found"},
	{ErrCrossRegion, "cross_region"},
	{ErrUnknownDataCenter, "unknown_datacenter"},
	{ErrNoDataCenter, "no_datacenter"},
	{ErrMoveInProgress, "move_in_progress"},
	{ErrConflict, "conflict"},
	{ErrInvalidTransfer, "invalid_transfer"},
	{ErrInvalidConsent, "invalid_consent"},
	{ErrInvalidObjection, "invalid_objection"},
	{ErrInvalidReason, "invalid_reason"},
}

// otherReasons are the refusal reasons of errors from other packages.
const (
	reasonInvalidCountry = "invalid_country"
	reasonInvalidRegion  = "invalid_region"
	reasonNoRegion       = "no_region"
	reasonOther          = "other"
)
