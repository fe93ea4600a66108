package residency_test

// Randomized, model-based and differential tests of the Router: random
// sequences of operations on a small pool of accounts, data centers,
// references and sub-processors (so that collisions are frequent), run on
// a Router without a store, on a MemoryStore, on the file store and,
// when asked, on PostgreSQL. Every operation's result (its value, with the
// random move IDs named after the operation that began the move, and the
// sentinels its error matches) must be the same on every store; after
// every step so must the whole state, every account's trail, Verify's
// report and the audit log. A call that fails must change nothing.
// Reopening the durable stores, or copying them (NewMemoryStoreFrom), must
// give back the same state and log. Model checks ride along: versions
// count the trail, the read paths (Lookup, Accounts, Moves, PlanEvacuation,
// SubProcessors, MayAccess, the gauges) agree, backups follow their rules.
//
// Beside it: TestRandomConcurrent (goroutines on one file), TestRandomKill
// (SIGKILL of a child writing to a file or PostgreSQL), TestRandomShared-
// Postgres (three Routers on one database), TestRandomAckedOrNothing
// (contexts that end and Close at random moments), TestRandomFaultyStore
// and TestRandomFaultyConcurrent (a store that fails, loses replies,
// panics and hangs at random); TestRandomChaos in residency/postgres.
// The bugs they found are pinned by tests of their own
// (TestPlaceExistingAfterUnknownOutcome, TestCheckpointThroughClose,
// postgres' TestReadsAfterConnectionsTerminated).
//
// Environment:
//
//	DOMICILE_RANDOM_SEED=N     run seed N only (as printed by a failure)
//	DOMICILE_RANDOM_OPS=N      operations per seed
//	DOMICILE_RANDOM_SEEDS=N    how many seeds (from 1)
//	DOMICILE_RANDOM_POSTGRES=1 longer runs on PostgreSQL: as many seeds and
//	                           operations in TestRandomStoresPostgres as in
//	                           TestRandomStores, and every seed of
//	                           TestRandomAckedOrNothing
//	DOMICILE_RANDOM_CANCEL=1   run one call in thirty with a cancelled
//	                           context
//	DOMICILE_RANDOM_KILLS=N    rounds of TestRandomKill

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/internal/routertest"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	envRandomSeed     = "DOMICILE_RANDOM_SEED"
	envRandomOps      = "DOMICILE_RANDOM_OPS"
	envRandomSeeds    = "DOMICILE_RANDOM_SEEDS"
	envRandomPostgres = "DOMICILE_RANDOM_POSTGRES"
	envRandomChild    = "DOMICILE_RANDOM_CHILD"
	envRandomChildDSN = "DOMICILE_RANDOM_CHILD_DSN"
	envRandomCancel   = "DOMICILE_RANDOM_CANCEL"
)

func envInt(name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			panic(fmt.Sprintf("%s=%q: %v", name, s, err))
		}
		return n
	}
	return def
}

// seeds returns the seeds to run: the one of DOMICILE_RANDOM_SEED, or 1 to
// DOMICILE_RANDOM_SEEDS (def by default).
func seeds(def int) []uint64 {
	if s := os.Getenv(envRandomSeed); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			panic(err)
		}
		return []uint64{n}
	}
	var out []uint64
	for i := range envInt(envRandomSeeds, def) {
		out = append(out, uint64(i+1))
	}
	return out
}

// randomStart is the clock's start: before the announced data center and
// sub-processor of randomCatalog become effective.
var randomStart = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

// randomLater is when the announced entries of randomCatalog become
// effective.
var randomLater = randomStart.Add(4 * 24 * time.Hour)

// advance moves the clock by d; a clock set back stops at randomLater
// rather than go back over it: the accounts placed on the announced data
// center since would break the residency promise (data on a data center
// not yet effective), which Verify rightly reports.
func advance(clk *clock, d time.Duration) {
	now := clk.Now()
	if d < 0 && !now.Before(randomLater) && now.Add(d).Before(randomLater) {
		d = randomLater.Sub(now)
	}
	clk.Add(d)
}

