package provider_test

import (
	"testing"

	"github.com/domicile-go/domicile/provider"
	"github.com/google/go-cmp/cmp"
)

func TestSubProcessors(t *testing.T) {
	type row struct {
		Name    string
		Kind    provider.Kind
		Consent bool
		DCs     []string
	}
	rows := func(s []provider.SubProcessor) []row {
		var out []row
		for _, p := range s {
			out = append(out, row{p.Name, p.Kind, p.RequiresConsent, p.DataCenters})
		}
		return out
	}
	others := []row{
		{"Quality Unit, LLC", provider.ServiceProcessor, false, nil},
		{"Quality Unit Ukraine", provider.Subcontractor, false, nil},
		{"Twilio, Inc.", provider.ServiceProcessor, false, nil},
		{"24/7 support subcontractors", provider.Subcontractor, true, nil},
	}
	want := append([]row{
		{"Amazon Web Services, LLC", provider.Host, false, []string{"aws-ap-southeast-1", "aws-eu-west-1", "aws-us-west-1"}},
		{"Linode, LLC", provider.Host, false, []string{"linode-eu", "linode-sg", "linode-uk", "linode-us"}},
		{"Websupport, s.r.o.", provider.Host, false, []string{"websupport-eu"}},
	}, others...)
	if diff := cmp.Diff(want, rows(provider.DefaultCatalog().SubProcessors())); diff != "" {
		t.Errorf("SubProcessors() mismatch (-want +got):\n%s", diff)
	}

	// An EU account on Linode with a backup at Websupport, no support consent.
	got := rows(provider.DefaultCatalog().SubProcessorsFor([]string{"linode-eu", "websupport-eu", "nowhere"}, false))
	want = append([]row{
		{"Linode, LLC", provider.Host, false, []string{"linode-eu"}},
		{"Websupport, s.r.o.", provider.Host, false, []string{"websupport-eu"}},
	}, others[:3]...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SubProcessorsFor(no consent) mismatch (-want +got):\n%s", diff)
	}
	got = rows(provider.DefaultCatalog().SubProcessorsFor([]string{"linode-uk"}, true))
	want = append([]row{{"Linode, LLC", provider.Host, false, []string{"linode-uk"}}}, others...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SubProcessorsFor(consent) mismatch (-want +got):\n%s", diff)
	}
	if len(provider.Obligations()) != 6 {
		t.Errorf("Obligations() = %q", provider.Obligations())
	}
}
