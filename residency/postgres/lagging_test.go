package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// The tests of a Router that lags behind another on one database: a
// write whose answer memory alone would give (a refusal, or nothing to
// write) is decided again once the Router has read the log up to the
// store's head, as a write that writes is when the store refuses it as
// stale. Each was a wrong answer from memory, found by a trial of two
// instances behind a load balancer.

// lagging opens a Router on dsn that reads the log only when asked
// (Sync), when it writes, or when it renews its lease, every quarter of
// an hour: within a test it lags behind the others. Its store wakes it
// never (unwoken), not even once at the start, which would read the log
// whenever the goroutine ran, on a loaded machine after the test's next
// writes.
func lagging(t *testing.T, dsn string) *residency.Router {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, postgres.WithPollOnly(), postgres.WithPollInterval(time.Hour), postgres.WithLease(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(unwoken{s}))
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// unwoken is a Store whose wake-ups never come.
type unwoken struct{ *postgres.Store }

func (unwoken) Wakeups(context.Context) (<-chan struct{}, func(), error) {
	return make(chan struct{}), func() {}, nil
}

// unfenced runs write, on a Router other than the lagging one, of a
// change that narrows what an account allows: its fence waits for every
// live Router, the lagging one included, which applies nothing by itself,
// so it gives up at write's context's deadline, 2 s away, with
// ErrNotFenced, and the change stands. The lagging Router has not applied
// it.
func unfenced(t *testing.T, write func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := write(ctx); !errors.Is(err, residency.ErrNotFenced) {
		t.Fatalf("a fenced write with a lagging Router live = %v, want ErrNotFenced", err)
	}
}

// acmeOnBoth opens Router a and a lagging Router b on a new database,
// places account "acme" through a, and has b apply it.
func acmeOnBoth(t *testing.T) (a, b *residency.Router) {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a, b = routertest.OnPostgres(t, dsn, nil), lagging(t, dsn)
	if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestWriteOnAccountPlacedByAnotherRouter: writes on B to an account A
// placed a moment before succeed; from B's memory they were ErrNotFound.
func TestWriteOnAccountPlacedByAnotherRouter(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a := routertest.OnPostgres(t, dsn, nil)
	b := lagging(t, dsn)

	writes := map[string]func(id string) error{
		"GrantAccess": func(id string) error {
			return b.GrantAccess(ctx, residency.Consent{AccountID: id, SubProcessor: "support-247", Reference: "TICKET-1"})
		},
		"Object": func(id string) error {
			return b.Object(ctx, residency.Objection{AccountID: id, SubProcessor: "twilio", Reference: "LETTER-1"})
		},
		"BeginMove": func(id string) error {
			p, err := a.Lookup(id)
			if err != nil {
				return err
			}
			to := "websupport-eu"
			if p.DataCenter == to {
				to = "aws-eu-west-1"
			}
			_, err = b.BeginMove(ctx, id, to)
			return err
		},
		"Delete": func(id string) error {
			return b.Delete(ctx, id, "trial expired")
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			id := "acct-" + name
			if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
				t.Fatal(err)
			}
			if err := write(id); err != nil {
				t.Errorf("%s on instance B of account %q placed by instance A: %v (ErrNotFound: %v), want nil",
					name, id, err, errors.Is(err, residency.ErrNotFound))
			}
		})
	}
}

// TestCreateAfterDeleteOnAnotherRouter: Create on B of an account A
// deleted a moment before places it afresh, as on one Router; from B's
// memory it returned the deleted placement, created false, and wrote
// nothing.
func TestCreateAfterDeleteOnAnotherRouter(t *testing.T) {
	ctx := context.Background()
	a, b := acmeOnBoth(t)
	unfenced(t, func(ctx context.Context) error { return a.Delete(ctx, "acme", "customer left") })

	p, created, err := b.Create(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil || !created || p.Version != 3 {
		t.Errorf("Create on B of an account A deleted = version %d, created %v, %v; want it placed afresh at version 3", p.Version, created, err)
	}
	for name, r := range map[string]*residency.Router{"A": a, "B": b} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Lookup("acme"); err != nil {
			t.Errorf("Lookup on %s after Create on B returned nil: %v, want the placement", name, err)
		}
	}
}

