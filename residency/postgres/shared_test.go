package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
)

// eventually calls f until it returns nil, and fails the test with its
// last error if that takes more than a generous bound: for what must
// happen by itself (no Sync), with no claim about how fast.
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 30 s", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stateOf reads all r holds: [routertest.Of], under the name these tests
// use.
func stateOf(t testing.TB, r *residency.Router) routertest.State { return routertest.Of(t, r) }

// TestRoutersConverge: what one Router writes, the others apply by
// themselves, without Sync; after Sync, at once.
func TestRoutersConverge(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	rs := []*residency.Router{routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil)}
	for i := range 30 {
		if _, err := rs[i%3].Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("acct-", i), Country: []string{"DE", "US", "GB"}[i%3]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs[1].Drain(ctx, "linode-uk"); err != nil {
		t.Fatal(err)
	}
	// acct-0 is in DE: consents and objections travel too.
	if err := rs[2].GrantAccess(ctx, residency.Consent{AccountID: "acct-0", SubProcessor: "support-247", Reference: "C-1"}); err != nil {
		t.Fatal(err)
	}
	if err := rs[1].Object(ctx, residency.Objection{AccountID: "acct-0", SubProcessor: "twilio", Reference: "O-1"}); err != nil {
		t.Fatal(err)
	}
	if err := rs[0].Delete(ctx, "acct-3", "trial expired"); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		eventually(t, fmt.Sprint("Router ", i, " sees every account"), func() error {
			for j := range 30 {
				if _, err := r.Lookup(fmt.Sprint("acct-", j)); j != 3 && err != nil {
					return err
				}
			}
			if c, err := r.Consents("acct-0"); err != nil || len(c) != 1 {
				return fmt.Errorf("consents of acct-0: %v, %v", c, err)
			}
			if _, err := r.Lookup("acct-3"); !errors.Is(err, residency.ErrNotFound) {
				return fmt.Errorf("deleted acct-3: Lookup = %v", err)
			}
			return nil
		})
	}
	want := stateOf(t, rs[0])
	for i, r := range rs[1:] {
		eventually(t, fmt.Sprint("Router ", i+1, " equal to Router 0"), func() error {
			if diff := cmp.Diff(want, stateOf(t, r)); diff != "" {
				return errors.New(diff)
			}
			return nil
		})
	}

	// Sync: right after it returns, a Router has what was committed
	// before the call.
	if _, err := rs[0].Place(ctx, residency.PlaceRequest{AccountID: "synced", Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if err := r.Sync(ctx); err != nil {
			t.Fatalf("Router %d: Sync: %v", i, err)
		}
		if _, err := r.Lookup("synced"); err != nil {
			t.Errorf("Router %d after Sync: %v", i, err)
		}
	}
	if got := want.Statuses["linode-uk"]; got != provider.Draining {
		t.Errorf("linode-uk is %v, want draining everywhere", got)
	}
}

// TestRoutersPlaceOneAccount: two Routers placing one account at once give
// both callers the same placement when they ask for one region; when they
// ask for two, one wins and the other gets ErrConflict.
func TestRoutersPlaceOneAccount(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	a, b := routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil)
	for i := range 20 {
		for _, sameRegion := range []bool{true, false} {
			id := fmt.Sprintf("acct-%d-%v", i, sameRegion)
			reqB := residency.PlaceRequest{AccountID: id, Country: "DE"}
			if !sameRegion {
				reqB.Country = "US"
			}
			var pa, pb residency.Placement
			var ca, cb bool
			var ea, eb error
			var wg sync.WaitGroup
			start := make(chan struct{})
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				pa, ca, ea = a.Create(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
			}()
			go func() {
				defer wg.Done()
				<-start
				pb, cb, eb = b.Create(ctx, reqB)
			}()
			close(start)
			wg.Wait()
			if sameRegion {
				if ea != nil || eb != nil {
					t.Fatalf("%s: same region: errors %v, %v; want none", id, ea, eb)
				}
				if diff := cmp.Diff(pa, pb); diff != "" {
					t.Errorf("%s: two placements (-a +b):\n%s", id, diff)
				}
				if ca == cb {
					t.Errorf("%s: created %v and %v; want exactly one creation", id, ca, cb)
				}
				continue
			}
			switch {
			case ea == nil && errors.Is(eb, residency.ErrConflict):
				if pa.Region != region.EU {
					t.Errorf("%s: winner a placed in %v", id, pa.Region)
				}
			case eb == nil && errors.Is(ea, residency.ErrConflict):
				if pb.Region != region.US {
					t.Errorf("%s: winner b placed in %v", id, pb.Region)
				}
			default:
				t.Fatalf("%s: two regions: errors %v, %v; want one nil, one ErrConflict", id, ea, eb)
			}
		}
	}
	for _, r := range []*residency.Router{a, b} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(stateOf(t, a), stateOf(t, b)); diff != "" {
		t.Errorf("Routers differ (-a +b):\n%s", diff)
	}
}

