package residency

import (
	"errors"
	"fmt"
	"time"

	"github.com/domicile-go/domicile/region"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Router's Prometheus metrics. A nil *metrics (no
// registerer) records nothing. Label values are fixed sets (regions, data
// centers, outcomes, reasons) resolved at Open, never account IDs, so no
// label is built on a call.
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	placements map[string]prometheus.Counter    // by data center
	moves      map[[2]string]prometheus.Counter // by outcome and scope
	refusals   map[string]prometheus.Counter    // by reason
	transfers  map[string]prometheus.Counter    // by action
	consents   map[string]prometheus.Counter    // by action
	objections map[string]prometheus.Counter    // by action
	deletions  prometheus.Counter
	checks     [len(accessResults)]prometheus.Counter // by accessResult
	// storeErrors counts the follow goroutine's failed calls to a shared
	// store, by storeOp; nil entries when the store is not shared.
	storeErrors [len(storeOps)]prometheus.Counter
	// writeErrors counts writes that failed for the store, by
	// writeErrors' labels.
	writeErrors [len(writeErrorKinds)]prometheus.Counter
	// The fences' waits on a shared store; nil when it is not shared.
	fencesWaiting prometheus.Gauge
	fences        [2]prometheus.Counter // fenced, not_fenced
	fenceWaits    prometheus.Observer
}

// writeErrorKinds are the error label values of domicile_write_errors_total,
// in the order writeFailed matches them.
var writeErrorKinds = [...]string{"stale", "store_failed", "unavailable"}

var (
	moveOutcomes   = []string{"begun", "completed", "aborted"}
	moveScopes     = []string{"in_region", "cross_region"}
	transferEvents = []string{"granted", "revoked"}
	consentEvents  = []string{"granted", "revoked"}
	objectEvents   = []string{"raised", "withdrawn"}
)

// accessResult is the answer of an access check, for the metrics.
type accessResult int

const (
	accessAllowed accessResult = iota
	accessRefused              // ErrNoAccess only: not a host of its data centers, region not served
	accessNotEffective
	accessObjected
	accessNoConsent
	accessNotFound
	accessUnknown // unknown sub-processor
)

// accessResults are the label values of the accessResult values, in order.
var accessResults = [...]string{"allowed", "refused", "not_effective", "objected", "no_consent", "not_found", "unknown_subprocessor"}