// TestDrainAfterActivateOnAnotherRouter: Drain on B of a data center A
// activated a moment before drains it everywhere; from B's memory (still
// draining) it wrote nothing and returned nil.
func TestDrainAfterActivateOnAnotherRouter(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a := routertest.OnPostgres(t, dsn, nil)
	b := lagging(t, dsn)
	if err := b.Drain(ctx, "linode-eu"); err != nil { // fenced: a has applied it
		t.Fatal(err)
	}
	if err := a.Activate(ctx, "linode-eu"); err != nil {
		t.Fatal(err)
	}

	if err := b.Drain(ctx, "linode-eu"); err != nil {
		t.Fatalf("Drain on B: %v", err)
	}
	for name, r := range map[string]*residency.Router{"A": a, "B": b} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := r.Status("linode-eu"); err != nil || st != provider.Draining {
			t.Errorf("Status of linode-eu on %s after Drain on B returned nil = %q, %v; want %q", name, st, err, provider.Draining)
		}
	}
}

// TestObjectAfterWithdrawOnAnotherRouter: Object on B under a reference
// whose objection A withdrew a moment before is ErrConflict, as on a
// Router that knows the withdrawal; from B's memory (the objection
// standing) it returned nil, and the caller believed twilio kept out.
func TestObjectAfterWithdrawOnAnotherRouter(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a := routertest.OnPostgres(t, dsn, nil)
	b := lagging(t, dsn)
	if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	objection := residency.Objection{AccountID: "acme", SubProcessor: "twilio", Reference: "LETTER-1"}
	unfenced(t, func(ctx context.Context) error { return a.Object(ctx, objection) })
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.WithdrawObjection(ctx, "acme", "LETTER-1"); err != nil {
		t.Fatal(err)
	}

	if err := b.Object(ctx, objection); !errors.Is(err, residency.ErrConflict) {
		t.Errorf("Object on B under a withdrawn reference = %v, want ErrConflict", err)
	}
}

// TestRevokeConsentGrantedOnAnotherRouter: RevokeAccess on B of a consent
// A granted a moment before revokes it everywhere; from B's memory it was
// ErrNotFound, and the consent stayed live.
func TestRevokeConsentGrantedOnAnotherRouter(t *testing.T) {
	ctx := context.Background()
	a, b := acmeOnBoth(t)
	if err := a.GrantAccess(ctx, residency.Consent{AccountID: "acme", SubProcessor: "support-247", Reference: "TICKET-1"}); err != nil {
		t.Fatal(err)
	}

	if err := b.RevokeAccess(ctx, "acme", "TICKET-1"); err != nil {
		t.Errorf("RevokeAccess on B of a consent granted on A = %v, want nil", err)
	}
	for name, r := range map[string]*residency.Router{"A": a, "B": b} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.MayAccess("acme", "support-247"); !errors.Is(err, residency.ErrNoConsent) {
			t.Errorf("MayAccess(acme, support-247) on %s after the revocation = %v, want ErrNoConsent", name, err)
		}
	}
}

