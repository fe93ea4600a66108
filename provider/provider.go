package provider

import "strings"

// Provider is a hosting provider, named by a short lower-case token as in
// catalog JSON ("linode", "hetzner"). The token is also the ID of the
// provider's host entry among a catalog's sub-processors.
type Provider string

// The hosting providers of the default catalog. A catalog knows them without
// declaring them; any other provider is declared in the catalog with its
// legal name (see [HostingProvider]).
const (
	Linode     Provider = "linode"
	AWS        Provider = "aws"
	Websupport Provider = "websupport"
)

// defaultProviders are the providers every catalog knows, as the published
// sub-processor list names them. The list gives no addresses or contacts:
// those fields stay empty ("not stated") rather than guessed.
var defaultProviders = []HostingProvider{
	{ID: AWS, Name: "Amazon Web Services, LLC", Data: "service data"},
	{ID: Linode, Name: "Linode, LLC", Data: "service data"},
	{ID: Websupport, Name: "Websupport, s.r.o.", Data: "service data"},
}

func defaultProvider(p Provider) (HostingProvider, bool) {
	for _, h := range defaultProviders {
		if h.ID == p {
			return h, true
		}
	}
	return HostingProvider{}, false
}

// IsValid reports whether p is a well-formed provider token: 1 to 64 bytes
// of a-z, 0-9, '-', '_' and '.'. Whether a catalog knows the provider is
// the catalog's business ([Catalog.SubProcessor]).
func (p Provider) IsValid() bool { return isToken(string(p)) }

// LegalName returns the legal entity name of a default provider, such as
// "Amazon Web Services, LLC", and "" for any other provider: a provider
// declared in a catalog is named by [Catalog.SubProcessor] with the
// provider's token as ID.
func (p Provider) LegalName() string {
	h, _ := defaultProvider(p)
	return h.Name
}

// String returns the provider's token, such as "aws".
func (p Provider) String() string { return string(p) }

// HostingProvider is a hosting provider as a catalog declares it: what a
// compliance officer publishes about the company that runs data centers.
// A catalog derives the provider's host [SubProcessor] from it and from its
// data centers. Empty text fields mean "not stated".
type HostingProvider struct {
	// ID is the provider's token, such as "hetzner".
	ID Provider
	// Name is the legal entity name, such as "Hetzner Online GmbH".
	Name string
	// Address is the legal address.
	Address string
	// Contact is where data protection questions go: an e-mail address,
	// a web page, a name.
	Contact string
	// Data says which data it touches, such as "service data".
	Data string
	// Transfer is the transfer mechanism (standard contractual clauses,
	// adequacy decision, ...) for data it processes outside the region a
	// data center serves, if any.
	Transfer string
}

// isToken reports whether s is a provider or sub-processor ID: 1 to
// maxIDLen bytes of a-z, 0-9, '-', '_' and '.'.
func isToken(s string) bool {
	return s != "" && len(s) <= maxIDLen && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}