func newMetrics(reg prometheus.Registerer, r *Router) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	placements := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domicile_placements_total",
		Help: "Accounts placed, by home region, data center and provider.",
	}, []string{"region", "datacenter", "provider"})
	moves := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domicile_moves_total",
		Help: "Account moves by outcome (begun, completed, aborted) and scope (in_region, cross_region).",
	}, []string{"outcome", "scope"})
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domicile_refusals_total",
		Help: "Calls refused, by reason.",
	}, []string{"reason"})
	transfers := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domicile_transfer_agreements_total",
		Help: "Transfer agreements granted and revoked.",
	}, []string{"action"})
	consents := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domicile_consents_total",
		Help: "Consents to consent-gated sub-processors granted and revoked (deletions included).",
	}, []string{"action"})
	objections := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domicile_objections_total",
		Help: "Objections to sub-processors raised and withdrawn (deletions included).",
	}, []string{"action"})
	deletions := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "domicile_deletions_total",
		Help: "Accounts deleted.",
	})
	writeErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domicile_write_errors_total",
		Help: "Writes that failed for the store, not for their input: stale (ErrStale: the lease on a shared store ran out), store_failed (ErrStoreFailed: the store refused the change), unavailable (ErrUnavailable: the store out of reach or too slow; the outcome was unknown when the call returned).",
	}, []string{"error"})
	checks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domicile_access_checks_total",
		Help: "Access checks of sub-processors (MayAccess), by result.",
	}, []string{"result"})
	m := &metrics{
		reg:        reg,
		collectors: []prometheus.Collector{placements, moves, refusals, transfers, consents, objections, deletions, checks, writeErrors, stateCollector{r}},
		consents:   map[string]prometheus.Counter{},
		objections: map[string]prometheus.Counter{},
		deletions:  deletions,
		placements: map[string]prometheus.Counter{},
		moves:      map[[2]string]prometheus.Counter{},
		refusals:   map[string]prometheus.Counter{},
		transfers:  map[string]prometheus.Counter{},
	}
	for id, d := range r.dataCenters {
		m.placements[id] = placements.WithLabelValues(d.Region.String(), id, string(d.Provider))
	}
	for _, o := range moveOutcomes {
		for _, s := range moveScopes {
			m.moves[[2]string{o, s}] = moves.WithLabelValues(o, s)
		}
	}
	for _, reason := range allRefusalReasons() {
		m.refusals[reason] = refusals.WithLabelValues(reason)
	}
	for _, a := range transferEvents {
		m.transfers[a] = transfers.WithLabelValues(a)
	}
	for _, a := range consentEvents {
		m.consents[a] = consents.WithLabelValues(a)
	}
	for _, a := range objectEvents {
		m.objections[a] = objections.WithLabelValues(a)
	}
	for i, res := range accessResults {
		m.checks[i] = checks.WithLabelValues(res)
	}
	for i, e := range writeErrorKinds {
		m.writeErrors[i] = writeErrors.WithLabelValues(e)
	}
	if r.follow != nil {
		storeErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domicile_store_errors_total",
			Help: "Failed calls of this Router's follower to the shared store, by operation (follow: reading the log, renew: renewing the lease, join: joining the members again, head: reading the log's head).",
		}, []string{"operation"})
		for i, op := range storeOps {
			m.storeErrors[i] = storeErrors.WithLabelValues(op)
		}
		fencesWaiting := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "domicile_fences_waiting",
			Help: "Fences of this Router (CompleteMove, Drain, the fenced writes, Fence) waiting now for every live Router to apply a change.",
		})
		fences := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domicile_fences_total",
			Help: "Fences of this Router ended, by outcome: fenced (every live Router applied the change), not_fenced (the wait gave up: ErrNotFenced, the change stands).",
		}, []string{"outcome"})
		fenceWaits := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "domicile_fence_wait_seconds",
			Help:    "How long this Router's fences waited for every live Router to apply a change; a Router cut off from the store holds one up for its lease.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 40},
		})
		m.fencesWaiting, m.fenceWaits = fencesWaiting, fenceWaits
		m.fences = [2]prometheus.Counter{fences.WithLabelValues("fenced"), fences.WithLabelValues("not_fenced")}
		m.collectors = append(m.collectors, storeErrors, fencesWaiting, fences, fenceWaits, sharedCollector{r})
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func (m *metrics) placed(d *dataCenter) {
	if m != nil {
		m.placements[d.ID].Inc()
	}
}

func (m *metrics) moved(outcome string, mv *Move) {
	if m == nil {
		return
	}
	scope := "in_region"
	if mv.Transfer != "" {
		scope = "cross_region"
	}
	m.moves[[2]string{outcome, scope}].Inc()
}

func (m *metrics) transfer(action string) {
	if m != nil {
		m.transfers[action].Inc()
	}
}

func (m *metrics) consent(action string) {
	if m != nil {
		m.consents[action].Inc()
	}
}

func (m *metrics) objection(action string) {
	if m != nil {
		m.objections[action].Inc()
	}
}

func (m *metrics) deleted() {
	if m != nil {
		m.deletions.Inc()
	}
}

// storeFailed counts a failed call of the follow goroutine to the store.
func (m *metrics) storeFailed(op storeOp) {
	if m != nil {
		m.storeErrors[op].Inc()
	}
}

// writeFailed counts a write's error when the store caused it: an error
// matching ErrStale, ErrStoreFailed or ErrUnavailable. Refusals of the
// input (counted by refused), the caller's context ending before the
// write was taken, and ErrClosed are not counted.
func (m *metrics) writeFailed(err error) {
	if m == nil {
		return
	}
	for i, target := range [...]error{ErrStale, ErrStoreFailed, ErrUnavailable} {
		if errors.Is(err, target) {
			m.writeErrors[i].Inc()
			return
		}
	}
}

// fenceBegun counts a fence that starts waiting.
func (m *metrics) fenceBegun() {
	if m != nil {
		m.fencesWaiting.Inc()
	}
}

// fenceEnded counts a fence begun at start that ended with err (nil or
// ErrNotFenced).
func (m *metrics) fenceEnded(start time.Time, err error) {
	if m == nil {
		return
	}
	m.fencesWaiting.Dec()
	m.fenceWaits.Observe(time.Since(start).Seconds())
	if err != nil {
		m.fences[1].Inc()
	} else {
		m.fences[0].Inc()
	}
}