// TestMoveAndTransferOfAnotherRouter: B completes a move A began, and
// revokes a transfer agreement A granted, a moment before each.
func TestMoveAndTransferOfAnotherRouter(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a := routertest.OnPostgres(t, dsn, nil)
	b := lagging(t, dsn)
	p, err := a.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	to := "websupport-eu"
	if p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	m, err := a.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.CompleteMove(ctx, m.ID); err != nil || got.DataCenter != to {
		t.Errorf("CompleteMove on B of a move begun on A = %+v, %v; want the account on %s", got, err, to)
	}
	if err := a.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeTransfer(ctx, "acme", "T-1"); err != nil {
		t.Errorf("RevokeTransfer on B of an agreement granted on A = %v, want nil", err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ags, err := a.Agreements("acme")
	if err != nil || len(ags) != 1 || ags[0].Revoked.IsZero() {
		t.Errorf("Agreements(acme) on A after the revocation on B = %+v, %v; want T-1 revoked", ags, err)
	}
}

// TestMoveUnderAgreementRevokedOnAnotherRouter: B has not applied A's
// revocation of the agreement its move out of the region would rest on
// (RevokeTransfer is not fenced); B's BeginMove, decided from memory under
// the agreement, is refused by the database as stale (the revocation
// advanced the account's version), and B decides again on the account
// read afresh: no agreement, so ErrCrossRegion, and nothing written. This
// is why RevokeTransfer needs no fence.
func TestMoveUnderAgreementRevokedOnAnotherRouter(t *testing.T) {
	ctx := context.Background()
	a, b := acmeOnBoth(t)
	if err := a.GrantTransfer(ctx, residency.Transfer{AccountID: "acme", To: region.US, Reference: "T-1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeTransfer(ctx, "acme", "T-1"); err != nil {
		t.Fatal(err)
	}
	// B still holds T-1 live: its memory would let the move out.
	ags, err := b.Agreements("acme")
	if err != nil || len(ags) != 1 || !ags[0].Revoked.IsZero() {
		t.Fatalf("Agreements(acme) on B before it reads the revocation = %+v, %v; want T-1 live", ags, err)
	}
	before, err := a.History(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := b.BeginMove(ctx, "acme", "aws-us-west-1"); !errors.Is(err, residency.ErrCrossRegion) {
		t.Fatalf("BeginMove on B to the US under an agreement revoked on A = %+v, %v; want ErrCrossRegion", m, err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := a.History(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("acme's trail after the refused move has %d events, want %d: %+v", len(after), len(before), after[len(before):])
	}
	if p, err := a.Lookup("acme"); err != nil || p.Moving() {
		t.Errorf("Lookup(acme) on A after the refused move = %+v, %v; want no open move", p, err)
	}
}

// TestSyncWhileDatabaseUnreachable: Sync's error when the database cannot
// be reached matches ErrUnavailable, so that a handler can answer 503, as
// it does for writes; it matched no sentinel.
func TestSyncWhileDatabaseUnreachable(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	name := role(t, dsn)
	r := routertest.OnPostgres(t, withUser(dsn, name), nil)
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	cut(t, name)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.Sync(sctx); !errors.Is(err, residency.ErrUnavailable) {
		t.Errorf("Sync with the database unreachable = %v, want an error matching residency.ErrUnavailable", err)
	}
}

// TestImportAfterDeleteOnAnotherRouterWithNewRow: Import on B of an
// account A deleted a moment before, in a batch with a new account,
// places the deleted account afresh, as a Router that knows the deletion
// does (and as an Import of that row alone does on B, since a write that
// writes nothing reads the log first).
// From B's memory it counted acme as existing, though its request wrote
// (the new account), and acme stayed deleted. Found by a review.
func TestImportAfterDeleteOnAnotherRouterWithNewRow(t *testing.T) {
	ctx := context.Background()
	a, b := acmeOnBoth(t)
	unfenced(t, func(ctx context.Context) error { return a.Delete(ctx, "acme", "customer left") })

	rows := []residency.ImportRow{{AccountID: "acme", Country: "DE"}, {AccountID: "globex", Country: "DE"}}
	res, err := b.Import(ctx, slices.Values(rows))
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 2 || res.Existing != 0 || len(res.Refused) != 0 {
		t.Errorf("Import on B of [acme (deleted on A), globex (new)] = imported %d, existing %d, refused %v; want imported 2, existing 0",
			res.Imported, res.Existing, res.Refused)
	}
	for name, r := range map[string]*residency.Router{"A": a, "B": b} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Lookup("acme"); err != nil {
			t.Errorf("Lookup(acme) on %s after the Import on B = %v, want the account placed afresh", name, err)
		}
	}
}

// headHanger is a SharedStore that is not a PromptStore (it hides the
// postgres Store's ReturnsPromptly): once hang is set, Head waits for
// release, whatever its context says, as a store that does not honour
// its context may.
type headHanger struct {
	residency.SharedStore
	hang    atomic.Bool
	release chan struct{}
}

func (h *headHanger) Head(ctx context.Context) (uint64, error) {
	if h.hang.Load() {
		<-h.release
	}
	return h.SharedStore.Head(ctx)
}

// TestWriteFromMemoryOnStoreNotPromptIsBounded: on a shared store that
// is not a PromptStore, every store call of a write is bounded by the
// write timeout and its grace (storeCall; WithWriteTimeout's doc: "the
// write then fails with an error matching ErrUnavailable"), and "when
// the store cannot be read, memory decides". Place of an existing account
// on such a store whose Head hangs must thus return within the write
// timeout (200ms) and its grace (1s).
//
// It did not return until Head did: the leader called Head directly, not
// through storeCall. Found by a review.
func TestWriteFromMemoryOnStoreNotPromptIsBounded(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	h := &headHanger{SharedStore: openStore(t, dsn), release: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(h.release)
		}
	}
	r, err := residency.Open(ctx, residency.WithStore(h), residency.WithWriteTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { release(); r.Close() })
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}

	h.hang.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
		done <- err
	}()
	select {
	case err := <-done:
		t.Logf("Place of an existing account returned %v", err)
	case <-time.After(10 * time.Second):
		t.Errorf("Place of an existing account on a store that is not prompt, whose Head hangs, has not returned after 10s; want it bounded by the write timeout of 200ms and its grace of 1s")
		release()
		<-done
	}
}

// headPanicker is the postgres Store (a PromptStore) whose Head panics
// once panics is set.
type headPanicker struct {
	*postgres.Store
	panics atomic.Bool
}

func (h *headPanicker) Head(ctx context.Context) (uint64, error) {
	if h.panics.Load() {
		panic("head: driver bug")
	}
	return h.Store.Head(ctx)
}

// TestWriteFromMemoryWhenHeadPanics: a store's panic while a write that
// memory would answer reads the log is a failure of the store, and memory
// decides: Place of an existing account returns its placement. The panic
// reached commit's recover, which failed the whole batch. Found by a
// review.
func TestWriteFromMemoryWhenHeadPanics(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	h := &headPanicker{Store: openStore(t, dsn)}
	r, err := residency.Open(ctx, residency.WithStore(h))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	want, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	h.panics.Store(true)
	got, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil || got.Version != want.Version {
		t.Errorf("Place of an existing account while the store's Head panics = version %d, %v; want version %d, nil (memory decides)", got.Version, err, want.Version)
	}
}

// TestSyncAfterTheDatabaseLostCommits: when the database's log ends
// before what a Router applied (restored from a backup, or failed over to
// a standby that missed the last commits; here its last two changes are
// cut off by hand), Sync says so with ErrStale rather than return as if
// the Router were up to date: positions after the cut will be handed out
// again, to changes the Router would never read.
func TestSyncAfterTheDatabaseLostCommits(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	r := routertest.OnPostgres(t, dsn, nil)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("Sync before: %v", err)
	}
	exec(t, dsn, `DELETE FROM domicile.changes WHERE pos > (SELECT pos - 2 FROM domicile.head)`)
	exec(t, dsn, `UPDATE domicile.head SET pos = pos - 2`)
	if err := r.Sync(ctx); !errors.Is(err, residency.ErrStale) {
		t.Errorf("Sync once the database's log is two changes short = %v, want ErrStale", err)
	}
}

// stallOnChanges is a tracer that stalls the proxy when its connection is
// about to read the changes log, once armed.
type stallOnChanges struct {
	p     *pgtest.StallingProxy
	armed *atomic.Bool
}

func (h stallOnChanges) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if h.armed.Load() && strings.Contains(d.SQL, "LEFT JOIN LATERAL") {
		h.p.Stall()
	}
	return ctx
}

