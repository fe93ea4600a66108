package residency

import (
	"reflect"

	"golang.org/x/mod/sumdb/note"

	"fmt"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/prometheus/client_golang/prometheus"
)

// Option configures [Open].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	catalog    *provider.Catalog
	policy     *region.Policy
	registerer prometheus.Registerer
	now        func() time.Time
	path       string
	store      Store
	// writeTimeout bounds each call of the store (write.go).
	writeTimeout time.Duration
	unverified   bool
	// logSigner and logOrigin sign and name the audit log (auditlog.go).
	logSigner note.Signer
	logOrigin string
	// nilOption is set when Open was given a nil Option.
	nilOption bool
}

func (c *config) validate() error {
	switch {
	case c.nilOption:
		return fmt.Errorf("%w: a nil Option", ErrInvalidOption)
	case c.store != nil && isNil(c.store):
		return fmt.Errorf("%w: a nil store (%T)", ErrInvalidOption, c.store)
	case c.logOrigin != "":
		if _, err := (auditlog.Checkpoint{Origin: c.logOrigin}).Marshal(); err != nil {
			return fmt.Errorf("%w: log origin %.80q: %w", ErrInvalidOption, c.logOrigin, err)
		}
	}
	switch {
	case c.catalog == nil:
		return fmt.Errorf("%w: nil catalog", ErrInvalidOption)
	case c.policy == nil:
		return fmt.Errorf("%w: nil policy", ErrInvalidOption)
	case c.now == nil:
		return fmt.Errorf("%w: nil clock", ErrInvalidOption)
	case c.path != "" && c.store != nil:
		return fmt.Errorf("%w: both WithPath and WithStore", ErrInvalidOption)
	case c.writeTimeout <= 0:
		return fmt.Errorf("%w: write timeout %v is not positive", ErrInvalidOption, c.writeTimeout)
	}
	return nil
}

// isNil reports whether v, an interface holding a value, holds a nil
// pointer (or map, func...): a typed nil, whose methods would panic.
func isNil(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// WithCatalog sets the data centers accounts may live in; the default is
// [provider.DefaultCatalog].
func WithCatalog(c *provider.Catalog) Option {
	return optionFunc(func(cfg *config) { cfg.catalog = c })
}

// WithPolicy sets how countries map to regions; the default is
// [region.DefaultPolicy].
func WithPolicy(p *region.Policy) Option { return optionFunc(func(cfg *config) { cfg.policy = p }) }

// WithRegisterer registers the Router's metrics on reg. Without it, or with
// a nil reg, the Router registers nothing: it never uses the global
// registry on its own. The metrics' names and labels are fixed, so a
// second Router on the same reg fails to open ([ErrInvalidOption], a
// duplicate collector), as it does on reg wrapped with a label of its own
// (Prometheus wants one set of label names per metric name): give each
// Router its own registry (and gather them together with
// [prometheus.Gatherers]), or its own prefix
// ([prometheus.WrapRegistererWithPrefix]). On a shared store each Router counts its own writes (sum them
// over instances); the account gauges are the same on every instance.
func WithRegisterer(reg prometheus.Registerer) Option {
	return optionFunc(func(cfg *config) { cfg.registerer = reg })
}

// WithClock sets the clock for timestamps, the expiry of transfer
// agreements and consents, and the effective dates of the catalog's data
// centers and sub-processors; the default is [time.Now]. Tests use it to
// move time.
func WithClock(now func() time.Time) Option { return optionFunc(func(cfg *config) { cfg.now = now }) }

// WithPath keeps the Router's state in the embedded store file at path,
// created (mode 0600) if it does not exist: the default for one machine.
// Every change is committed and fsynced before the call that made it
// returns; concurrent calls share fsyncs. Open loads the whole file into
// memory. A file that another process holds is [ErrLocked] after about a
// second, or when Open's context ends, whichever is first; a file that is
// not a store, is damaged or is empty (only a path where no file exists
// makes a new store) is [ErrCorrupt]. Files of older formats are upgraded
// in place when opened.
func WithPath(path string) Option { return optionFunc(func(cfg *config) { cfg.path = path }) }

// WithStore keeps the Router's state in s, such as a PostgreSQL store
// (postgres.Open, in package
// github.com/domicile-go/domicile/residency/postgres). The Router closes s
// when it is closed, or when Open fails.
func WithStore(s Store) Option { return optionFunc(func(cfg *config) { cfg.store = s }) }

// DefaultWriteTimeout is how long a call of the store may take unless
// [WithWriteTimeout] says otherwise.
const DefaultWriteTimeout = 30 * time.Second

// WithWriteTimeout bounds each call the Router makes to its store when
// writing: Apply, the reads that learn the outcome of an Apply that
// failed, and on a [SharedStore] the read of the log before a write that
// memory alone would answer. The call gets a context that ends after d; a store that ignores
// it is waited for a little longer (d/4, at least a second), and the write
// then fails with an error matching [ErrUnavailable], its outcome unknown
// until the store answers again. A [PromptStore] is trusted to return by
// d, and waited for as long as it takes. The default is [DefaultWriteTimeout]; d
// must be positive.
//
// A write's own context bounds it too: each store call also ends by the
// latest deadline of the callers whose writes it commits, when each has
// one, and a caller whose context ends while its write is being committed
// gets an error matching [ErrUnavailable] and the context's error at once
// (see the package doc). Without a deadline, a write that fails may take
// two calls, the write and the reading back of its outcome, and three on
// a shared store, after a read of its log, each bounded by d.
func WithWriteTimeout(d time.Duration) Option {
	return optionFunc(func(cfg *config) { cfg.writeTimeout = d })
}

// WithUnverifiedState lets Open load a stored state that breaks the catalog,
// so that an operator can repair it: accounts or backups on data centers
// the catalog lacks or outside the account's home region, or open moves to
// such data centers. Without it Open refuses such a state with an error
// that names the first account concerned and matches
// [ErrUnknownDataCenter] or [ErrCrossRegion]. With it, [Router.Verify]
// reports every such account as a violation.
func WithUnverifiedState() Option { return optionFunc(func(cfg *config) { cfg.unverified = true }) }
