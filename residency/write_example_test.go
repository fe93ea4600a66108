package residency_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/domicile-go/domicile/residency"
)

// A backend bounds how long a write may wait for its store, and tells
// apart the ways a write can fail when the store does.
func ExampleWithWriteTimeout() {
	ctx := context.Background()
	r, err := residency.Open(ctx, residency.WithWriteTimeout(5*time.Second))
	if err != nil {
		panic(err)
	}
	defer r.Close()
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "acme", Country: "DE"})
	switch {
	case errors.Is(err, residency.ErrUnavailable):
		// The store did not say whether the account was placed: answer
		// 503 and let the client retry; Place of a placed account
		// returns its placement.
		fmt.Println("try again later")
	case errors.Is(err, residency.ErrStoreFailed):
		// The account was not placed: a retry may succeed.
		fmt.Println("not placed, try again")
	case err != nil:
		fmt.Println("refused:", err)
	default:
		fmt.Println(p.Region)
	}
	// Output: EU
}
