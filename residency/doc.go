// Package residency decides, records and guards where each customer
// account's data lives.
//
// An account's data lives in exactly one residency region, chosen from where
// the customer is located (or the customer's own choice), and it moves only
// between data centers inside that region, unless the customer has agreed in
// writing to a move to another region.
//
// # Usage
//
//	r, err := residency.Open(ctx, residency.WithPath("domicile.db"))
//	if err != nil { ... }
//	defer r.Close()
//
//	// At account creation:
//	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "de"})
//	// p.Region == region.EU, p.Rule == "EU member state", p.DataCenter is an EU data center
//
//	// On every request:
//	p, err = r.Lookup("acme")
//
//	// In a migration script:
//	m, err := r.BeginMove(ctx, "acme", "websupport-eu")
//	// ... copy the data from m.From to m.To ...
//	p, err = r.CompleteMove(ctx, m.ID) // or r.AbortMove(ctx, m.ID)
//
// # Rules
//
//   - Home region: PlaceRequest.Region when set, else the policy's region for
//     PlaceRequest.Country. The rule that decided is on the placement.
//   - Placement: an active data center of the home region only, spread by
//     weight; never another region, whatever fails ([ErrNoDataCenter]).
//     Placing an existing account returns it; asking for another region is
//     [ErrConflict], as a [*ConflictError] that names the account, its
//     version and its stored placement.
//   - Moves: inside the home region, or to a region a live transfer
//     agreement ([Router.GrantTransfer]) covers ([ErrCrossRegion] otherwise);
//     then the home region changes with the move and the placement and audit
//     trail name the agreement. [Router.CompleteMove] checks the target
//     again: still active, and still covered by the agreement the move
//     began under.
//   - Data centers: [Router.Drain] stops new accounts and incoming moves;
//     [Router.PlanEvacuation] plans moving a data center's accounts to the
//     other active data centers of their regions, and strands, never moves
//     out of region, those with nowhere to go, and lists the open moves out
//     of the data center and into it.
//   - Sub-processors: [Router.MayAccess] is the check before a third party
//     opens an account's data: the hosts of its data centers, the service
//     processors and subcontractors serving its home region, consent-gated
//     ones only under a live consent of the customer ([Router.GrantAccess],
//     [ErrNoConsent]), none the customer objected to ([Router.Object],
//     [ErrObjected]); [Router.SubProcessors] gives the same answer as a
//     list. Like Lookup, it is a memory read that allocates nothing.
//   - Effective dates: a data center or sub-processor the catalog announces
//     for a date still ahead (by the Router's clock, [WithClock]) takes no
//     account, no move and no access before it ([ErrNotEffective]).
//   - [Router.Delete] closes an account: it leaves Lookup, the iterators
//     and the metrics, its agreements and consents end and its objections
//     are withdrawn, and its audit trail stays. The ID may be placed afresh.
//   - Every change is on the account's audit trail ([Router.History]).
//   - [Router.Verify] checks all of this over the whole state.
//   - Bad input gets an error that [errors.Is] matches, and changes nothing.
//   - After [Router.Close], every method returns [ErrClosed] (but
//     [Router.Catalog], configuration, and Close again, which returns nil)
//     and the iterators yield nothing ([Router.Err]).
//
// # JSON
//
// Every type that is serialized (placements, moves, agreements, consents,
// objections, events, reports, evacuation plans, import results) has JSON names in snake_case,
// times in RFC 3339, regions by name and errors as their text.
//
// # Durability
//
// [WithPath] keeps the state in an embedded bbolt file; [WithStore] in any
// other [Store], such as the PostgreSQL store that many processes share
// (postgres.Open, in package github.com/domicile-go/domicile/residency/postgres;
// see [SharedStore]). Open loads the whole state into memory, and refuses a
// state that breaks the catalog unless [WithUnverifiedState]. A change is
// acknowledged only once it is durable in the store; concurrent writers
// share the store's commits (group commit). [Router.Import] brings existing
// accounts in bulk. Without a store option, state lives in memory only;
// [MemoryStore] is a Store in memory, for tests and dry runs that need one.
//
// When the store fails, the Router never guesses. A conflict
// ([ErrConflict]) means nothing was applied, and so does a store's error
// matching [ErrStoreFailed] (a database that refused the connection or
// the statement), which the write returns; after any other failure it
// reads the accounts concerned back from the store and answers what the
// store holds: success if the change is there, [ErrStoreFailed] if not. If
// it cannot read them back, or the store does not answer within the write
// timeout ([WithWriteTimeout]), the write fails with [ErrUnavailable], and
// so does every later write until the Router has read the accounts back;
// reads go on answering the state before the failed write. A store whose
// calls return by their context's deadline says so ([PromptStore], as the
// PostgreSQL store does), and the Router then calls it from the writer's
// own goroutine, which is faster.
//
// A write's context bounds the call. A write whose context ends while it
// waits in the queue, behind the batch being committed, returns the
// context's error and changes nothing. Once its own batch is being
// committed, it cannot be withdrawn: a context that ends then makes the
// call return at once with an error matching both [ErrUnavailable] and
// the context's error, since the outcome is not known yet (the Router
// learns it, and [Router.Lookup] and [Router.History] then show it). Each
// call of the store is bounded by the write timeout, or sooner by the
// latest deadline of the batch's callers when each has one, so a write on
// a database that stops answering returns by its caller's deadline (on a
// store that is not a [PromptStore], a grace of a quarter of the write
// timeout, at least a second, later). Without a deadline, a write that
// fails may take two calls of the write timeout each (the write, then
// reading back its outcome). A context that ends after the commit cuts
// short only what follows it, such as the fence of
// [Router.CompleteMove] ([ErrNotFenced]).
// Every error of a write but [ErrClosed] names the account, move or data
// center it concerns.
//
// # Metrics
//
// With [WithRegisterer], the Router registers domicile_placements_total,
// domicile_moves_total, domicile_refusals_total,
// domicile_transfer_agreements_total, domicile_consents_total,
// domicile_objections_total, domicile_deletions_total,
// domicile_access_checks_total (by result), and the scrape-time gauges
// domicile_accounts (per data center) and domicile_moves_open. No label
// holds an account ID.
//
// # Concurrency
//
// A Router is safe for concurrent use. Writes are serialised; Lookup takes
// no transaction and allocates nothing. Returned values are copies that a
// caller may change freely without affecting the Router; the catalog
// ([Router.Catalog]) is the one the Router was opened with.
package residency