// TestFence: right after CompleteMove (or Drain) returns on one Router,
// every other live Router answers accordingly: no Sync, no sleep. A Router
// closed cleanly holds nobody up.
func TestFence(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	mover := routertest.OnPostgres(t, dsn, nil)
	others := []*residency.Router{routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil)}
	// A Router that closes cleanly leaves: it holds no fence up (with the
	// default lease of 10 s, this test would otherwise wait for it).
	gone := routertest.OnPostgres(t, dsn, nil)
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		id := fmt.Sprint("acct-", i)
		p, err := mover.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
		if err != nil {
			t.Fatal(err)
		}
		to := "linode-eu"
		if p.DataCenter == to {
			to = "aws-eu-west-1"
		}
		m, err := mover.BeginMove(ctx, id, to)
		if err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		if _, err := mover.CompleteMove(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(started); d > 5*time.Second {
			t.Errorf("CompleteMove took %v: a closed Router held it up", d)
		}
		for j, r := range others {
			got, err := r.Lookup(id)
			if err != nil || got.DataCenter != to {
				t.Fatalf("Router %d right after CompleteMove: %s on %q, %v; want %s", j, id, got.DataCenter, err, to)
			}
		}
	}
	if err := mover.Drain(ctx, "linode-eu"); err != nil {
		t.Fatal(err)
	}
	for j, r := range others {
		if s, err := r.Status("linode-eu"); err != nil || s != provider.Draining {
			t.Errorf("Router %d right after Drain: linode-eu %v, %v; want draining", j, s, err)
		}
	}
}

// TestFenceAlone: right after Fence returns, every other live Router
// answers what was committed before the call (here Places, which do not
// wait for a fence themselves), although they only poll the log; a member
// that never applies anything holds Fence up until the caller's context
// ends (ErrNotFenced), and once it leaves, Fence returns.
func TestFenceAlone(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	writer := routertest.OnPostgres(t, dsn, nil)
	var others []*residency.Router
	for range 2 {
		others = append(others, routertest.OnPostgres(t, dsn, nil, postgres.WithPollOnly(), postgres.WithPollInterval(300*time.Millisecond)))
	}
	for round := range 3 {
		var ids []string
		for i := range 5 {
			id := fmt.Sprintf("acct-%d-%d", round, i)
			if _, err := writer.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"}); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := writer.Fence(ctx); err != nil {
			t.Fatal(err)
		}
		for j, r := range others {
			for _, id := range ids {
				if _, err := r.Lookup(id); err != nil {
					t.Fatalf("Router %d right after Fence: %s: %v", j, id, err)
				}
			}
		}
	}

	stuck, err := postgres.Open(ctx, dsn, postgres.WithLease(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	m, _, err := stuck.Join(ctx, "stuck", 0)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := writer.Fence(short); !errors.Is(err, residency.ErrNotFenced) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Fence held up by a member that applies nothing = %v; want ErrNotFenced wrapping the context's end", err)
	}
	if err := m.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if err := writer.Fence(ctx); err != nil {
		t.Errorf("Fence once the member left: %v", err)
	}

	// Closing the Router ends a Fence that waits, at once.
	if m, _, err = stuck.Join(ctx, "stuck again", 0); err != nil {
		t.Fatal(err)
	}
	defer m.Leave(ctx)
	fenced := make(chan error, 1)
	go func() { fenced <- writer.Fence(ctx) }()
	time.Sleep(100 * time.Millisecond) // let it wait (it returns ErrClosed either way)
	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-fenced:
		if !errors.Is(err, residency.ErrNotFenced) || !errors.Is(err, residency.ErrClosed) {
			t.Errorf("Fence ended by Close = %v; want ErrNotFenced and ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Fence still waits 5 s after Close")
		<-fenced
	}
	if err := writer.Fence(ctx); !errors.Is(err, residency.ErrClosed) {
		t.Errorf("Fence after Close = %v, want ErrClosed", err)
	}
}

// withUser returns dsn with its user changed.
func withUser(dsn, user string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			panic(err)
		}
		u.User = url.User(user)
		return u.String()
	}
	return dsn + " user=" + user
}