// access counts an access check; it allocates nothing.
func (m *metrics) access(res accessResult) {
	if m != nil {
		m.checks[res].Inc()
	}
}

// accessResult counts an access check by its answer, nil or a refusal of
// mayAccess.
func (m *metrics) accessResult(err error) {
	if m == nil {
		return
	}
	res := accessAllowed
	if err != nil {
		res = accessRefused
		var k error
		if ke, ok := err.(*kindsError); ok && len(ke.kinds) > 1 {
			k = ke.kinds[1]
		}
		switch k {
		case ErrNotEffective:
			res = accessNotEffective
		case ErrObjected:
			res = accessObjected
		case ErrNoConsent:
			res = accessNoConsent
		}
	}
	m.checks[res].Inc()
}

func (m *metrics) refused(err error) {
	if m != nil {
		m.refusals[refusalReason(err)].Inc()
	}
}

func allRefusalReasons() []string {
	out := []string{reasonInvalidCountry, reasonInvalidRegion, reasonNoRegion, reasonOther}
	for _, r := range refusalReasons {
		out = append(out, r.reason)
	}
	return out
}

// refusalReason names the error for the refusals metric.
func refusalReason(err error) string {
	for _, r := range refusalReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	switch {
	case errors.Is(err, region.ErrInvalidCountry):
		return reasonInvalidCountry
	case errors.Is(err, region.ErrUnknownRegion):
		return reasonInvalidRegion
	case errors.Is(err, region.ErrNoRegion):
		return reasonNoRegion
	}
	return reasonOther
}

var (
	accountsDesc = prometheus.NewDesc("domicile_accounts",
		"Accounts living on each data center, at scrape time.", []string{"region", "datacenter", "provider"}, nil)
	openMovesDesc = prometheus.NewDesc("domicile_moves_open",
		"Moves begun and not yet completed or aborted, at scrape time.", nil, nil)
)

// stateCollector reports gauges computed at scrape time, so that the write
// path keeps no gauges. Accounts on data centers that left the catalog are
// not reported here; Verify reports them.
type stateCollector struct{ r *Router }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	for id, d := range c.r.dataCenters {
		n := c.r.accountsOn[id].Load()
		ch <- prometheus.MustNewConstMetric(accountsDesc, prometheus.GaugeValue, float64(n), d.Region.String(), d.ID, string(d.Provider))
	}
	open := 0
	for range all[*Move](c.r.db.Txn(false), tableMoves) {
		open++
	}
	ch <- prometheus.MustNewConstMetric(openMovesDesc, prometheus.GaugeValue, float64(open))
}

var (
	staleDesc = prometheus.NewDesc("domicile_stale",
		"1 while this Router's lease on the shared store has run out, so that it answers ErrStale, else 0, at scrape time.", nil, nil)
	leaseRemainingDesc = prometheus.NewDesc("domicile_lease_remaining_seconds",
		"Seconds until this Router's lease on the shared store ends by its own clock, at scrape time; negative once it has ended: how long ago.", nil, nil)
	appliedDesc = prometheus.NewDesc("domicile_log_applied_position",
		"Position in the shared store's log up to which this Router has applied the changes, at scrape time: compare with the other instances' to see how far behind it is.", nil, nil)
)

// sharedCollector reports, at scrape time, a Router's hold on a shared
// store: whether it is stale, its lease, how far it has applied the log.
// It reads what the follower keeps anyway, so that neither Lookup nor the
// follow goroutine does any work for it.
type sharedCollector struct{ r *Router }

func (c sharedCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c sharedCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.r.follow
	// As readable judges it, without marking the Router stale: the
	// lease's timer may not have run yet after a pause of the process.
	over := f.leaseOver()
	stale := 0.0
	if over || c.r.gate.Load()&gateStale != 0 {
		stale = 1
	}
	left := time.Duration(f.leaseEnd.Load()) - time.Since(f.origin)
	ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.GaugeValue, stale)
	ch <- prometheus.MustNewConstMetric(leaseRemainingDesc, prometheus.GaugeValue, left.Seconds())
	ch <- prometheus.MustNewConstMetric(appliedDesc, prometheus.GaugeValue, float64(f.applied.Load()))
}
