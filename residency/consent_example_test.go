package residency_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/domicile-go/domicile/residency"
)

// A support tool asks before a sub-processor opens an account's data. The
// 24/7 support subcontractors need the customer's prior consent.
func ExampleRouter_MayAccess() {
	ctx := context.Background()
	r, err := residency.Open(ctx)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme-gmbh", Country: "DE"})
	if err != nil {
		panic(err)
	}

	fmt.Println(p.Provider, r.MayAccess("acme-gmbh", string(p.Provider)))
	fmt.Println("twilio", r.MayAccess("acme-gmbh", "twilio"))
	err = r.MayAccess("acme-gmbh", "support-247")
	fmt.Println("support-247 without consent:", errors.Is(err, residency.ErrNoConsent))

	err = r.GrantAccess(ctx, residency.Consent{AccountID: "acme-gmbh", SubProcessor: "support-247", Reference: "TICKET-4711"})
	if err != nil {
		panic(err)
	}
	fmt.Println("support-247 with consent:", r.MayAccess("acme-gmbh", "support-247"))
	// Output:
	// linode <nil>
	// twilio <nil>
	// support-247 without consent: true
	// support-247 with consent: <nil>
}

// A customer objects to a sub-processor (GDPR Art. 28(2)): from then on it
// may not touch the account's data, until the objection is withdrawn.
func ExampleRouter_Object() {
	ctx := context.Background()
	r, _ := residency.Open(ctx)
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme-gmbh", Country: "DE"}); err != nil {
		panic(err)
	}

	err := r.Object(ctx, residency.Objection{AccountID: "acme-gmbh", SubProcessor: "twilio", Reference: "LETTER-2026-11"})
	if err != nil {
		panic(err)
	}
	fmt.Println(errors.Is(r.MayAccess("acme-gmbh", "twilio"), residency.ErrObjected))
	list, _ := r.SubProcessors("acme-gmbh")
	for _, sp := range list {
		fmt.Println(sp.ID, sp.Kind)
	}
	// Output:
	// true
	// aws host
	// linode host
	// quality-unit-llc service
	// quality-unit-ukraine subcontractor
}

// Closing an account: it is gone for Lookup, and its audit trail ends with
// the deletion and the reason.
func ExampleRouter_Delete() {
	ctx := context.Background()
	r, _ := residency.Open(ctx)
	defer r.Close()
	if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: "trial-42", Country: "FR"}); err != nil {
		panic(err)
	}

	if err := r.Delete(ctx, "trial-42", "trial expired"); err != nil {
		panic(err)
	}
	_, err := r.Lookup("trial-42")
	fmt.Println(errors.Is(err, residency.ErrNotFound))
	history, _ := r.History(ctx, "trial-42")
	for _, e := range history {
		fmt.Println(e.Version, e.Kind, e.From+e.To, e.Rule)
	}
	// Output:
	// true
	// 1 placed aws-eu-west-1 EU member state
	// 2 deleted aws-eu-west-1 trial expired
}