// randomCatalog has every kind of data center the Router distinguishes:
// weighted, announced (effective four days after randomStart), offline and
// draining ones, a region (UK) with one data center, and sub-processors
// that need consent, serve one region, or are announced.
func randomCatalog(t testing.TB) *provider.Catalog {
	t.Helper()
	later := randomLater
	c, err := provider.NewCatalogFrom(provider.Contents{
		DataCenters: []provider.DataCenter{
			{ID: "linode-eu", Provider: provider.Linode, Region: region.EU, Weight: 2},
			{ID: "websupport-eu", Provider: provider.Websupport, Region: region.EU},
			{ID: "aws-eu-west-1", Provider: provider.AWS, Region: region.EU},
			{ID: "eu-later", Provider: provider.AWS, Region: region.EU, Effective: later},
			{ID: "linode-uk", Provider: provider.Linode, Region: region.UK},
			{ID: "linode-us", Provider: provider.Linode, Region: region.US},
			{ID: "aws-us-west-1", Provider: provider.AWS, Region: region.US, Status: provider.Offline},
			{ID: "linode-sg", Provider: provider.Linode, Region: region.APAC},
			{ID: "aws-ap-southeast-1", Provider: provider.AWS, Region: region.APAC, Status: provider.Draining},
		},
		SubProcessors: []provider.SubProcessor{
			{ID: "twilio", Name: "Twilio, Inc.", Kind: provider.ServiceProcessor},
			{ID: "support-247", Name: "Support", Kind: provider.Subcontractor, RequiresConsent: true},
			{ID: "gated-later", Name: "Support Later", Kind: provider.Subcontractor, RequiresConsent: true, Effective: later},
			{ID: "eu-desk", Name: "EU Desk", Kind: provider.ServiceProcessor, RequiresConsent: true, Regions: region.SetOf(region.EU)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The pools operations draw from. The first ones are valid; the last ones
// of each are bad input.
var (
	randomIDs       = []string{"a", "b", "c", "d", "Ωmega ü/%_'\"", strings.Repeat("ab", 127) + "c", "<&>\u2028\u2029\\\u00ad\ufeff"}
	randomBadIDs    = []string{"", strings.Repeat("x", 256), "bad\x01id", "\xff"}
	randomDCs       = []string{"linode-eu", "websupport-eu", "aws-eu-west-1", "eu-later", "linode-uk", "linode-us", "aws-us-west-1", "linode-sg", "aws-ap-southeast-1", "nowhere", ""}
	randomCountries = []string{"DE", "fr", "IRL", "GB", "US", "SG", "JP", "276", "BR", "ZZ", "", "EU"}
	randomRegions   = []region.Region{0, region.EU, region.UK, region.US, region.APAC, region.Region(9)}
	randomRefs      = []string{"T1", "T2", "T3", "Tü ✓", "<T&>\u2029", strings.Repeat("R", 255), "", "r\x00", strings.Repeat("R", 256)}
	randomSPs       = []string{"support-247", "gated-later", "eu-desk", "twilio", "aws", "linode", "nobody", ""}
	randomReasons   = []string{"left", "trial expired", "<b>&amp;\u2028", "", "bad\nreason"}
)

// rop is one random operation. Move is the label of a move (the index of
// the operation that began it), -1 for a move ID never issued. Expiry is
// relative to the clock at the time of the call (HasExpiry), or the year
// 10000 (FarExpiry).
type rop struct {
	Kind      string
	ID        string
	Country   string
	Region    region.Region
	DC        string
	Move      int
	Ref       string
	SP        string
	HasExpiry bool
	FarExpiry bool
	Expiry    time.Duration
	Reason    string
	Rows      []residency.ImportRow
	Tick      time.Duration
	// Cancelled runs the call with a context already cancelled.
	Cancelled bool
}

func (o rop) String() string {
	var b strings.Builder
	b.WriteString(o.Kind)
	add := func(k string, v any) { fmt.Fprintf(&b, " %s=%q", k, fmt.Sprint(v)) }
	switch o.Kind {
	case "place", "create":
		add("id", o.ID)
		add("country", o.Country)
		add("region", o.Region)
	case "begin":
		add("id", o.ID)
		add("to", o.DC)
	case "complete", "abort":
		add("move", o.Move)
	case "grant-transfer":
		add("id", o.ID)
		add("to", o.Region)
		add("ref", o.Ref)
	case "revoke-transfer", "revoke-access", "withdraw":
		add("id", o.ID)
		add("ref", o.Ref)
	case "grant-access", "object":
		add("id", o.ID)
		add("sp", o.SP)
		add("ref", o.Ref)
	case "drain", "activate", "plan", "status":
		add("dc", o.DC)
	case "delete":
		add("id", o.ID)
		add("reason", o.Reason)
	case "import":
		fmt.Fprintf(&b, " rows=%+v", o.Rows)
	case "tick":
		add("by", o.Tick)
	case "lookup", "subprocessors":
		add("id", o.ID)
	case "may-access":
		add("id", o.ID)
		add("sp", o.SP)
	}
	if o.HasExpiry {
		add("expires-in", o.Expiry)
	}
	if o.FarExpiry {
		add("expires", "year 10000")
	}
	if o.Cancelled {
		b.WriteString(" (cancelled context)")
	}
	return b.String()
}

// gen makes random operations on its pool of account IDs.
// anyOpenMove makes a complete or abort of a concurrent worker name,
// half the time, a move open on its Router, begun by any worker: me
// learns it under label.
func (me *rig) anyOpenMove(g *gen, label int, o *rop) {
	if o.Kind != "complete" && o.Kind != "abort" {
		return
	}
	var open []residency.Move
	for m := range me.r.Moves() {
		open = append(open, m)
	}
	if len(open) > 0 && g.rng.IntN(2) == 0 {
		me.learn(label, pick(g.rng, open))
		o.Move = label
	}
}

type gen struct {
	rng    *rand.Rand
	ids    []string
	dcOps  bool  // whether to drain and activate data centers
	cancel bool  // whether to cancel contexts
	begun  []int // labels of the moves begun so far
	n      int   // operations made so far: the next one's label
}

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

// id is mostly a valid ID of the pool, sometimes a bad one.
func (g *gen) id() string {
	if g.rng.IntN(25) == 0 {
		return pick(g.rng, randomBadIDs)
	}
	return pick(g.rng, g.ids)
}

func (g *gen) move() int {
	if len(g.begun) == 0 || g.rng.IntN(10) == 0 {
		return -1
	}
	// Mostly one of the last moves, which are more likely to be open.
	if g.rng.IntN(3) > 0 && len(g.begun) > 3 {
		return g.begun[len(g.begun)-1-g.rng.IntN(3)]
	}
	return pick(g.rng, g.begun)
}

func (g *gen) expiry(o *rop) {
	switch g.rng.IntN(8) {
	case 0, 1, 2, 3:
	case 4:
		o.FarExpiry = g.rng.IntN(3) == 0
		if !o.FarExpiry {
			o.HasExpiry, o.Expiry = true, -time.Duration(g.rng.IntN(120))*time.Minute
		}
	case 5:
		// Right at the clock, or a nanosecond after it.
		o.HasExpiry, o.Expiry = true, time.Duration(g.rng.IntN(2))
	default:
		o.HasExpiry, o.Expiry = true, time.Duration(1+g.rng.IntN(72*60))*time.Minute
	}
}

// next makes the next operation; reopen says whether "reopen" may be one.
// One in thirty runs with a cancelled context, when g.cancel.
func (g *gen) next(reopen bool) rop {
	defer func() { g.n++ }()
	o := g.op(reopen)
	o.Cancelled = g.cancel && g.rng.IntN(30) == 0
	return o
}

func (g *gen) op(reopen bool) rop {
	rng := g.rng
	for {
		switch w := rng.IntN(100); {
		case w < 16:
			o := rop{Kind: "place", ID: g.id(), Country: pick(rng, randomCountries)}
			if rng.IntN(3) == 0 {
				o.Region = pick(rng, randomRegions)
			}
			if rng.IntN(5) == 0 {
				o.Kind = "create"
			}
			return o
		case w < 30:
			return rop{Kind: "begin", ID: g.id(), DC: pick(rng, randomDCs)}
		case w < 38:
			return rop{Kind: "complete", Move: g.move()}
		case w < 44:
			return rop{Kind: "abort", Move: g.move()}
		case w < 50:
			o := rop{Kind: "grant-transfer", ID: g.id(), Region: pick(rng, randomRegions), Ref: pick(rng, randomRefs)}
			g.expiry(&o)
			return o
		case w < 53:
			return rop{Kind: "revoke-transfer", ID: g.id(), Ref: pick(rng, randomRefs)}
		case w < 57:
			if !g.dcOps {
				continue
			}
			return rop{Kind: "drain", DC: pick(rng, randomDCs)}
		case w < 61:
			if !g.dcOps {
				continue
			}
			return rop{Kind: "activate", DC: pick(rng, randomDCs)}
		case w < 67:
			o := rop{Kind: "grant-access", ID: g.id(), SP: pick(rng, randomSPs), Ref: pick(rng, randomRefs)}
			g.expiry(&o)
			return o
		case w < 70:
			return rop{Kind: "revoke-access", ID: g.id(), Ref: pick(rng, randomRefs)}
		case w < 74:
			return rop{Kind: "object", ID: g.id(), SP: pick(rng, randomSPs), Ref: pick(rng, randomRefs)}
		case w < 76:
			return rop{Kind: "withdraw", ID: g.id(), Ref: pick(rng, randomRefs)}
		case w < 81:
			return rop{Kind: "delete", ID: g.id(), Reason: pick(rng, randomReasons)}
		case w < 85:
			o := rop{Kind: "import"}
			for range 1 + rng.IntN(4) {
				row := residency.ImportRow{AccountID: g.id(), Country: pick(rng, randomCountries)}
				if rng.IntN(3) == 0 {
					row.Region = pick(rng, randomRegions)
				}
				if rng.IntN(2) == 0 {
					row.DataCenter = pick(rng, randomDCs)
				}
				o.Rows = append(o.Rows, row)
			}
			return o
		case w < 89:
			// Minutes, or nanoseconds, which every store must keep;
			// sometimes back (a clock set back).
			if rng.IntN(8) == 0 {
				return rop{Kind: "tick", Tick: -time.Duration(1+rng.IntN(48*60)) * time.Minute}
			}
			if rng.IntN(2) == 0 {
				return rop{Kind: "tick", Tick: time.Duration(1 + rng.IntN(999_999_999))}
			}
			return rop{Kind: "tick", Tick: time.Duration(rng.IntN(36*60)) * time.Minute}
		case w < 92:
			return rop{Kind: "lookup", ID: g.id()}
		case w < 94:
			return rop{Kind: "may-access", ID: g.id(), SP: pick(rng, randomSPs)}
		case w < 96:
			return rop{Kind: "subprocessors", ID: g.id()}
		case w < 98:
			return rop{Kind: "plan", DC: pick(rng, randomDCs)}
		default:
			if !reopen {
				continue
			}
			return rop{Kind: "reopen"}
		}
	}
}

// sentinels are the errors a result's error is classified by.
var sentinels = []struct {
	name string
	err  error
}{
	{"NotFound", residency.ErrNotFound},
	{"InvalidAccount", residency.ErrInvalidAccount},
	{"CrossRegion", residency.ErrCrossRegion},
	{"UnknownDataCenter", residency.ErrUnknownDataCenter},
	{"NoDataCenter", residency.ErrNoDataCenter},
	{"MoveInProgress", residency.ErrMoveInProgress},
	{"Conflict", residency.ErrConflict},
	{"StaleVersion", residency.ErrStaleVersion},
	{"NotFenced", residency.ErrNotFenced},
	{"InvalidTransfer", residency.ErrInvalidTransfer},
	{"InvalidReason", residency.ErrInvalidReason},
	{"NoAccess", residency.ErrNoAccess},
	{"NoConsent", residency.ErrNoConsent},
	{"Objected", residency.ErrObjected},
	{"NotEffective", residency.ErrNotEffective},
	{"InvalidConsent", residency.ErrInvalidConsent},
	{"InvalidObjection", residency.ErrInvalidObjection},
	{"Closed", residency.ErrClosed},
	{"StoreFailed", residency.ErrStoreFailed},
	{"Unavailable", residency.ErrUnavailable},
	{"InvalidChange", residency.ErrInvalidChange},
	{"NoLog", residency.ErrNoLog},
	{"Stale", residency.ErrStale},
	{"InvalidCountry", region.ErrInvalidCountry},
	{"NoRegion", region.ErrNoRegion},
	{"UnknownRegion", region.ErrUnknownRegion},
	{"UnknownSubProcessor", provider.ErrUnknownSubProcessor},
	{"Canceled", context.Canceled},
	{"DeadlineExceeded", context.DeadlineExceeded},
}

// classes names the sentinels err matches; "UNCLASSIFIED" when it matches
// none.
func classes(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			out = append(out, s.name)
		}
	}
	if out == nil {
		out = []string{"UNCLASSIFIED"}
	}
	return out
}

// storeFailed reports classes that say the store failed rather than that
// the request was refused: on a healthy store none should happen.
func storeFailed(classes []string) bool {
	return slices.ContainsFunc(classes, func(s string) bool {
		switch s {
		case "StoreFailed", "Unavailable", "InvalidChange", "Closed", "Stale":
			return true
		}
		return false
	})
}

// unexpected returns the report's violations but the one a caller can make
// on purpose: an open move to another region whose transfer agreement was
// revoked or ran out after BeginMove (documented: RevokeTransfer says
// such a move must be aborted, and Verify reports it until it is).
func unexpected(rep residency.Report) []residency.Finding {
	var out []residency.Finding
	for _, f := range rep.Violations {
		if strings.Contains(f.Problem, "without a live transfer agreement (its agreement") {
			continue
		}
		out = append(out, f)
	}
	return out
}

// outcome is an operation's result as compared between stores.
type outcome struct {
	Value  any
	Errors []string
	Text   string
}

// importOutcome is an ImportResult with its rows' errors classified.
type importOutcome struct {
	Imported, Existing int
	Refused            []refusedRow
}

type refusedRow struct {
	Row       int
	AccountID string
	Errors    []string
}

// rig is one Router under test, and how to reopen it.
type rig struct {
	name   string
	r      *residency.Router
	hasLog bool
	reopen func(t testing.TB) *residency.Router // nil: cannot reopen
	path   string                               // the file store's
	moves  map[int]string                       // label -> move ID
	labels map[string]string                    // move ID -> "MOVE<label>"
	kept   auditlog.Checkpoint                  // the log's last checked head
	opts   []residency.Option                   // the Router's, but its store
	source func() (residency.Store, error)      // opens the durable store anew
}

// checkCopy closes the rig's Router, copies its store with
// NewMemoryStoreFrom and checks that a Router on the copy holds the same
// state, trails and log (the same checkpoint, entry by entry).
func (g *rig) checkCopy(t testing.TB, ids []string) {
	t.Helper()
	ctx := context.Background()
	before := routertest.Of(t, g.r)
	trails := map[string][]residency.Event{}
	for _, id := range ids {
		trails[id], _ = g.r.History(ctx, id)
	}
	head, err := g.r.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries := logOf(t, g.r)
	if err := g.r.Close(); err != nil {
		t.Fatal(err)
	}
	src, err := g.source()
	if err != nil {
		t.Fatalf("%s: opening the store to copy: %v", g.name, err)
	}
	cp, err := residency.NewMemoryStoreFrom(ctx, src)
	src.Close()
	if err != nil {
		t.Fatalf("%s: NewMemoryStoreFrom: %v", g.name, err)
	}
	if g.r, err = residency.Open(ctx, append(slices.Clone(g.opts), residency.WithStore(cp))...); err != nil {
		t.Fatalf("%s: Open on the copy: %v", g.name, err)
	}
	if diff := cmp.Diff(before, routertest.Of(t, g.r)); diff != "" {
		t.Errorf("%s: the copy's state differs (-store +copy):\n%s", g.name, diff)
	}
	for _, id := range ids {
		h, _ := g.r.History(ctx, id)
		if diff := cmp.Diff(trails[id], h); diff != "" {
			t.Errorf("%s: History(%q) of the copy differs (-store +copy):\n%s", g.name, id, diff)
		}
	}
	if got, err := g.r.Checkpoint(ctx); err != nil || got != head {
		t.Errorf("%s: the copy's checkpoint is %v, %v; the store's %v", g.name, got, err, head)
	}
	if diff := cmp.Diff(stringsOf(entries), stringsOf(logOf(t, g.r))); diff != "" {
		t.Errorf("%s: the copy's log differs (-store +copy):\n%s", g.name, diff)
	}
}

func (g *rig) learn(label int, m residency.Move) {
	g.moves[label] = m.ID
	g.labels[m.ID] = fmt.Sprintf("MOVE%d", label)
}

// norm replaces the rig's move IDs in s by their labels.
func (g *rig) norm(s string) string {
	if !strings.Contains(s, "mv-") {
		return s
	}
	for id, label := range g.labels {
		s = strings.ReplaceAll(s, id, label)
	}
	return s
}

func (g *rig) normPlacement(p residency.Placement) residency.Placement {
	p.Move.ID = g.norm(p.Move.ID)
	return p
}

func (g *rig) normEvents(h []residency.Event) []residency.Event {
	h = slices.Clone(h)
	for i := range h {
		h[i].MoveID = g.norm(h[i].MoveID)
	}
	return h
}

func (g *rig) normState(s routertest.State) routertest.State {
	for i := range s.Placements {
		s.Placements[i] = g.normPlacement(s.Placements[i])
	}
	for i := range s.Moves {
		s.Moves[i].ID = g.norm(s.Moves[i].ID)
	}
	// Moves come in move ID order, and move IDs are random.
	slices.SortFunc(s.Moves, func(a, b residency.Move) int { return strings.Compare(a.ID, b.ID) })
	for id, h := range s.History {
		s.History[id] = g.normEvents(h)
	}
	return s
}

func (g *rig) moveID(label int) string {
	if label < 0 {
		return "mv-NEVERISSUED"
	}
	if id, ok := g.moves[label]; ok {
		return id
	}
	return "mv-NOTBEGUNHERE"
}

// do runs o on the rig and returns its outcome. Label is o's index.
func (g *rig) do(ctx context.Context, clk *clock, label int, o rop) outcome {
	r := g.r
	expiry := func() time.Time {
		switch {
		case o.FarExpiry:
			return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		case o.HasExpiry:
			return clk.Now().Add(o.Expiry)
		}
		return time.Time{}
	}
	if o.Cancelled {
		c, cancel := context.WithCancel(ctx)
		cancel()
		ctx = c
	}
	var v any
	var err error
	switch o.Kind {
	case "place":
		var p residency.Placement
		p, err = r.Place(ctx, residency.PlaceRequest{AccountID: o.ID, Country: o.Country, Region: o.Region})
		v = g.normPlacement(p)
	case "create":
		var p residency.Placement
		var created bool
		p, created, err = r.Create(ctx, residency.PlaceRequest{AccountID: o.ID, Country: o.Country, Region: o.Region})
		v = []any{g.normPlacement(p), created}
	case "begin":
		var m residency.Move
		m, err = r.BeginMove(ctx, o.ID, o.DC)
		if err == nil {
			g.learn(label, m)
		}
		m.ID = g.norm(m.ID)
		v = m
	case "complete":
		var p residency.Placement
		p, err = r.CompleteMove(ctx, g.moveID(o.Move))
		v = g.normPlacement(p)
	case "abort":
		var p residency.Placement
		p, err = r.AbortMove(ctx, g.moveID(o.Move))
		v = g.normPlacement(p)
	case "grant-transfer":
		err = r.GrantTransfer(ctx, residency.Transfer{AccountID: o.ID, To: o.Region, Reference: o.Ref, ExpiresAt: expiry()})
	case "revoke-transfer":
		err = r.RevokeTransfer(ctx, o.ID, o.Ref)
	case "drain":
		err = r.Drain(ctx, o.DC)
	case "activate":
		err = r.Activate(ctx, o.DC)
	case "grant-access":
		err = r.GrantAccess(ctx, residency.Consent{AccountID: o.ID, SubProcessor: o.SP, Reference: o.Ref, ExpiresAt: expiry()})
	case "revoke-access":
		err = r.RevokeAccess(ctx, o.ID, o.Ref)
	case "object":
		err = r.Object(ctx, residency.Objection{AccountID: o.ID, SubProcessor: o.SP, Reference: o.Ref})
	case "withdraw":
		err = r.WithdrawObjection(ctx, o.ID, o.Ref)
	case "delete":
		err = r.Delete(ctx, o.ID, o.Reason)
	case "import":
		var res residency.ImportResult
		res, err = r.Import(ctx, slices.Values(o.Rows))
		io := importOutcome{Imported: res.Imported, Existing: res.Existing}
		for _, re := range res.Refused {
			io.Refused = append(io.Refused, refusedRow{re.Row, re.AccountID, classes(re.Err)})
		}
		v = io
	case "lookup":
		var p residency.Placement
		p, err = r.Lookup(o.ID)
		v = g.normPlacement(p)
	case "may-access":
		err = r.MayAccess(o.ID, o.SP)
	case "subprocessors":
		var sps []provider.SubProcessor
		sps, err = r.SubProcessors(o.ID)
		var ids []string
		for _, s := range sps {
			ids = append(ids, s.ID)
		}
		v = ids
	case "plan":
		var p residency.EvacuationPlan
		p, err = r.PlanEvacuation(ctx, o.DC)
		var stranded []string
		for _, s := range p.Stranded {
			stranded = append(stranded, fmt.Sprint(s.AccountID, " ", g.norm(s.MoveID), " ", classes(s.Err)))
		}
		v = []any{p.DataCenter, p.Moves, stranded}
	default:
		panic("unknown op " + o.Kind)
	}
	out := outcome{Value: v, Errors: classes(err)}
	if err != nil {
		out.Text = g.norm(err.Error())
	}
	return out
}

// logOf reads the rig's whole audit log.
func logOf(t testing.TB, r *residency.Router) [][]byte {
	t.Helper()
	var out [][]byte
	err := r.LogEntries(context.Background(), 0, func(i int64, e []byte) error {
		if i != int64(len(out)) {
			return fmt.Errorf("entry %d after %d entries", i, len(out))
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("LogEntries: %v", err)
	}
	return out
}

// checkTrails checks the audit log of r against the trails and statuses
// it answers: every entry decodes, the account entries are, account by
// account and in order, exactly the events of History (the version of
// the entry's placement being its event's), every account placed has its
// trail in the log, and each data center's last status entry is its
// status. It also proves every entry is in the checkpoint's tree.
func checkTrails(t testing.TB, r *residency.Router, ids []string) {
	t.Helper()
	ctx := context.Background()
	entries := logOf(t, r)
	head, err := r.Checkpoint(ctx)
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if head.Size != int64(len(entries)) {
		t.Fatalf("checkpoint of size %d, %d entries", head.Size, len(entries))
	}
	trails := map[string][]residency.Event{}
	status := map[string]provider.Status{}
	for i, e := range entries {
		c, err := residency.DecodeEntry(e)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if c.DataCenter != nil {
			status[c.DataCenter.ID] = c.DataCenter.Status
			continue
		}
		if c.Event.Version != c.Placement.Version || c.Event.AccountID != c.Placement.AccountID {
			t.Errorf("entry %d: event %+v of placement %+v", i, c.Event, c.Placement)
		}
		trails[c.Event.AccountID] = append(trails[c.Event.AccountID], c.Event)
		proof, err := r.ProveEntry(ctx, int64(i), head.Size)
		if err != nil {
			t.Fatalf("ProveEntry(%d, %d): %v", i, head.Size, err)
		}
		if err := auditlog.CheckEntry(proof, head, int64(i), e); err != nil {
			t.Errorf("entry %d is not in the checkpoint's tree: %v", i, err)
		}
	}
	for _, id := range ids {
		h, err := r.History(ctx, id)
		if errors.Is(err, residency.ErrNotFound) && trails[id] == nil {
			continue
		}
		if err != nil {
			t.Fatalf("History(%q): %v", id, err)
		}
		if diff := cmp.Diff(trails[id], h); diff != "" {
			t.Errorf("History(%q) differs from its log entries (-log +History):\n%s", id, diff)
		}
	}
	for dc, st := range status {
		got, err := r.Status(dc)
		if err != nil {
			t.Fatalf("Status(%s): %v", dc, err)
		}
		if got != st {
			t.Errorf("Status(%s) = %s, its last log entry says %s", dc, got, st)
		}
	}
}

// checkReads checks that the Router's read paths agree with the state st
// (read with AccountsInRegion and Moves): Accounts of each data center,
// Lookup of each account, the open moves against the placements' moves,
// and each data center's evacuation plan against the statuses and
// regions.
func checkReads(t testing.TB, r *residency.Router, st routertest.State, at string) {
	t.Helper()
	ctx := context.Background()
	byDC := map[string][]residency.Placement{}
	var moving []residency.Move
	for _, p := range st.Placements {
		byDC[p.DataCenter] = append(byDC[p.DataCenter], p)
		if p.Moving() {
			moving = append(moving, p.Move)
		}
		if got, err := r.Lookup(p.AccountID); err != nil || !cmp.Equal(got, p) {
			t.Fatalf("%s: Lookup(%q) = %+v, %v; AccountsInRegion gives %+v", at, p.AccountID, got, err, p)
		}
	}
	// Backups: another data center of the home region, on another
	// provider where an active one is there.
	for _, p := range st.Placements {
		if p.Backup == "" {
			continue
		}
		b, ok := r.Catalog().DataCenter(p.Backup)
		if !ok || p.Backup == p.DataCenter || b.Region != p.Region {
			t.Fatalf("%s: %q lives on %s with backup %s (%+v)", at, p.AccountID, p.DataCenter, p.Backup, b)
		}
	}
	slices.SortFunc(moving, func(a, b residency.Move) int { return strings.Compare(a.ID, b.ID) })
	var open []residency.Move
	for m := range r.Moves() {
		open = append(open, m)
	}
	if diff := cmp.Diff(moving, open, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("%s: Moves differs from the placements' moves (-placements +Moves):\n%s", at, diff)
	}
	for _, d := range r.Catalog().All() {
		var got []residency.Placement
		for p := range r.Accounts(d.ID) {
			got = append(got, p)
		}
		want := byDC[d.ID]
		slices.SortFunc(want, func(a, b residency.Placement) int { return strings.Compare(a.AccountID, b.AccountID) })
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s: Accounts(%s) differs (-AccountsInRegion +Accounts):\n%s", at, d.ID, diff)
		}
		plan, err := r.PlanEvacuation(ctx, d.ID)
		if err != nil {
			t.Fatalf("%s: PlanEvacuation(%s): %v", at, d.ID, err)
		}
		planned := map[string]bool{}
		for _, m := range plan.Moves {
			planned[m.AccountID] = true
			p, err := r.Lookup(m.AccountID)
			to, ok := r.Catalog().DataCenter(m.To)
			status, _ := r.Status(m.To)
			if err != nil || p.DataCenter != d.ID || m.From != d.ID || !ok || to.Region != p.Region || m.To == d.ID ||
				status != provider.Active || p.Moving() {
				t.Fatalf("%s: PlanEvacuation(%s) plans %+v for %+v (%v), to %+v (%s)", at, d.ID, m, p, err, to, status)
			}
		}
		for _, s := range plan.Stranded {
			if planned[s.AccountID] || !errors.Is(s.Err, residency.ErrNoDataCenter) && !errors.Is(s.Err, residency.ErrMoveInProgress) {
				t.Fatalf("%s: PlanEvacuation(%s) strands %+v", at, d.ID, s)
			}
			if errors.Is(s.Err, residency.ErrNoDataCenter) {
				p, _ := r.Lookup(s.AccountID)
				for _, other := range r.Catalog().InRegion(p.Region) {
					if st, _ := r.Status(other.ID); st == provider.Active && other.ID != d.ID && other.EffectiveAt(time.Now()) && other.Effective.IsZero() {
						t.Fatalf("%s: PlanEvacuation(%s) strands %q (%v), but %s is active in %s", at, d.ID, s.AccountID, s.Err, other.ID, p.Region)
					}
				}
			}
		}
		// Every account on the data center is planned or stranded.
		for _, p := range byDC[d.ID] {
			if !planned[p.AccountID] && !slices.ContainsFunc(plan.Stranded, func(s residency.Stranded) bool { return s.AccountID == p.AccountID }) {
				t.Fatalf("%s: PlanEvacuation(%s) neither plans nor strands %q", at, d.ID, p.AccountID)
			}
		}
	}
}

// registries holds the metrics registry of each Router openMetered
// opened.
var registries sync.Map // *residency.Router -> *prometheus.Registry

// openMetered opens a Router with opts and a registry of its own for its
// metrics, which checkGauges reads.
func openMetered(t testing.TB, opts ...residency.Option) *residency.Router {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	r, err := residency.Open(context.Background(), append(opts, residency.WithRegisterer(reg))...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	registries.Store(r, reg)
	return r
}

// checkGauges checks the scrape-time gauges of a Router openMetered opened
// against what it holds: domicile_accounts of each data center against
// Accounts, domicile_moves_open against Moves.
func checkGauges(t testing.TB, r *residency.Router, at string) {
	t.Helper()
	v, ok := registries.Load(r)
	if !ok {
		return
	}
	routertest.CheckGauges(t, r, v.(*prometheus.Registry), at)
}

// checkNewPlacement checks a placement made just now: on an active,
// effective data center of its home region, with a backup that is another
// active, effective one, on another provider where the region has such a
// data center, and none only where it has no other.
func checkNewPlacement(t testing.TB, r *residency.Router, p residency.Placement, now time.Time, at string) {
	t.Helper()
	usable := func(id string) (provider.DataCenter, bool) {
		d, ok := r.Catalog().DataCenter(id)
		st, _ := r.Status(id)
		return d, ok && st == provider.Active && d.EffectiveAt(now) && d.Region == p.Region
	}
	dc, ok := usable(p.DataCenter)
	if !ok {
		t.Fatalf("%s: placed on %s (%+v), not an active effective data center of %s", at, p.DataCenter, dc, p.Region)
	}
	var others, otherProviders []string
	for _, d := range r.Catalog().InRegion(p.Region) {
		if _, ok := usable(d.ID); ok && d.ID != dc.ID {
			others = append(others, d.ID)
			if d.Provider != dc.Provider {
				otherProviders = append(otherProviders, d.ID)
			}
		}
	}
	switch {
	case p.Backup == "" && len(others) > 0:
		t.Fatalf("%s: placed on %s without a backup, though %v are active in %s", at, p.DataCenter, others, p.Region)
	case p.Backup != "" && !slices.Contains(others, p.Backup):
		t.Fatalf("%s: placed on %s with backup %s, not one of %v", at, p.DataCenter, p.Backup, others)
	case p.Backup != "" && len(otherProviders) > 0 && !slices.Contains(otherProviders, p.Backup):
		t.Fatalf("%s: placed on %s (%s) with backup %s of the same provider, though %v are of others", at, p.DataCenter, dc.Provider, p.Backup, otherProviders)
	}
}

// view is what a rig shows of its state, normalized, for comparison.
type view struct {
	State   routertest.State
	Lookups map[string]outcome
	Trails  map[string]outcome
	Report  residency.Report
	LogSize int64
}

func (g *rig) view(t testing.TB) view {
	t.Helper()
	ctx := context.Background()
	v := view{State: g.normState(routertest.Of(t, g.r)), Lookups: map[string]outcome{}, Trails: map[string]outcome{}}
	for _, id := range randomIDs {
		p, err := g.r.Lookup(id)
		v.Lookups[id] = outcome{Value: g.normPlacement(p), Errors: classes(err)}
		h, err := g.r.History(ctx, id)
		v.Trails[id] = outcome{Value: g.normEvents(h), Errors: classes(err)}
	}
	rep, err := g.r.Verify(ctx)
	if err != nil {
		t.Fatalf("%s: Verify: %v", g.name, err)
	}
	for _, f := range [][]residency.Finding{rep.Violations, rep.Warnings} {
		for i := range f {
			f[i].Problem = g.norm(f[i].Problem)
		}
	}
	v.Report = rep
	if g.hasLog {
		head, err := g.r.Checkpoint(ctx)
		if err != nil {
			t.Fatalf("%s: Checkpoint: %v", g.name, err)
		}
		v.LogSize = head.Size
	}
	return v
}

// randomRun runs one seed's operations on the rigs, comparing them after
// every step.
type randomRun struct {
	t      *testing.T
	seed   uint64
	clk    *clock
	rigs   []*rig
	ops    []string // the operations done, for the failure report
	logged []int    // per rig: log entries compared so far
}

func (run *randomRun) compareLogs() {
	t := run.t
	var ref [][]byte
	refRig := -1
	for i, g := range run.rigs {
		if !g.hasLog {
			continue
		}
		var entries [][]byte
		err := g.r.LogEntries(context.Background(), int64(run.logged[i]), func(_ int64, e []byte) error {
			entries = append(entries, []byte(g.norm(string(e))))
			return nil
		})
		if err != nil {
			t.Fatalf("%s: LogEntries: %v", g.name, err)
		}
		if refRig < 0 {
			ref, refRig = entries, i
		} else if diff := cmp.Diff(stringsOf(ref), stringsOf(entries)); diff != "" {
			t.Fatalf("log entries from %d differ between %s and %s (-%s +%s):\n%s", run.logged[i], run.rigs[refRig].name, g.name, run.rigs[refRig].name, g.name, diff)
		}
		run.logged[i] += len(entries)
	}
}

func stringsOf(b [][]byte) []string {
	var s []string
	for _, e := range b {
		s = append(s, string(e))
	}
	return s
}

// reopen closes and reopens every rig that can be, and checks that each
// gives back exactly what it held: state (move IDs and all), trails,
// Verify, and the log, entry by entry, with the same checkpoint.
func (run *randomRun) reopen() {
	t := run.t
	ctx := context.Background()
	for _, g := range run.rigs {
		if g.reopen == nil {
			continue
		}
		before := routertest.Of(t, g.r)
		trails := map[string][]residency.Event{}
		for _, id := range randomIDs {
			trails[id], _ = g.r.History(ctx, id)
		}
		head, err := g.r.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		entries := logOf(t, g.r)
		if err := g.r.Close(); err != nil {
			t.Fatalf("%s: Close: %v", g.name, err)
		}
		if g.path != "" {
			if got := checkFileLog(t, g.path, g.kept); got != head {
				t.Fatalf("%s: the file's log hashes to %v, the Router's checkpoint was %v", g.name, got, head)
			}
		}
		g.kept = head
		g.r = g.reopen(t)
		if diff := cmp.Diff(before, routertest.Of(t, g.r)); diff != "" {
			t.Fatalf("%s: the state changed on reopening (-before +after):\n%s", g.name, diff)
		}
		for _, id := range randomIDs {
			h, _ := g.r.History(ctx, id)
			if diff := cmp.Diff(trails[id], h); diff != "" {
				t.Fatalf("%s: History(%s) changed on reopening (-before +after):\n%s", g.name, id, diff)
			}
		}
		if got, err := g.r.Checkpoint(ctx); err != nil || got != head {
			t.Fatalf("%s: checkpoint after reopening %v, %v; before %v", g.name, got, err, head)
		}
		if diff := cmp.Diff(stringsOf(entries), stringsOf(logOf(t, g.r))); diff != "" {
			t.Fatalf("%s: the log changed on reopening (-before +after):\n%s", g.name, diff)
		}
		if rep, err := g.r.Verify(ctx); err != nil || len(unexpected(rep)) > 0 {
			t.Fatalf("%s: Verify after reopening: %+v, %v", g.name, rep.Violations, err)
		}
	}
}

// step runs one operation on every rig and compares.
func (run *randomRun) step(label int, o rop) {
	t := run.t
	ctx := context.Background()
	run.ops = append(run.ops, fmt.Sprintf("%4d %v", label, o))
	switch o.Kind {
	case "tick":
		advance(run.clk, o.Tick)
		return
	case "reopen":
		run.reopen()
		return
	}
	before := run.rigs[0].view(t)
	var ref outcome
	for i, g := range run.rigs {
		got := g.do(ctx, run.clk, label, o)
		if i == 0 {
			ref = got
			run.ops[len(run.ops)-1] += fmt.Sprintf(" -> %v %v", got.Errors, got.Text)
			continue
		}
		if diff := cmp.Diff(ref, got); diff != "" {
			t.Fatalf("op %d %v: %s and %s differ (-%s +%s):\n%s", label, o, run.rigs[0].name, g.name, run.rigs[0].name, g.name, diff)
		}
	}
	if slices.Contains(ref.Errors, "UNCLASSIFIED") {
		t.Fatalf("op %d %v: an error that matches no sentinel: %s", label, o, ref.Text)
	}
	for _, g := range run.rigs {
		if rep, err := g.r.Verify(ctx); err != nil || len(unexpected(rep)) > 0 {
			t.Fatalf("op %d %v: %s: Verify: %+v, %v", label, o, g.name, rep.Violations, err)
		}
	}
	after := run.rigs[0].view(t)
	checkReads(t, run.rigs[0].r, routertest.Of(t, run.rigs[0].r), fmt.Sprintf("op %d %v", label, o))
	if v, ok := ref.Value.([]any); ok && o.Kind == "create" && ref.Errors == nil && v[1] == true {
		checkNewPlacement(t, run.rigs[0].r, v[0].(residency.Placement), run.clk.Now(), fmt.Sprintf("op %d %v", label, o))
	}
	for _, g := range run.rigs {
		checkGauges(t, g.r, fmt.Sprintf("op %d %v: %s", label, o, g.name))
	}
	// SubProcessors is MayAccess as a list.
	r0 := run.rigs[0].r
	for _, id := range randomIDs {
		list, err := r0.SubProcessors(id)
		if err != nil {
			if errors.Is(err, residency.ErrNotFound) {
				continue
			}
			t.Fatalf("op %d %v: SubProcessors(%q): %v", label, o, id, err)
		}
		var listed, allowed []string
		for _, sp := range list {
			listed = append(listed, sp.ID)
		}
		for _, sp := range r0.Catalog().SubProcessors() {
			if err := r0.MayAccess(id, sp.ID); err == nil {
				allowed = append(allowed, sp.ID)
			} else if !errors.Is(err, residency.ErrNoAccess) {
				t.Fatalf("op %d %v: MayAccess(%q, %s): %v", label, o, id, sp.ID, err)
			}
		}
		slices.Sort(listed)
		slices.Sort(allowed)
		if diff := cmp.Diff(allowed, listed); diff != "" {
			t.Fatalf("op %d %v: SubProcessors(%q) differs from what MayAccess allows (-MayAccess +SubProcessors):\n%s", label, o, id, diff)
		}
	}
	// Model: versions count the events of the trail, one by one, and the
	// placement is at its trail's last version.
	for id, tr := range after.Trails {
		h, _ := tr.Value.([]residency.Event)
		for i, e := range h {
			if e.Version != uint64(i+1) {
				t.Fatalf("op %d %v: History(%q)[%d] has version %d", label, o, id, i, e.Version)
			}
		}
		if p, ok := after.Lookups[id].Value.(residency.Placement); ok && after.Lookups[id].Errors == nil && (len(h) == 0 || p.Version != h[len(h)-1].Version) {
			t.Fatalf("op %d %v: %q is at version %d, its trail %+v", label, o, id, p.Version, h)
		}
	}
	for _, g := range run.rigs[1:] {
		if diff := cmp.Diff(after, g.view(t), cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".LogSize" }, cmp.Ignore())); diff != "" {
			t.Fatalf("op %d %v: the state of %s and %s differs (-%s +%s):\n%s\n%+v", label, o, run.rigs[0].name, g.name, run.rigs[0].name, g.name, diff, after.Report)
		}
	}
	var sizes []int64
	for _, g := range run.rigs {
		if g.hasLog {
			sizes = append(sizes, g.view(t).LogSize)
		}
	}
	for _, n := range sizes[1:] {
		if n != sizes[0] {
			t.Fatalf("op %d %v: log sizes differ: %v (%v)", label, o, sizes, run.rigNames())
		}
	}
	run.compareLogs()
	if ref.Errors != nil && !slices.Contains(ref.Errors, "NotFenced") {
		if storeFailed(ref.Errors) {
			t.Fatalf("op %d %v: the store failed: %s", label, o, ref.Text)
		}
		// A refused call changes nothing (Verify's time aside).
		before.Report.At, after.Report.At = time.Time{}, time.Time{}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Fatalf("op %d %v failed (%s) but changed the state (-before +after):\n%s", label, o, ref.Text, diff)
		}
	}
}

func (run *randomRun) rigNames() []string {
	var s []string
	for _, g := range run.rigs {
		s = append(s, g.name)
	}
	return s
}

// newRigs opens the Routers of one run: without a store, on a
// MemoryStore, on a file and, given a dsn, on PostgreSQL.
func newRigs(t *testing.T, now func() time.Time, dsn string) []*rig {
	ctx := context.Background()
	cat := randomCatalog(t)
	opts := []residency.Option{residency.WithCatalog(cat), residency.WithClock(now)}
	mk := func(name string, hasLog bool, open func(t testing.TB) *residency.Router, canReopen bool) *rig {
		g := &rig{name: name, hasLog: hasLog, moves: map[int]string{}, labels: map[string]string{}}
		g.r = open(t)
		if canReopen {
			g.reopen = open
		}
		t.Cleanup(func() { g.r.Close() })
		return g
	}
	openWith := func(extra ...residency.Option) func(t testing.TB) *residency.Router {
		return func(t testing.TB) *residency.Router {
			return openMetered(t, append(slices.Clone(opts), extra...)...)
		}
	}
	rigs := []*rig{mk("nostore", false, openWith(), false)}
	ms := residency.NewMemoryStore()
	first := true
	rigs = append(rigs, mk("memstore", true, func(t testing.TB) *residency.Router {
		s := ms
		if !first {
			s = ms.Reopen()
		}
		first = false
		return openWith(residency.WithStore(s))(t)
	}, true))
	path := filepath.Join(t.TempDir(), "random.db")
	fr := mk("file", true, openWith(residency.WithPath(path)), true)
	fr.path = path
	fr.source = func() (residency.Store, error) { return residency.OpenFileStore(ctx, path) }
	rigs = append(rigs, fr)
	if dsn != "" {
		pr := mk("postgres", true, func(t testing.TB) *residency.Router {
			s, err := postgres.Open(ctx, dsn)
			if err != nil {
				t.Fatalf("postgres.Open: %v", err)
			}
			return openWith(residency.WithStore(s))(t)
		}, true)
		pr.source = func() (residency.Store, error) { return postgres.Open(ctx, dsn) }
		rigs = append(rigs, pr)
	}
	for _, g := range rigs {
		g.opts = opts
	}
	return rigs
}

// runRandom runs seed's n operations on fresh rigs.
func runRandom(t *testing.T, seed uint64, n int, dsn string) {
	clk := &clock{now: randomStart}
	// Odd seeds run on a clock that is not in UTC: the Router must give
	// its stores UTC times all the same.
	now := clk.Now
	if seed%2 == 1 {
		zone := time.FixedZone("UTC+5:30", 5*3600+1800)
		now = func() time.Time { return clk.Now().In(zone) }
	}
	run := &randomRun{t: t, seed: seed, clk: clk, rigs: newRigs(t, now, dsn)}
	run.logged = make([]int, len(run.rigs))
	defer func() {
		if t.Failed() {
			t.Logf("seed %d (rerun with %s=%d), rigs %v, operations:\n%s", seed, envRandomSeed, seed, run.rigNames(), strings.Join(run.ops, "\n"))
		}
	}()
	g := &gen{rng: rand.New(rand.NewPCG(seed, 0x5eed)), ids: randomIDs, dcOps: true, cancel: os.Getenv(envRandomCancel) == "1"}
	for range n {
		label := g.n
		o := g.next(true)
		run.step(label, o)
		if o.Kind == "begin" {
			if _, ok := run.rigs[0].moves[label]; ok {
				g.begun = append(g.begun, label)
			}
		}
	}
	run.reopen()
	for _, g := range run.rigs {
		if g.source != nil {
			g.checkCopy(t, randomIDs)
		}
		if g.hasLog {
			checkTrails(t, g.r, randomIDs)
		}
	}
}

// TestRandomStores runs random operations on a Router without a store, on
// a MemoryStore and on the file store, and compares every result and the
// whole state after every step, and after reopening.
func TestRandomStores(t *testing.T) {
	ops := envInt(envRandomOps, 200)
	n := 2
	if testing.Short() {
		n = 1
	}
	for _, seed := range seeds(n) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runRandom(t, seed, ops, "")
		})
	}
}

