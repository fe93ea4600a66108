package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/residency/postgres"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
)

// TestStatusesWhilePlacing: Routers place accounts while, on all of them
// at once, operators drain and activate data centers, twice the same one
// at the same time. The log then shows every data center's versions in
// order, and no account placed into a data center that the log has
// already drained: a placement decided before a drain committed is
// refused and decided again.
func TestStatusesWhilePlacing(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	rs := []*residency.Router{routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil)}
	var stop atomic.Bool
	var placed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 6 {
		wg.Go(func() {
			r := rs[i%len(rs)]
			for n := 0; !stop.Load(); n++ {
				id := fmt.Sprintf("acct-%d-%d", i, n)
				_, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
				switch {
				case err == nil:
					placed.Add(1)
				case errors.Is(err, residency.ErrNoDataCenter): // all of the EU drained
				default:
					errs <- fmt.Errorf("Place %s: %w", id, err)
					return
				}
			}
		})
	}
	type op struct {
		r     *residency.Router
		drain bool
		dc    string
	}
	at := func(ops ...op) {
		time.Sleep(150 * time.Millisecond)
		var ow sync.WaitGroup
		for _, o := range ops {
			ow.Go(func() {
				f, what := o.r.Activate, "Activate"
				if o.drain {
					f, what = o.r.Drain, "Drain"
				}
				if err := f(ctx, o.dc); err != nil {
					errs <- fmt.Errorf("%s %s: %w", what, o.dc, err)
				}
			})
		}
		ow.Wait()
	}
	at(op{rs[0], true, "linode-eu"}, op{rs[1], true, "aws-eu-west-1"}, op{rs[2], true, "websupport-eu"})
	at(op{rs[2], false, "linode-eu"}, op{rs[0], false, "websupport-eu"}, op{rs[1], false, "aws-eu-west-1"})
	at(op{rs[1], true, "linode-eu"}, op{rs[0], true, "linode-eu"}, op{rs[2], false, "linode-eu"})
	at()
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if placed.Load() == 0 {
		t.Fatal("no account placed")
	}

	s := openStore(t, dsn)
	status := map[string]provider.Status{}
	version := map[string]uint64{}
	var statusChanges, intoDrained int
	err := s.LogEntries(ctx, 0, func(i int64, entry []byte) error {
		c, err := residency.DecodeEntry(entry)
		if err != nil {
			return err
		}
		if d := c.DataCenter; d != nil {
			statusChanges++
			if d.Version != version[d.ID]+1 {
				t.Errorf("entry %d: %s at version %d after version %d", i, d.ID, d.Version, version[d.ID])
			}
			version[d.ID], status[d.ID] = d.Version, d.Status
			return nil
		}
		if c.Event.Kind == residency.Placed && status[c.Placement.DataCenter] == provider.Draining {
			intoDrained++
			t.Errorf("entry %d: %s placed into %s, drained by an earlier entry", i, c.Placement.AccountID, c.Placement.DataCenter)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if statusChanges < 6 {
		t.Errorf("%d status changes in the log, want at least 6", statusChanges)
	}
	t.Logf("%d accounts placed, %d status changes", placed.Load(), statusChanges)

	want := stateOf(t, routertest.OnPostgres(t, dsn, nil))
	for i, r := range rs {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, stateOf(t, r)); diff != "" {
			t.Errorf("Router %d differs from a fresh one (-fresh +router):\n%s", i, diff)
		}
	}
}

// TestFenceAfterConflict: a Router whose write conflicts with another's
// fenced CompleteMove reads the account afresh, and so has the move before
// its follower reads it from the log; it still tells the database at once
// that it has applied the move, so that the fence does not wait for its
// next renewal.
func TestFenceAfterConflict(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	// a reads the log only when asked, or when it renews its lease, every
	// quarter of a minute.
	a := routertest.OnPostgres(t, dsn, nil, postgres.WithPollOnly(), postgres.WithPollInterval(time.Hour), postgres.WithLease(time.Minute))
	b := routertest.OnPostgres(t, dsn, nil)
	if _, err := b.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	from, err := a.Lookup("acme")
	if err != nil {
		t.Fatal(err)
	}
	to := "linode-eu"
	if from.DataCenter == to {
		to = "aws-eu-west-1"
	}
	m, err := b.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := b.CompleteMove(cctx, m.ID)
		done <- err
	}()
	// Once the move is committed (b's fence now waits for a), a writes the
	// account as it knew it before the move: refused, read afresh, decided
	// again.
	s := openStore(t, dsn)
	eventually(t, "the move committed", func() error {
		var v uint64
		err := s.LoadAccounts(ctx, []string{"acme"}, func(sa residency.StoredAccount) error { v = sa.Placement.Version; return nil })
		if err == nil && v < 3 {
			err = fmt.Errorf("acme at version %d", v)
		}
		return err
	})
	if err := a.GrantAccess(ctx, residency.Consent{AccountID: "acme", SubProcessor: "support-247", Reference: "C-1"}); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Lookup("acme"); err != nil || p.DataCenter != to || p.Version != 4 {
		t.Errorf("a: Lookup = %+v, %v; want %s at version 4", p, err, to)
	}
	if err := <-done; err != nil {
		t.Errorf("CompleteMove on b = %v; want its fence passed once a had the move, long before a's next renewal", err)
	}
}

