// Package provider describes where accounts can be hosted and who may touch
// their data: the hosting providers, their data centers, and the other
// sub-processors, as data a compliance officer keeps in one file.
//
// # Catalog
//
// A [Catalog] lists data centers, each in one residency region, with a
// weight (its share of new accounts in its region), a status (active,
// draining or offline; only active data centers take new accounts) and an
// effective date (before it, the data center is announced, not usable).
// [DefaultCatalog] holds the eight data centers of the hosting provider's
// published sub-processor list and its four other sub-processors:
//
//	dc, ok := provider.DefaultCatalog().DataCenter("aws-eu-west-1")
//	// dc.Provider == provider.AWS, dc.Region == region.EU
//
// [LoadCatalog] reads one from JSON. The smallest valid catalog is
//
//	{"datacenters": [{"id": "linode-eu", "provider": "linode", "region": "EU"}]}
//
// Each data center may also have "weight" (default 1), "status" ("active",
// the default, "draining" or "offline"), "country" (where the facility
// stands, which may be outside its region: only "region" decides whose data
// it may hold), "city", "location", "certifications" (any names) and
// "effective" (a date such as "2027-02-01", midnight UTC, or an RFC 3339
// time; default: always). A catalog knows the providers linode, aws and
// websupport; any other is declared with its legal name, and any may carry
// what is published about it:
//
//	"providers": [{"id": "hetzner", "name": "Hetzner Online GmbH",
//	  "address": "...", "contact": "...", "data": "service data", "transfer": "..."}]
//
// The sub-processors that are not hosts are listed too:
//
//	"subprocessors": [{"id": "quality-unit-ukraine", "name": "Quality Unit Ukraine",
//	  "kind": "subcontractor", "purpose": "...", "countries": ["UA"],
//	  "regions": ["EU", "UK"], "consent": false, "effective": "2027-02-01",
//	  "address": "...", "contact": "...", "data": "service data", "transfer": "..."}]
//
// "kind" is "service" or "subcontractor"; "regions" (the home regions whose
// data it may touch) defaults to all four; "consent" (whether it needs the
// customer's prior consent) to false; "effective" to always.
//
// LoadCatalog is strict: unknown fields; empty or duplicate IDs (a
// sub-processor may not take a provider's token either); unknown providers,
// kinds, regions, countries and statuses; explicit weights below 1; empty
// legal names; control characters in text; and declared providers that host
// no data center are refused with an error that names the entry and matches
// [ErrInvalidCatalog]. [Catalog.MarshalJSON] writes a catalog back, every
// default written out; loading it gives an equal catalog.
//
// # Sub-processors
//
// [Catalog.SubProcessors] lists every sub-processor: one host per provider
// of the catalog's data centers, with the provider's token as ID ("aws"),
// derived from its data centers, then the others. [Catalog.SubProcessor]
// finds one by ID, and [Catalog.Scope] returns, without allocating, what an
// access check needs (kind, regions served, consent, effective date).
// [Catalog.Disclosure] is the page customers of one region are shown, and
// [Changes] the notice of what changed on it between two catalogs.
// [Obligations] lists what every sub-processor is bound to.
//
// # Concurrency
//
// A Catalog is immutable once built and safe for concurrent use. Values it
// returns are copies, and [DefaultCatalog] returns a new handle on every
// call: no caller can change what another one gets.
package provider