// TestRandomStoresPostgres is TestRandomStores with PostgreSQL beside the
// others: a short run by default (one seed, 80 operations), as long as
// TestRandomStores's with DOMICILE_RANDOM_POSTGRES=1.
func TestRandomStoresPostgres(t *testing.T) {
	ops, n := envInt(envRandomOps, 80), 1
	if os.Getenv(envRandomPostgres) == "1" {
		ops, n = envInt(envRandomOps, 200), 2
	}
	for _, seed := range seeds(n) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runRandom(t, seed, ops, pgtest.Database(t))
		})
	}
}

// TestRandomConcurrent runs random operations from several goroutines on
// one Router on a file, on an overlapping pool of accounts, under -race
// where asked. Every error must match a sentinel and say the request was
// refused, not that the store failed; then Verify must be clean, the log
// must match the trails, and a Router reopened on the file must hold the
// same state and log.
func TestRandomConcurrent(t *testing.T) {
	ctx := context.Background()
	goroutines, ops := 6, envInt(envRandomOps, 150)
	if testing.Short() {
		ops /= 3
	}
	for _, seed := range seeds(2) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			clk := &clock{now: randomStart}
			path := filepath.Join(t.TempDir(), "concurrent.db")
			opts := []residency.Option{residency.WithCatalog(randomCatalog(t)), residency.WithClock(clk.Now), residency.WithPath(path)}
			r := openMetered(t, opts...)
			defer r.Close()
			var mu sync.Mutex
			var done []string
			var wg sync.WaitGroup
			for w := range goroutines {
				wg.Go(func() {
					g := &gen{rng: rand.New(rand.NewPCG(seed, uint64(w))), ids: randomIDs, dcOps: w < 2}
					me := &rig{name: fmt.Sprint("g", w), r: r, moves: map[int]string{}, labels: map[string]string{}}
					for range ops {
						label := g.n
						o := g.next(false)
						me.anyOpenMove(g, label, &o)
						if o.Kind == "tick" {
							advance(clk, o.Tick)
							continue
						}
						got := me.do(ctx, clk, label, o)
						mu.Lock()
						done = append(done, fmt.Sprintf("g%d %4d %v -> %v %s", w, label, o, got.Errors, got.Text))
						mu.Unlock()
						if slices.Contains(got.Errors, "UNCLASSIFIED") || storeFailed(got.Errors) {
							t.Errorf("g%d op %d %v: %s %v", w, label, o, got.Text, got.Errors)
						}
						if o.Kind == "begin" && got.Errors == nil {
							g.begun = append(g.begun, label)
						}
					}
				})
			}
			wg.Wait()
			defer func() {
				if t.Failed() {
					t.Logf("seed %d, operations as they returned:\n%s", seed, strings.Join(done, "\n"))
				}
			}()
			if rep, err := r.Verify(ctx); err != nil || len(unexpected(rep)) > 0 {
				t.Fatalf("Verify: %+v, %v", rep.Violations, err)
			}
			checkTrails(t, r, randomIDs)
			checkGauges(t, r, "after the goroutines")
			before := routertest.Of(t, r)
			head, err := r.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			entries := logOf(t, r)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if got := checkFileLog(t, path, auditlog.Checkpoint{}); got != head {
				t.Fatalf("the file's log hashes to %v, the Router's checkpoint was %v", got, head)
			}
			r2, err := residency.Open(ctx, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			if diff := cmp.Diff(before, routertest.Of(t, r2)); diff != "" {
				t.Fatalf("state after reopening (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(stringsOf(entries), stringsOf(logOf(t, r2))); diff != "" {
				t.Fatalf("log after reopening (-before +after):\n%s", diff)
			}
			if rep, err := r2.Verify(ctx); err != nil || len(unexpected(rep)) > 0 {
				t.Fatalf("Verify after reopening: %+v, %v", rep.Violations, err)
			}
		})
	}
}

