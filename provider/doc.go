// Package provider describes where accounts can be hosted: the hosting
// providers, their data centers, and the other sub-processors that may touch
// an account's data.
//
// # Catalog
//
// A [Catalog] lists data centers, each in one residency region, with a
// weight (its share of new accounts in its region) and a status (active,
// draining or offline; only active data centers take new accounts).
// [DefaultCatalog] holds the eight data centers of the hosting provider's
// published sub-processor list:
//
//	dc, ok := provider.DefaultCatalog().DataCenter("aws-eu-west-1")
//	// dc.Provider == provider.AWS, dc.Region == region.EU
//
// [LoadCatalog] reads one from JSON. The smallest valid catalog is
//
//	{"datacenters": [{"id": "linode-eu", "provider": "linode", "region": "EU"}]}
//
// and each data center may also have "weight" (default 1), "status"
// ("active", the default, "draining" or "offline"), "country", "city",
// "location" and "certifications". LoadCatalog is strict: unknown fields,
// empty or duplicate IDs, unknown providers, regions, statuses and
// certifications, and explicit weights below 1 are refused with an error that
// names the data center and matches [ErrInvalidCatalog].
//
// # Sub-processors
//
// [Catalog.SubProcessors] lists every sub-processor: the hosts of the
// catalog's data centers and the service processors and subcontractors of
// [OtherSubProcessors]. [Catalog.SubProcessorsFor] says which of them may
// touch one account's data. [Obligations] lists what each of them is bound to.
//
// # Concurrency
//
// A Catalog is immutable once built and safe for concurrent use. Values it
// returns are copies.
package provider
