package benchmarks

import (
	"context"
	"fmt"
	"testing"

	"github.com/domicile-go/domicile/residency"
)

// BenchmarkMayAccess is the access check of a support tool against Lookup,
// in the same run and on the same Router of n accounts: op=lookup is
// Lookup; op=host asks for the host of the account's data center; op=service
// for a service processor (quality-unit-llc); op=consent for the
// consent-gated support-247, under a live consent of every account (granted
// at n=10k and 100k only: a million grants would dominate the run).
func BenchmarkMayAccess(b *testing.B) {
	ctx := context.Background()
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			r := populate(b, n)
			ids := shuffled(n)
			hosts := make(map[string]string, n)
			for _, id := range ids {
				p, err := r.Lookup(id)
				if err != nil {
					b.Fatal(err)
				}
				hosts[id] = string(p.Provider)
			}
			hostOf := make([]string, n)
			for i, id := range ids {
				hostOf[i] = hosts[id]
			}
			hosts = nil
			consents := n <= 100_000
			if consents {
				for i, id := range ids {
					c := residency.Consent{AccountID: id, SubProcessor: "support-247", Reference: fmt.Sprintf("C-%d", i)}
					if err := r.GrantAccess(ctx, c); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("op=lookup", func(b *testing.B) {
				start(b)
				for i := 0; b.Loop(); i++ {
					p, err := r.Lookup(ids[i%n])
					if err != nil {
						b.Fatal(err)
					}
					sink = p
				}
			})
			check := func(b *testing.B, sp func(i int) string) {
				start(b)
				for i := 0; b.Loop(); i++ {
					if err := r.MayAccess(ids[i%n], sp(i%n)); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("op=host", func(b *testing.B) { check(b, func(i int) string { return hostOf[i] }) })
			b.Run("op=service", func(b *testing.B) { check(b, func(int) string { return "quality-unit-llc" }) })
			if consents {
				b.Run("op=consent", func(b *testing.B) { check(b, func(int) string { return "support-247" }) })
			}
		})
	}
}