// TestRandomKill runs random operations in a child process (this test
// binary again, envRandomChild set) on a file store, from three goroutines
// (the first also drains and activates data centers), and kills it with
// SIGKILL at a random moment. The child prints "ack ID VERSION KIND" for
// the last event of each account an acknowledged write touched, and
// "dc ID STATUS" for each acknowledged status change. After the kill the
// file must open, Verify clean, its log check against the checkpoint of
// the round before, the log match the trails, and every acknowledged
// event be on its account's trail.
func TestRandomKill(t *testing.T) {
	if spec := os.Getenv(envRandomChild); spec != "" {
		randomChild(spec)
		os.Exit(0)
	}
	rounds := envInt("DOMICILE_RANDOM_KILLS", 4)
	if testing.Short() {
		rounds = 2
	}
	for _, seed := range seeds(1) {
		for _, store := range []string{"file", "postgres"} {
			t.Run(fmt.Sprintf("%s/seed=%d", store, seed), func(t *testing.T) {
				n := rounds
				if store == "postgres" && os.Getenv("DOMICILE_RANDOM_KILLS") == "" {
					n = min(n, 2) // each round on PostgreSQL takes a second or two
				}
				randomKill(t, store, seed, n)
			})
		}
	}
}

// killLease is the lease of the Routers of TestRandomKill on PostgreSQL:
// short, so that a killed child holds up the fences of the next Router
// only briefly.
const killLease = time.Second