// heldStore is a Store whose Appends each wait for the test to let them
// go, and which records how many changes each carried.
type heldStore struct {
	*postgres.Store
	arrived chan int      // the number of changes of each Append
	release chan struct{} // one receive lets one Append go on
}

func (h *heldStore) Append(ctx context.Context, changes []residency.Change, statuses uint64) (uint64, error) {
	h.arrived <- len(changes)
	<-h.release
	return h.Store.Append(ctx, changes, statuses)
}

// TestBatchDecidedAgainWhole: a batch refused because another Router
// changed a data center's status meanwhile is decided again whole, after
// one read of the statuses, not split into a commit per request.
func TestBatchDecidedAgainWhole(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	h := &heldStore{Store: openStore(t, dsn), arrived: make(chan int, 100), release: make(chan struct{})}
	r, err := residency.Open(ctx, residency.WithStore(h))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	errs := make(chan error, 9)
	place := func(id string) {
		_, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "GB"})
		errs <- err
	}
	go place("first")
	if n := <-h.arrived; n != 1 {
		t.Fatalf("first Append of %d changes, want 1", n)
	}
	// While the first write is held, eight more queue: the next batch.
	for i := range 8 {
		go place(fmt.Sprint("acct-", i))
	}
	time.Sleep(200 * time.Millisecond)
	h.release <- struct{}{}
	batch := <-h.arrived
	if batch < 2 {
		t.Fatalf("the second batch holds %d changes; the test needs several", batch)
	}
	// The batch was decided; another writer drains a data center of
	// another region before it is committed.
	other := openStore(t, dsn)
	if _, err := other.Append(ctx, []residency.Change{dcChange("linode-us", provider.Draining, 1)}, 0); err != nil {
		t.Fatal(err)
	}
	h.release <- struct{}{} // refused: decided on no status change
	if again := <-h.arrived; again != batch {
		t.Errorf("after the refusal, an Append of %d changes; want the batch of %d decided again whole", again, batch)
	}
	close(h.release) // arrived is buffered for the Appends that follow
	for range 9 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestPlanEvacuationAfterDrainSeesEveryAccount: a plan made right after
// Drain returns holds every account another instance placed on the data
// center before the drain was committed, although the script's Router
// hears of others' changes late (WithPollOnly, a poll of an hour, as a
// lost notification would): Drain waits for its own Router to apply
// everything before the drain, as it waits for the others. (Before, its
// plan held none of them: the drain is a write, which the database
// accepts without this Router having applied what came before.)
func TestPlanEvacuationAfterDrainSeesEveryAccount(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	script := routertest.OnPostgres(t, dsn, nil, postgres.WithPollOnly(), postgres.WithPollInterval(time.Hour))
	server := routertest.OnPostgres(t, dsn, nil)
	var onEU []string
	for i := 0; len(onEU) < 5; i++ {
		p, err := server.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("acct-", i), Country: "DE"})
		if err != nil {
			t.Fatal(err)
		}
		if p.DataCenter == "linode-eu" {
			onEU = append(onEU, p.AccountID)
		}
	}
	if err := script.Drain(ctx, "linode-eu"); err != nil {
		t.Fatal(err)
	}
	plan, err := script.PlanEvacuation(ctx, "linode-eu")
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]bool{}
	for _, m := range plan.Moves {
		planned[m.AccountID] = true
	}
	for _, s := range plan.Stranded {
		planned[s.AccountID] = true
	}
	var missing []string
	for _, id := range onEU {
		if !planned[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the plan made after Drain returned lacks %d of the %d accounts placed on linode-eu before the drain: %v", len(missing), len(onEU), missing)
	}
	// The database agrees that they were placed before the drain: the
	// server still has them on linode-eu, now draining.
	if err := server.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range onEU {
		if p, err := server.Lookup(id); err != nil || p.DataCenter != "linode-eu" {
			t.Errorf("server: %s on %q, %v; want still on linode-eu", id, p.DataCenter, err)
		}
	}
}