func (stallOnChanges) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestSyncEndsWhenTheRouterCloses: Sync waits for this Router's follow
// goroutine (waitApplied, which fence shares), and stops, with an error
// matching ErrClosed, once the Router closes, as Fence does. Here Sync
// waits for another Router's write while the follow goroutine's read of
// the log hangs (a proxy that stops forwarding), and the Router is
// closed meanwhile: nothing will ever apply the write. (Before, Sync
// without a deadline waited for ever.)
func TestSyncEndsWhenTheRouterCloses(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	other := routertest.OnPostgres(t, dsn, nil)
	var armed atomic.Bool
	pool, proxy := proxiedPool(t, dsn, func(p *pgtest.StallingProxy) pgx.QueryTracer { return stallOnChanges{p, &armed} })
	// Polling once an hour: only Sync makes it read the log, once armed.
	s, err := postgres.Open(ctx, "", postgres.WithPool(pool), postgres.WithPollOnly(), postgres.WithPollInterval(time.Hour), postgres.WithLease(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(ctx, residency.WithStore(s), residency.WithWriteTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// A write of the other Router that r has not read: r reads the log
	// once as it starts, then only when Sync wakes it.
	for i := 0; ; i++ {
		id := fmt.Sprintf("a%d", i)
		if _, err := other.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // a read under way ends meanwhile
		if _, err := r.Lookup(id); errors.Is(err, residency.ErrNotFound) {
			break
		}
		if i == 50 {
			t.Fatal("r applied each of 50 writes of another Router by itself, polling once an hour")
		}
	}
	armed.Store(true)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	synced := make(chan error, 1)
	go func() { synced <- r.Sync(sctx) }()
	for end := time.Now().Add(time.Minute); !proxy.Stalled(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the follow goroutine did not read the log within a minute")
		}
	}
	select {
	case err := <-synced:
		t.Fatalf("Sync returned (%v) while the follow goroutine's read hangs", err)
	default:
	}
	r.Close() // its error (leaving the members through the stalled proxy) does not matter here
	select {
	case err := <-synced:
		if err == nil {
			t.Errorf("Sync after Close = nil; the write it waited for was never applied")
		}
	case <-time.After(10 * time.Second):
		cancel()
		t.Errorf("Sync (no deadline) has not returned 10 s after Close returned; it returned %v only once its context was cancelled", <-synced)
	}
}