func randomKill(t *testing.T, store string, seed uint64, rounds int) {
	path, dsn := filepath.Join(t.TempDir(), "kill.db"), ""
	if store == "postgres" {
		dsn = pgtest.Database(t)
	}
	rng := rand.New(rand.NewPCG(seed, 0xdead))
	var kept auditlog.Checkpoint
	type ack struct {
		version uint64
		kind    string
	}
	acked := map[string][]ack{}
	for round := range rounds {
		got := killedChild(t, "^TestRandomKill$", time.Duration(20+rng.IntN(300))*time.Millisecond, 5,
			fmt.Sprintf("%s=%s,%d,%d", envRandomChild, path, seed, round), envRandomChildDSN+"="+dsn)
		t.Logf("round %d: killed after %d lines", round, len(got))
		dcs := map[string]string{}
		for _, line := range got {
			f := strings.Fields(line)
			var id, kind string
			var v uint64
			switch {
			case len(f) >= 4 && f[0] == "ack":
				if _, err := fmt.Sscanf(line, "ack %q %d %s", &id, &v, &kind); err != nil {
					t.Fatalf("round %d: child said %q: %v", round, line, err)
				}
				acked[id] = append(acked[id], ack{v, kind})
			case len(f) == 3 && f[0] == "dc":
				dcs[f[1]] = f[2]
			case len(f) >= 1 && f[0] == "try":
			default:
				t.Fatalf("round %d: child said %q", round, line)
			}
		}
		// The status change in flight, if any, may have been
		// committed: the child's last "try" line.
		inflight := ""
		for _, line := range got {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "try" {
				inflight = f[2]
			}
		}
		ctx := context.Background()
		// The child's clock: a day later each round.
		now := func() time.Time { return randomStart.Add(time.Duration(round) * 24 * time.Hour) }
		r, err := openKilled(ctx, path, dsn, residency.WithCatalog(randomCatalog(t)), residency.WithClock(now))
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		if rep, err := r.Verify(ctx); err != nil || len(unexpected(rep)) > 0 {
			t.Fatalf("round %d: Verify: %+v, %v", round, rep.Violations, err)
		}
		var ids []string
		for id, acks := range acked {
			ids = append(ids, id)
			h, err := r.History(ctx, id)
			if err != nil {
				t.Fatalf("round %d: History(%s) of an acknowledged change: %v", round, id, err)
			}
			for _, a := range acks {
				if a.version == 0 || int(a.version) > len(h) || h[a.version-1].Version != a.version || string(h[a.version-1].Kind) != a.kind {
					t.Errorf("round %d: %s: acknowledged event %d %s missing from the trail %+v", round, id, a.version, a.kind, h)
				}
			}
		}
		for dc, st := range dcs {
			s, err := r.Status(dc)
			if err != nil {
				t.Fatal(err)
			}
			if string(s) != st && dc != inflight {
				t.Errorf("round %d: status of %s is %s, the child's last acknowledged change said %s", round, dc, s, st)
			}
		}
		slices.Sort(ids)
		checkTrails(t, r, ids)
		head, err := r.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if kept.Size > 0 {
			proof, err := r.ProveExtension(ctx, kept.Size, head.Size)
			if err != nil {
				t.Fatalf("round %d: ProveExtension(%d, %d): %v", round, kept.Size, head.Size, err)
			}
			if err := auditlog.CheckExtension(proof, kept, head); err != nil {
				t.Errorf("round %d: the log of %v does not extend the one of the round before, %v: %v", round, head, kept, err)
			}
		}
		if dsn != "" {
			// A fenced change waits for the killed child at most
			// its lease.
			if st, _ := r.Status("linode-uk"); st != provider.Active {
				if err := r.Activate(ctx, "linode-uk"); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			err := r.Drain(ctx, "linode-uk")
			took := time.Since(start)
			if err != nil || took > killLease+5*time.Second {
				t.Errorf("round %d: Drain after the kill: %v, after %v", round, err, took)
			}
			t.Logf("round %d: Drain after the kill took %v", round, took)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if dsn == "" {
			if got := checkFileLog(t, path, kept); got != head {
				t.Fatalf("round %d: the file's log hashes to %v, the Router's checkpoint was %v", round, got, head)
			}
		}
		kept = head
		if t.Failed() {
			t.Logf("round %d: the child said:\n%s", round, strings.Join(got, "\n"))
			return
		}
	}
}

// openKilled opens the Router of TestRandomKill: on the file at path, or
// on PostgreSQL at dsn when set.
func openKilled(ctx context.Context, path, dsn string, opts ...residency.Option) (*residency.Router, error) {
	if dsn == "" {
		return residency.Open(ctx, append(opts, residency.WithPath(path))...)
	}
	s, err := postgres.Open(ctx, dsn, postgres.WithLease(killLease))
	if err != nil {
		return nil, err
	}
	return residency.Open(ctx, append(opts, residency.WithStore(s))...)
}

// randomChild is TestRandomKill's child: spec is "path,seed,round", and
// envRandomChildDSN names the database when it is not empty.
func randomChild(spec string) {
	f := strings.Split(spec, ",")
	seed, _ := strconv.ParseUint(f[1], 10, 64)
	round, _ := strconv.ParseUint(f[2], 10, 64)
	ctx := context.Background()
	clk := &clock{now: randomStart.Add(time.Duration(round) * 24 * time.Hour)}
	r, err := openKilled(ctx, f[0], os.Getenv(envRandomChildDSN), residency.WithCatalog(randomCatalog(&testing.T{})), residency.WithClock(clk.Now))
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(2)
	}
	say := childSay()
	say("ready")
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			var ids []string
			for _, id := range randomIDs {
				ids = append(ids, fmt.Sprintf("g%d-%s", w, id))
			}
			g := &gen{rng: rand.New(rand.NewPCG(seed, round*16+uint64(w))), ids: ids, dcOps: w == 0}
			me := &rig{r: r, moves: map[int]string{}, labels: map[string]string{}}
			for {
				label := g.n
				o := g.next(false)
				if o.Kind == "tick" {
					continue // the clock is shared; moving it from one goroutine only would race the others' expiries
				}
				if o.Kind == "drain" || o.Kind == "activate" {
					say("try %s %s", o.Kind, o.DC)
				}
				got := me.do(ctx, clk, label, o)
				if got.Errors != nil {
					continue
				}
				switch o.Kind {
				case "begin":
					g.begun = append(g.begun, label)
				case "drain", "activate":
					st, _ := r.Status(o.DC)
					say("dc %s %s", o.DC, st)
					continue
				case "lookup", "may-access", "subprocessors", "plan":
					continue
				}
				// The account's last event, acknowledged by now.
				touched := []string{o.ID}
				if o.Kind == "import" {
					touched = nil
					for _, row := range o.Rows {
						touched = append(touched, row.AccountID)
					}
				}
				if o.Kind == "complete" || o.Kind == "abort" {
					touched = []string{me.norm(got.Value.(residency.Placement).AccountID)}
				}
				for _, id := range touched {
					h, err := r.History(ctx, id)
					if err != nil || len(h) == 0 {
						continue
					}
					e := h[len(h)-1]
					say("ack %q %d %s", id, e.Version, e.Kind)
				}
			}
		})
	}
	wg.Wait()
}