// role creates a login role for the test, owner of what it needs in dsn's
// database, and returns its name.
func role(t *testing.T, dsn string) string {
	var b [4]byte
	rand.Read(b[:])
	name := "domicile_role_" + hex.EncodeToString(b[:])
	admin := pgtest.AdminDSN(t)
	exec(t, admin, "CREATE ROLE "+name+" LOGIN SUPERUSER")
	t.Cleanup(func() {
		exec(t, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
		exec(t, dsn, "REASSIGN OWNED BY "+name+" TO CURRENT_USER")
		exec(t, admin, "DROP ROLE IF EXISTS "+name)
	})
	return name
}

// cut stops a role from reaching the server: it may no longer log in, and
// its connections are ended.
func cut(t *testing.T, name string) {
	admin := pgtest.AdminDSN(t)
	exec(t, admin, "ALTER ROLE "+name+" NOLOGIN")
	exec(t, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
}

// TestRouterCutOff: a Router that cannot reach the database answers
// ErrStale once its lease ends, never the old data center of a move fenced
// meanwhile, and catches up by itself once let back in.
func TestRouterCutOff(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const lease = 2 * time.Second
	main := routertest.OnPostgres(t, dsn, nil, postgres.WithLease(lease), postgres.WithPollInterval(100*time.Millisecond))
	name := role(t, dsn)
	cutoff := routertest.OnPostgres(t, withUser(dsn, name), nil, postgres.WithLease(lease), postgres.WithPollInterval(100*time.Millisecond))
	p, err := main.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cutoff.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	to := "linode-eu"
	if p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	m, err := main.BeginMove(ctx, "acme", to)
	if err != nil {
		t.Fatal(err)
	}

	cut(t, name)
	// Lookups answer from memory, then ErrStale; never the old data
	// center once the move is complete.
	var mu sync.Mutex
	completed := false
	stop := make(chan struct{})
	var bad []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			done := completed
			mu.Unlock()
			got, err := cutoff.Lookup("acme")
			if done && err == nil && got.DataCenter != to {
				bad = append(bad, got.DataCenter)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if _, err := main.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	completed = true
	mu.Unlock()
	eventually(t, "the cut-off Router says ErrStale", func() error {
		if _, err := cutoff.Lookup("acme"); !errors.Is(err, residency.ErrStale) {
			return fmt.Errorf("Lookup = %v", err)
		}
		return nil
	})
	// Writes fail by their deadline with a clear error; nothing is
	// half-applied.
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = cutoff.Place(wctx, residency.PlaceRequest{AccountID: "while-cut", Country: "DE"})
	cancel()
	if err == nil {
		t.Error("Place on the cut-off Router succeeded")
	}

	exec(t, pgtest.AdminDSN(t), "ALTER ROLE "+name+" LOGIN")
	eventually(t, "the Router catches up once let back in", func() error {
		got, err := cutoff.Lookup("acme")
		if err != nil {
			return err
		}
		if got.DataCenter != to {
			return fmt.Errorf("acme on %s", got.DataCenter)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("the cut-off Router answered the old data center %d times after the fenced move: %v", len(bad), bad[0])
	}
	if _, err := main.Lookup("while-cut"); err == nil {
		t.Error("a write that failed on the cut-off Router is visible")
	}
}

// TestRoutersSurviveRestart: after every connection to the database is
// terminated, as in a restart, the Routers reconnect by themselves and
// go on converging.
func TestRoutersSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	name := role(t, dsn)
	rdsn := withUser(dsn, name)
	a, b := routertest.OnPostgres(t, rdsn, nil), routertest.OnPostgres(t, rdsn, nil)
	if _, err := a.Place(ctx, residency.PlaceRequest{AccountID: "before", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	exec(t, pgtest.AdminDSN(t), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
	eventually(t, "a write after the restart", func() error {
		_, err := a.Place(ctx, residency.PlaceRequest{AccountID: "after", Country: "US"})
		return err
	})
	eventually(t, "the other Router sees it", func() error {
		_, err := b.Lookup("after")
		return err
	})
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stateOf(t, a), stateOf(t, b)); diff != "" {
		t.Errorf("Routers differ (-a +b):\n%s", diff)
	}
}

// TestManyWriters: a few seconds of many writers on several Routers; then
// every Router equals a freshly opened one, and Verify is clean.
func TestManyWriters(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	rs := []*residency.Router{routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil), routertest.OnPostgres(t, dsn, nil)}
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rs[i%len(rs)]
			for n := 0; time.Now().Before(deadline); n++ {
				// Accounts shared between writers, so that Routers
				// race on them.
				id := fmt.Sprint("acct-", n%40)
				p, err := r.Place(ctx, residency.PlaceRequest{AccountID: id, Country: "DE"})
				if err != nil {
					errs <- fmt.Errorf("Place %s: %w", id, err)
					return
				}
				if p.Moving() || i%3 != 0 {
					continue
				}
				to := "linode-eu"
				if p.DataCenter == to {
					to = "aws-eu-west-1"
				}
				m, err := r.BeginMove(ctx, id, to)
				if errors.Is(err, residency.ErrMoveInProgress) || errors.Is(err, residency.ErrConflict) {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("BeginMove %s: %w", id, err)
					return
				}
				if _, err := r.CompleteMove(ctx, m.ID); err != nil && !errors.Is(err, residency.ErrNotFound) && !errors.Is(err, residency.ErrConflict) {
					errs <- fmt.Errorf("CompleteMove %s: %w", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	fresh := routertest.OnPostgres(t, dsn, nil)
	want := stateOf(t, fresh)
	if len(want.Placements) != 40 {
		t.Errorf("%d accounts, want 40", len(want.Placements))
	}
	for i, r := range rs {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, stateOf(t, r)); diff != "" {
			t.Errorf("Router %d differs from a fresh one (-fresh +router):\n%s", i, diff)
		}
		if rep, err := r.Verify(ctx); err != nil || len(rep.Violations) != 0 {
			t.Errorf("Router %d: Verify = %+v, %v", i, rep.Violations, err)
		}
	}
}

// TestSkewedClock: a Router whose clock is an hour ahead writes times by
// its clock; the others apply them as written, and its lease, judged by
// the database's clock, runs as anyone's.
func TestSkewedClock(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	ahead := func() time.Time { return time.Now().Add(time.Hour) }
	skewed := routertest.OnPostgres(t, dsn, []residency.Option{residency.WithClock(ahead)}, postgres.WithLease(time.Second))
	other := routertest.OnPostgres(t, dsn, nil, postgres.WithLease(time.Second))
	p, err := skewed.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(p.Created); d < 50*time.Minute {
		t.Errorf("created %v ahead; want the skewed clock's time", d)
	}
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := other.Lookup("acme")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("other Router (-skewed +other):\n%s", diff)
	}
	// Past several leases, both still answer: renewals are judged by the
	// database's clock, not the Router's.
	time.Sleep(3 * time.Second)
	for _, r := range []*residency.Router{skewed, other} {
		if _, err := r.Lookup("acme"); err != nil {
			t.Errorf("Lookup after 3 leases: %v", err)
		}
	}
}

// TestRoutersOpenAtOnce: eight Routers opening an empty database at once
// all succeed, and then follow each other.
func TestRoutersOpenAtOnce(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	rs := make([]*residency.Router, 8)
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i := range rs {
		wg.Go(func() {
			s, err := postgres.Open(ctx, dsn)
			if err != nil {
				errs[i] = err
				return
			}
			if rs[i], errs[i] = residency.Open(ctx, residency.WithStore(s)); errs[i] != nil {
				return
			}
			t.Cleanup(func() { rs[i].Close() })
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Router %d: %v", i, err)
		}
	}
	if _, err := rs[0].Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Lookup("acme"); err != nil {
			t.Errorf("Router %d after Sync: %v", i, err)
		}
	}
}

// TestOpenBadConnectionString: a bad connection string is an error at
// once, before any Router exists.
func TestOpenBadConnectionString(t *testing.T) {
	for _, dsn := range []string{"postgres://app@db:notaport/x", "postgresql://%zz", "host=db port=zz"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := postgres.Open(ctx, dsn)
		cancel()
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Open(%q) = %v; want an error at once", dsn, err)
		}
	}
}

// TestPlaceDecidedBeforeDrain: a Router that has not yet applied another's
// drain decides a placement into the drained data center; the store
// refuses it, and the Router reads the statuses afresh and decides again,
// so that nothing is placed into a data center after its drain committed.
func TestPlaceDecidedBeforeDrain(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	// Polling once an hour and renewing every quarter of a minute: this
	// Router learns of others' changes only when a write of its own is
	// refused.
	r := routertest.OnPostgres(t, dsn, nil, postgres.WithPollOnly(), postgres.WithPollInterval(time.Hour), postgres.WithLease(time.Minute))
	for _, dc := range []string{"aws-eu-west-1", "websupport-eu"} {
		if err := r.Drain(ctx, dc); err != nil {
			t.Fatal(err)
		}
	}
	// Another writer, which no fence waits for, drains the last EU data
	// center.
	other := openStore(t, dsn)
	drain := residency.Change{DataCenter: &residency.DataCenterState{ID: "linode-eu", Status: provider.Draining, Changed: time.Now().UTC(), Version: 1}}
	if _, err := other.Append(ctx, []residency.Change{drain}, 2); err != nil {
		t.Fatal(err)
	}
	if s, err := r.Status("linode-eu"); err != nil || s != provider.Active {
		t.Fatalf("Status(linode-eu) = %v, %v before the Router learnt of the drain; want active", s, err)
	}
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if !errors.Is(err, residency.ErrNoDataCenter) {
		t.Fatalf("Place = %+v, %v; want ErrNoDataCenter: every EU data center is draining", p, err)
	}
	if s, err := r.Status("linode-eu"); err != nil || s != provider.Draining {
		t.Errorf("Status(linode-eu) = %v, %v after the refused write; want draining", s, err)
	}
	var found bool
	if err := other.LoadAccounts(ctx, []string{"acme"}, func(residency.StoredAccount) error { found = true; return nil }); err != nil || found {
		t.Errorf("the store holds acme (%v, %v); want nothing placed", found, err)
	}
	// Its own next status change follows the version it read.
	if err := r.Activate(ctx, "linode-eu"); err != nil {
		t.Fatal(err)
	}
	dcs, err := other.DataCenters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dcs {
		if d.ID == "linode-eu" && (d.Status != provider.Active || d.Version != 2) {
			t.Errorf("stored linode-eu: %+v; want active at version 2", d)
		}
	}
}

// outpacedStore is a PostgreSQL store whose Appends say they were decided
// on one status change more than the log holds: the database refuses each
// of them as decided on stale statuses, as it would every write of a
// Router that other writers keep outpacing with status changes.
type outpacedStore struct {
	*postgres.Store
	appends atomic.Int32
}

func (s *outpacedStore) Append(ctx context.Context, changes []residency.Change, statuses uint64) (uint64, error) {
	s.appends.Add(1)
	return s.Store.Append(ctx, changes, statuses+1)
}

// TestStatusConflictsRunOut: a write refused again and again for statuses
// that changed since it was decided is decided afresh a bounded number of
// times, then refused as a stale conflict that names its account, with
// nothing written.
func TestStatusConflictsRunOut(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	s := &outpacedStore{Store: openStore(t, dsn)}
	r, err := residency.Open(ctx, residency.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	if !errors.Is(err, residency.ErrConflict) || !errors.Is(err, residency.ErrStaleVersion) || !strings.Contains(err.Error(), `"acme"`) {
		t.Fatalf("Place = %+v, %v; want a stale ErrConflict naming acme", p, err)
	}
	if n := s.appends.Load(); n < 2 || n > 20 {
		t.Errorf("%d Appends; want the write decided again a few times, then given up", n)
	}
	if _, err := r.Lookup("acme"); !errors.Is(err, residency.ErrNotFound) {
		t.Errorf("Lookup(acme) = %v; want ErrNotFound", err)
	}
	var found bool
	if err := s.LoadAccounts(ctx, []string{"acme"}, func(residency.StoredAccount) error { found = true; return nil }); err != nil || found {
		t.Errorf("the store holds acme (%v, %v); want nothing placed", found, err)
	}
	// The Router still writes once its statuses are right.
	r2 := routertest.OnPostgres(t, dsn, nil)
	if _, err := r2.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
}
