package residency

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Errors returned by the Router. They are wrapped with the account, data
// center or move they concern: match them with [errors.Is]. A call that
// returns one of them changed nothing.
var (
	// ErrNotFound: no such account, move or transfer agreement.
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
	// placing an existing account in another region.
	ErrConflict = errors.New("residency: conflict")
	// ErrInvalidTransfer: a transfer agreement without a valid account,
	// region, reference or expiry.
	ErrInvalidTransfer = errors.New("residency: invalid transfer agreement")
	// ErrInvalidOption: an Open option that cannot be used, such as a nil
	// catalog.
	ErrInvalidOption = errors.New("residency: invalid option")
	// ErrClosed: the Router has been closed.
	ErrClosed = errors.New("residency: router closed")
)

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
}

// otherReasons are the refusal reasons of errors from other packages.
const (
	reasonInvalidCountry = "invalid_country"
	reasonInvalidRegion  = "invalid_region"
	reasonNoRegion       = "no_region"
	reasonOther          = "other"
)