// TestRandomSharedPostgres runs random operations from two goroutines on
// each of three Routers sharing one PostgreSQL database, on an overlapping
// pool of accounts. Every error must match a sentinel and none say that
// the store failed; a CompleteMove that returns must be seen by every other
// Router (the fence: each answers the account at the move's version or
// later); after Sync every Router, and one opened afresh, must hold the same
// state; Verify must be clean and the log match the trails.
func TestRandomSharedPostgres(t *testing.T) {
	ctx := context.Background()
	ops := envInt(envRandomOps, 40)
	for _, seed := range seeds(1) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			dsn := pgtest.Database(t)
			clk := &clock{now: randomStart}
			ropts := []residency.Option{residency.WithCatalog(randomCatalog(t)), residency.WithClock(clk.Now)}
			var routers []*residency.Router
			metered := func() *residency.Router {
				reg := prometheus.NewPedanticRegistry()
				r := routertest.OnPostgres(t, dsn, append(slices.Clone(ropts), residency.WithRegisterer(reg)))
				registries.Store(r, reg)
				return r
			}
			for range 3 {
				routers = append(routers, metered())
			}
			var mu sync.Mutex
			var done []string
			defer func() {
				if t.Failed() {
					t.Logf("seed %d, operations as they returned:\n%s", seed, strings.Join(done, "\n"))
				}
			}()
			var wg sync.WaitGroup
			for w := range 2 * len(routers) {
				r := routers[w%len(routers)]
				wg.Go(func() {
					g := &gen{rng: rand.New(rand.NewPCG(seed, uint64(w))), ids: randomIDs, dcOps: w < 2}
					me := &rig{name: fmt.Sprint("g", w), r: r, moves: map[int]string{}, labels: map[string]string{}}
					for range ops {
						label := g.n
						o := g.next(false)
						me.anyOpenMove(g, label, &o)
						if o.Kind == "tick" {
							continue // one clock for all: moving it would race the others' expiries
						}
						got := me.do(ctx, clk, label, o)
						mu.Lock()
						done = append(done, fmt.Sprintf("r%d g%d %4d %v -> %v %s", w%len(routers), w, label, o, got.Errors, got.Text))
						mu.Unlock()
						if slices.Contains(got.Errors, "UNCLASSIFIED") || storeFailed(got.Errors) || slices.Contains(got.Errors, "StaleVersion") {
							t.Errorf("r%d g%d op %d %v: %s %v", w%len(routers), w, label, o, got.Text, got.Errors)
						}
						if o.Kind == "begin" && got.Errors == nil {
							g.begun = append(g.begun, label)
						}
						if o.Kind == "complete" && got.Errors == nil {
							p := got.Value.(residency.Placement)
							for j, other := range routers {
								q, err := other.Lookup(p.AccountID)
								if err == nil && q.Version < p.Version || err != nil && !errors.Is(err, residency.ErrNotFound) {
									t.Errorf("r%d g%d op %d %v returned %+v, but Router %d answers %+v, %v", w%len(routers), w, label, o, p, j, q, err)
								}
							}
						}
					}
				})
			}
			wg.Wait()
			var ids []string
			ids = append(ids, randomIDs...)
			want := routertest.Of(t, routers[0])
			fresh := metered()
			for i, r := range append(routers, fresh) {
				if err := r.Sync(ctx); err != nil {
					t.Fatalf("Router %d: Sync: %v", i, err)
				}
				checkGauges(t, r, fmt.Sprint("Router ", i))
				if i == 0 {
					want = routertest.Of(t, r)
				}
				if diff := cmp.Diff(want, routertest.Of(t, r)); diff != "" {
					t.Errorf("Router %d after Sync differs from Router 0 (-0 +%d):\n%s", i, i, diff)
				}
				if rep, err := r.Verify(ctx); err != nil || len(unexpected(rep)) > 0 {
					t.Errorf("Router %d: Verify: %+v, %v", i, rep.Violations, err)
				}
			}
			checkTrails(t, fresh, ids)
		})
	}
}

