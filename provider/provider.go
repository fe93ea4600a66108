package provider

// Provider is a hosting provider, named by a short lower-case token as in
// catalog JSON ("linode").
type Provider string

// The hosting providers of the default catalog.
const (
	Linode     Provider = "linode"
	AWS        Provider = "aws"
	Websupport Provider = "websupport"
)

var legalNames = map[Provider]string{
	Linode:     "Linode, LLC",
	AWS:        "Amazon Web Services, LLC",
	Websupport: "Websupport, s.r.o.",
}

// IsValid reports whether p is a known hosting provider. Only known
// providers can be in a catalog: every host must be a disclosed
// sub-processor.
func (p Provider) IsValid() bool { _, ok := legalNames[p]; return ok }

// LegalName returns the provider's legal entity name, such as
// "Amazon Web Services, LLC", or "" for an unknown provider.
func (p Provider) LegalName() string { return legalNames[p] }

// String returns the provider's token, such as "aws".
func (p Provider) String() string { return string(p) }
