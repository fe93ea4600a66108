package residency

import (
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
)

// PlaceRequest asks for an account's home.
type PlaceRequest struct {
	// AccountID identifies the account: 1 to 255 bytes of valid UTF-8
	// without control characters.
	AccountID string `json:"account_id"`
	// Country is where the customer is located, as the customer gave it
	// ("de", "DEU", "276"); see [region.ParseCountry]. It may be empty
	// only when Region is set.
	Country string `json:"country,omitempty"`
	// Region, when set, is the customer's own choice of home region and
	// wins over the policy's answer for Country.
	Region region.Region `json:"region,omitzero"`
}

// Placement is where an account's data lives. Placements are plain values:
// a caller may change its copy freely without affecting the Router.
//
// In JSON, as in every type of this package: field names in snake_case,
// times in RFC 3339, regions by name ("EU"), kinds and statuses as their
// strings, and optional fields left out when empty.
type Placement struct {
	AccountID string `json:"account_id"`
	// Country is the customer's country as parsed at placement; zero when
	// the account was placed by region choice alone.
	Country region.Country `json:"country,omitzero"`
	// Region is the home region. Data never leaves it, except by a move
	// that a transfer agreement allowed, which changes Region too.
	Region region.Region `json:"region"`
	// DataCenter is the ID of the data center holding the account's data,
	// always one of Region.
	DataCenter string `json:"datacenter"`
	// Provider hosts DataCenter.
	Provider provider.Provider `json:"provider"`
	// Backup is another data center of Region for the account's backups,
	// on another provider where the region has one; "" when the region has
	// no other active data center.
	Backup string `json:"backup,omitempty"`
	// Version grows by one with every change recorded for the account:
	// placement, moves, transfer agreements, consents, objections and
	// deletion. An account deleted and placed afresh goes on from the
	// version of its deletion.
	Version uint64 `json:"version"`
	// Rule says why the account lives in Region, such as "EU member state",
	// "customer's choice" or "transfer agreement "T-1"".
	Rule string `json:"rule"`
	// Transfer is the reference of the agreement that allowed the move into
	// Region; "" when the account never left its first region.
	Transfer string `json:"transfer,omitempty"`
	// Created and Updated are when the account was placed and last changed.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Move is the move in progress; the zero Move (empty ID) when there is
	// none, see [Placement.Moving]. While a move is in progress, DataCenter
	// is still the source.
	Move Move `json:"move,omitzero"`
}

// Moving reports whether a move of the account is in progress.
func (p Placement) Moving() bool { return p.Move.ID != "" }

// Move is a move of one account from one data center to another, begun by
// [Router.BeginMove] and ended by [Router.CompleteMove] or [Router.AbortMove].
type Move struct {
	// ID identifies the move: "mv-" and random text.
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	// From and To are data center IDs.
	From string `json:"from"`
	To   string `json:"to"`
	// ToRegion is the region of To; it differs from the account's home
	// region only for a move a transfer agreement allows.
	ToRegion region.Region `json:"to_region"`
	// Transfer is the reference of the agreement that allows a move to
	// another region; "" for a move inside the region.
	Transfer string    `json:"transfer,omitempty"`
	Began    time.Time `json:"began"`
}

// Transfer is a customer's written agreement that an account's data may
// move to another region.
type Transfer struct {
	AccountID string `json:"account_id"`
	// To is the region the data may move to.
	To region.Region `json:"to"`
	// Reference identifies the agreement (a contract or ticket number):
	// 1 to 255 bytes of valid UTF-8 without control characters. It is
	// recorded on the audit trail and on the placement.
	Reference string `json:"reference"`
	// ExpiresAt ends the agreement; the zero time means it does not expire
	// (and is left out of JSON).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Agreement is a transfer agreement as the Router keeps it. In JSON the
// Transfer's fields sit beside Granted and Revoked.
type Agreement struct {
	Transfer
	Granted time.Time `json:"granted"`
	// Revoked is when [Router.RevokeTransfer] ended the agreement; zero
	// (and left out of JSON) while it stands.
	Revoked time.Time `json:"revoked,omitzero"`
}

// Live reports whether the agreement allows moves at time now: not revoked
// and not expired.
func (a Agreement) Live(now time.Time) bool {
	return a.Revoked.IsZero() && (a.ExpiresAt.IsZero() || now.Before(a.ExpiresAt))
}

// EventKind names a change on the audit trail.
type EventKind string

// The kinds of audit event.
const (
	Placed          EventKind = "placed"
	Imported        EventKind = "imported"
	MoveBegun       EventKind = "move-begun"
	MoveCompleted   EventKind = "move-completed"
	MoveAborted     EventKind = "move-aborted"
	TransferGranted EventKind = "transfer-granted"
	TransferRevoked EventKind = "transfer-revoked"
)

// Event is one change on an account's audit trail. In JSON, empty fields
// are left out.
type Event struct {
	Time      time.Time `json:"time"`
	Kind      EventKind `json:"kind"`
	AccountID string    `json:"account_id"`
	// From and To are data center IDs for placements and moves (From is ""
	// for a placement), region names for transfer agreements, and To the
	// sub-processor's ID for consents and objections. From is the data
	// center the account left for a deletion.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Rule is the rule that decided the region, for placements and for
	// moves that changed the region; the reason given, for a deletion; and
	// "account deleted" for what a deletion ended.
	Rule string `json:"rule,omitempty"`
	// Reference is the transfer agreement's reference, for agreements and
	// for moves they allowed, and the consent's or objection's.
	Reference string `json:"reference,omitempty"`
	// MoveID is set for move events.
	MoveID string `json:"move_id,omitempty"`
	// Version is the placement's version after the event.
	Version uint64 `json:"version"`
}