// TestRandomAckedOrNothing runs writes from several goroutines with
// contexts that end at random moments, and closes the Router at a random
// moment meanwhile, on the file store and on a MemoryStore. Each write has
// an effect of its own (a new account, or an agreement, consent or
// objection under a reference of its own), so that the state after
// reopening tells which were applied: every write that succeeded must be
// there, and none that failed (a context's error and ErrClosed change
// nothing); no error may say the store failed.
func TestRandomAckedOrNothing(t *testing.T) {
	for i, seed := range seeds(3) {
		kinds := []string{"file", "memstore"}
		if i == 0 || os.Getenv(envRandomPostgres) == "1" {
			kinds = append(kinds, "postgres") // one seed unless asked for more
		}
		for _, kind := range kinds {
			t.Run(fmt.Sprintf("%s/seed=%d", kind, seed), func(t *testing.T) {
				randomAckedOrNothing(t, seed, kind)
			})
		}
	}
}

func randomAckedOrNothing(t *testing.T, seed uint64, kind string) {
	ctx := context.Background()
	clk := &clock{now: randomStart}
	var reopen func() *residency.Router
	opts := []residency.Option{residency.WithCatalog(randomCatalog(t)), residency.WithClock(clk.Now)}
	switch kind {
	case "file":
		path := filepath.Join(t.TempDir(), "acked.db")
		reopen = func() *residency.Router {
			r, err := residency.Open(ctx, append(opts, residency.WithPath(path))...)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
	case "postgres":
		dsn := pgtest.Database(t)
		reopen = func() *residency.Router {
			s, err := postgres.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			r, err := residency.Open(ctx, append(opts, residency.WithStore(s))...)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
	default:
		ms := residency.NewMemoryStore()
		reopen = func() *residency.Router {
			r, err := residency.Open(ctx, append(opts, residency.WithStore(ms.Reopen()))...)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	r := reopen()
	rng := rand.New(rand.NewPCG(seed, 0xc105e))
	closeAfter := time.Duration(5+rng.IntN(60)) * time.Millisecond
	type write struct {
		what, id, ref string
		err           error
	}
	var mu sync.Mutex
	var writes []write
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			var mine []string // accounts placed by this goroutine
			for i := 0; ; i++ {
				c, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(3000))*time.Microsecond)
				wr := write{id: fmt.Sprintf("g%d-%d", w, i)}
				if len(mine) == 0 || rng.IntN(3) == 0 {
					wr.what = "place"
					_, wr.err = r.Place(c, residency.PlaceRequest{AccountID: wr.id, Country: pick(rng, []string{"DE", "US", "SG", "GB"})})
					if wr.err == nil {
						mine = append(mine, wr.id)
					}
				} else {
					wr.id, wr.ref = pick(rng, mine), fmt.Sprintf("ref-%d-%d", w, i)
					switch rng.IntN(3) {
					case 0:
						wr.what = "object"
						wr.err = r.Object(c, residency.Objection{AccountID: wr.id, SubProcessor: "twilio", Reference: wr.ref})
					case 1:
						wr.what = "consent"
						wr.err = r.GrantAccess(c, residency.Consent{AccountID: wr.id, SubProcessor: "support-247", Reference: wr.ref})
					default:
						wr.what = "agreement"
						p, err := r.Lookup(wr.id)
						if err != nil {
							wr.err = err
							break
						}
						to := region.EU
						if p.Region == region.EU {
							to = region.US
						}
						wr.err = r.GrantTransfer(c, residency.Transfer{AccountID: wr.id, To: to, Reference: wr.ref})
					}
				}
				cancel()
				mu.Lock()
				writes = append(writes, wr)
				mu.Unlock()
				if errors.Is(wr.err, residency.ErrClosed) {
					return
				}
			}
		})
	}
	// A reader beside them, through Close: its calls either answer or
	// fail with ErrClosed.
	wg.Go(func() {
		for i := 0; ; i++ {
			id := fmt.Sprintf("g%d-%d", i%6, i/6)
			var errs []error
			_, err := r.Lookup(id)
			errs = append(errs, err)
			_, err = r.History(ctx, id)
			errs = append(errs, err)
			errs = append(errs, r.MayAccess(id, "twilio"))
			_, err = r.Verify(ctx)
			errs = append(errs, err)
			_, err = r.PlanEvacuation(ctx, "linode-eu")
			errs = append(errs, err)
			errs = append(errs, r.Sync(ctx), r.Fence(ctx))
			_, err = r.SubProcessors(id)
			errs = append(errs, err)
			_, err = r.Agreements(id)
			errs = append(errs, err)
			for range r.Accounts("linode-eu") {
			}
			for range r.Moves() {
			}
			_, err = r.Checkpoint(ctx)
			errs = append(errs, err)
			closed := false
			for _, err := range errs {
				switch {
				case err == nil, errors.Is(err, residency.ErrNotFound), errors.Is(err, residency.ErrNoAccess):
				case errors.Is(err, residency.ErrClosed):
					closed = true
				default:
					t.Errorf("a read through Close: %v", err)
				}
			}
			if closed {
				return
			}
		}
	})
	time.Sleep(closeAfter)
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	r = reopen()
	defer r.Close()
	ok, failed, unknown := 0, 0, 0
	for _, wr := range writes {
		var present bool
		switch wr.what {
		case "place":
			_, err := r.History(ctx, wr.id)
			present = err == nil
		case "object":
			os, _ := r.Objections(wr.id)
			present = slices.ContainsFunc(os, func(o residency.ObjectionRecord) bool { return o.Reference == wr.ref })
		case "consent":
			cs, _ := r.Consents(wr.id)
			present = slices.ContainsFunc(cs, func(c residency.ConsentRecord) bool { return c.Reference == wr.ref })
		case "agreement":
			as, _ := r.Agreements(wr.id)
			present = slices.ContainsFunc(as, func(a residency.Agreement) bool { return a.Reference == wr.ref })
		}
		switch {
		case wr.err == nil:
			ok++
			if !present {
				t.Errorf("%s %s %s succeeded, but is not in the store", wr.what, wr.id, wr.ref)
			}
		case errors.Is(wr.err, residency.ErrUnavailable) && errors.Is(wr.err, context.DeadlineExceeded):
			// Its context ended while its batch was being committed:
			// either outcome is right.
			unknown++
		case storeFailed(classes(wr.err)) && !errors.Is(wr.err, residency.ErrClosed) || slices.Contains(classes(wr.err), "UNCLASSIFIED"):
			t.Errorf("%s %s %s: %v %v", wr.what, wr.id, wr.ref, wr.err, classes(wr.err))
		default:
			failed++
			if present {
				t.Errorf("%s %s %s failed (%v) but is in the store", wr.what, wr.id, wr.ref, wr.err)
			}
		}
	}
	if rep, err := r.Verify(ctx); err != nil || len(unexpected(rep)) > 0 {
		t.Errorf("Verify: %+v, %v", rep.Violations, err)
	}
	t.Logf("%d writes succeeded, %d failed, %d of unknown outcome", ok, failed, unknown)
}

// readOnly reports whether operations of kind only read.
func readOnly(kind string) bool {
	switch kind {
	case "lookup", "may-access", "subprocessors", "plan":
		return true
	}
	return false
}

// faultyStore is a MemoryStore that fails at random: an Apply that fails
// before applying anything, one that fails after applying (the outcome a
// lost COMMIT reply gives), and reads back (LoadAccounts, DataCenters) that
// fail, each with the probabilities of faults.
type faultyStore struct {
	*residency.MemoryStore
	mu     sync.Mutex
	rng    *rand.Rand
	faults bool
	hangs  bool // Apply may also hang until its context ends
}

// promptFaultyStore is a faultyStore that says it returns by its context's
// deadline (a PromptStore), as it does: its hangs end with the write
// timeout.
type promptFaultyStore struct{ *faultyStore }

