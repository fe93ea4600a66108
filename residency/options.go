package residency

import (
	"fmt"
	"time"

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
}

func (c *config) validate() error {
	switch {
	case c.catalog == nil:
		return fmt.Errorf("%w: nil catalog", ErrInvalidOption)
	case c.policy == nil:
		return fmt.Errorf("%w: nil policy", ErrInvalidOption)
	case c.now == nil:
		return fmt.Errorf("%w: nil clock", ErrInvalidOption)
	}
	return nil
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
// registry on its own.
func WithRegisterer(reg prometheus.Registerer) Option {
	return optionFunc(func(cfg *config) { cfg.registerer = reg })
}

// WithClock sets the clock for timestamps and agreement expiry; the default
// is [time.Now]. Tests use it to move time.
func WithClock(now func() time.Time) Option { return optionFunc(func(cfg *config) { cfg.now = now }) }