func (promptFaultyStore) ReturnsPromptly() {}

func (s *faultyStore) roll(p int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults && s.rng.IntN(100) < p
}

func (s *faultyStore) Apply(ctx context.Context, cs []residency.Change) error {
	if s.hangs && s.roll(8) {
		// Hang until the write timeout, having applied the changes or not.
		applied := s.roll(50)
		if applied {
			if err := s.MemoryStore.Apply(ctx, cs); err != nil {
				return err
			}
		}
		<-ctx.Done()
		return ctx.Err()
	}
	switch {
	case s.roll(3):
		// A stale write, as a shared store refuses one: nothing applied.
		c := &residency.ConflictError{Stale: true}
		if len(cs) > 0 {
			c.AccountID, c.Version = cs[0].Placement.AccountID, cs[0].Placement.Version-1
			if d := cs[0].DataCenter; d != nil {
				c.AccountID, c.DataCenter, c.Version = "", d.ID, d.Version-1
			}
		}
		return c
	case s.roll(2):
		panic("injected: Apply panics before applying")
	case s.roll(2):
		if err := s.MemoryStore.Apply(ctx, cs); err != nil {
			return err
		}
		panic("injected: Apply panics after applying")
	case s.roll(12):
		return errors.New("injected: the write failed")
	case s.roll(12):
		if err := s.MemoryStore.Apply(ctx, cs); err != nil {
			return err
		}
		return errors.New("injected: the reply was lost")
	}
	return s.MemoryStore.Apply(ctx, cs)
}

func (s *faultyStore) LoadAccounts(ctx context.Context, ids []string, fn func(residency.StoredAccount) error) error {
	if s.roll(25) {
		return errors.New("injected: reading back failed")
	}
	return s.MemoryStore.LoadAccounts(ctx, ids, fn)
}

func (s *faultyStore) DataCenters(ctx context.Context) ([]residency.DataCenterState, error) {
	if s.roll(25) {
		return nil, errors.New("injected: reading the statuses back failed")
	}
	return s.MemoryStore.DataCenters(ctx)
}

// faultyRouter opens a Router with the random catalog and clock on a
// faultyStore of seed, whose faults start once it is open; when prompt,
// the store is a PromptStore whose Apply also hangs until the write
// timeout (20 ms), having applied or not. opts are the options without
// the store, for a Router opened afresh on what the store holds.
func faultyRouter(t *testing.T, seed uint64, prompt bool) (r *residency.Router, fs *faultyStore, clk *clock, opts []residency.Option) {
	t.Helper()
	clk = &clock{now: randomStart}
	opts = []residency.Option{residency.WithCatalog(randomCatalog(t)), residency.WithClock(clk.Now)}
	fs = &faultyStore{MemoryStore: residency.NewMemoryStore(), rng: rand.New(rand.NewPCG(seed, 0xfa17))}
	var store residency.Store = fs
	wopts := opts
	if prompt {
		fs.hangs = true
		store = promptFaultyStore{fs}
		wopts = append(slices.Clone(opts), residency.WithWriteTimeout(20*time.Millisecond))
	}
	r = openMetered(t, append(wopts, residency.WithStore(store))...)
	t.Cleanup(func() { r.Close() })
	fs.mu.Lock()
	fs.faults = true
	fs.mu.Unlock()
	return r, fs, clk, opts
}

// TestRandomFaultyStore runs random operations on a Router whose store
// fails at random (faultyStore). The store holds the truth: after every
// operation that did not end in ErrUnavailable (whose outcome is unknown,
// and after which the Router answers from the state before), the Router
// must show exactly what a Router opened afresh on the store shows; an
// operation that failed with ErrStoreFailed, or was refused, must have
// changed nothing; and the log must match the trails.
func TestRandomFaultyStore(t *testing.T) {
	ctx := context.Background()
	ops := envInt(envRandomOps, 200)
	for _, seed := range seeds(2) {
		for _, prompt := range []bool{false, true} {
			t.Run(fmt.Sprintf("prompt=%v/seed=%d", prompt, seed), func(t *testing.T) {
				r, fs, clk, opts := faultyRouter(t, seed, prompt)
				g := &rig{name: "faulty", r: r, hasLog: true, moves: map[int]string{}, labels: map[string]string{}}
				truth := func() routertest.State {
					t.Helper()
					r2, err := residency.Open(ctx, append(opts, residency.WithStore(fs.MemoryStore.Reopen()))...)
					if err != nil {
						t.Fatalf("opening the store afresh: %v", err)
					}
					defer r2.Close()
					return routertest.Of(t, r2)
				}
				var done []string
				defer func() {
					if t.Failed() {
						t.Logf("seed %d, operations:\n%s", seed, strings.Join(done, "\n"))
					}
				}()
				gen := &gen{rng: rand.New(rand.NewPCG(seed, 0x5eed)), ids: randomIDs, dcOps: true}
				unknown := false // a write's outcome is unknown (ErrUnavailable)
				for range ops {
					label := gen.n
					o := gen.next(false)
					if o.Kind == "tick" {
						advance(clk, o.Tick)
						done = append(done, fmt.Sprintf("%4d %v", label, o))
						continue
					}
					before := routertest.Of(t, r)
					got := g.do(ctx, clk, label, o)
					done = append(done, fmt.Sprintf("%4d %v -> %v %s", label, o, got.Errors, got.Text))
					if o.Kind == "begin" && got.Errors == nil {
						gen.begun = append(gen.begun, label)
					}
					if slices.Contains(got.Errors, "UNCLASSIFIED") {
						t.Fatalf("op %d %v: an error that matches no sentinel: %s", label, o, got.Text)
					}
					if slices.Contains(got.Errors, "Unavailable") {
						unknown = true
						continue
					}
					if unknown && got.Errors == nil && !readOnly(o.Kind) {
						unknown = false // a write succeeded: the Router has read back
					}
					if unknown {
						continue
					}
					after := routertest.Of(t, r)
					if got.Errors != nil {
						if diff := cmp.Diff(before, after); diff != "" {
							t.Fatalf("op %d %v failed (%s) but changed the state (-before +after):\n%s", label, o, got.Text, diff)
						}
					}
					if diff := cmp.Diff(truth(), after); diff != "" {
						t.Fatalf("op %d %v (%s): the Router's state differs from the store's (-store +Router):\n%s", label, o, got.Text, diff)
					}
					checkGauges(t, r, fmt.Sprintf("op %d %v", label, o))
				}
				fs.mu.Lock()
				fs.faults = false
				fs.mu.Unlock()
				// One write that succeeds makes the Router read back what it
				// did not know.
				for i := 0; ; i++ {
					r.Activate(ctx, "linode-uk") // may fail while the Router reads back
					if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("heal-", i), Country: "GB"}); err == nil {
						break
					} else if i > 3 {
						t.Fatalf("writes still fail on a healed store: %v", err)
					}
				}
				if diff := cmp.Diff(truth(), routertest.Of(t, r)); diff != "" {
					t.Fatalf("after healing, the Router's state differs from the store's (-store +Router):\n%s", diff)
				}
				if rep, err := r.Verify(ctx); err != nil || len(unexpected(rep)) > 0 {
					t.Fatalf("Verify: %+v, %v", rep.Violations, err)
				}
				checkGauges(t, r, "after healing")
				checkTrails(t, r, randomIDs)
			})
		}
	}
}

// TestRandomFaultyConcurrent runs random operations from several
// goroutines on a Router whose store fails at random (faultyStore, prompt
// and hanging or not), so that failures hit batches of several writers.
// No error may match no sentinel; once the store is healed and one write
// has succeeded, the Router must show exactly what the store holds, Verify
// must be clean and the log match the trails.
func TestRandomFaultyConcurrent(t *testing.T) {
	ctx := context.Background()
	ops := envInt(envRandomOps, 100)
	for _, seed := range seeds(2) {
		for _, prompt := range []bool{false, true} {
			t.Run(fmt.Sprintf("prompt=%v/seed=%d", prompt, seed), func(t *testing.T) {
				r, fs, clk, opts := faultyRouter(t, seed, prompt)
				var mu sync.Mutex
				var done []string
				defer func() {
					if t.Failed() {
						t.Logf("seed %d, operations as they returned:\n%s", seed, strings.Join(done, "\n"))
					}
				}()
				var wg sync.WaitGroup
				for w := range 4 {
					wg.Go(func() {
						g := &gen{rng: rand.New(rand.NewPCG(seed, uint64(w))), ids: randomIDs, dcOps: w < 2}
						me := &rig{name: fmt.Sprint("g", w), r: r, moves: map[int]string{}, labels: map[string]string{}}
						for range ops {
							label := g.n
							o := g.next(false)
							me.anyOpenMove(g, label, &o)
							if o.Kind == "tick" {
								continue
							}
							got := me.do(ctx, clk, label, o)
							mu.Lock()
							done = append(done, fmt.Sprintf("g%d %4d %v -> %v %s", w, label, o, got.Errors, got.Text))
							mu.Unlock()
							if slices.Contains(got.Errors, "UNCLASSIFIED") || slices.Contains(got.Errors, "InvalidChange") {
								t.Errorf("g%d op %d %v: %s %v", w, label, o, got.Text, got.Errors)
							}
							if o.Kind == "begin" && got.Errors == nil {
								g.begun = append(g.begun, label)
							}
						}
					})
				}
				wg.Wait()
				fs.mu.Lock()
				fs.faults = false
				fs.mu.Unlock()
				for i := 0; ; i++ {
					r.Activate(ctx, "linode-uk") // may fail while the Router reads back
					if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: fmt.Sprint("heal-", i), Country: "GB"}); err == nil {
						break
					} else if i > 3 {
						t.Fatalf("writes still fail on a healed store: %v", err)
					}
				}
				r2, err := residency.Open(ctx, append(opts, residency.WithStore(fs.MemoryStore.Reopen()))...)
				if err != nil {
					t.Fatalf("opening the store afresh: %v", err)
				}
				defer r2.Close()
				if diff := cmp.Diff(routertest.Of(t, r2), routertest.Of(t, r)); diff != "" {
					t.Fatalf("after healing, the Router's state differs from the store's (-store +Router):\n%s", diff)
				}
				if rep, err := r.Verify(ctx); err != nil || len(unexpected(rep)) > 0 {
					t.Fatalf("Verify: %+v, %v", rep.Violations, err)
				}
				checkGauges(t, r, "after healing")
				checkTrails(t, r, randomIDs)
			})
		}
	}
}
