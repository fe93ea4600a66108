package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// BenchmarkApplyHashing is BenchmarkApply with the hashing goroutine
// (hasher.go) stopped and running, in one process: run it with -count to
// compare the two in turns.
func BenchmarkApplyHashing(b *testing.B) {
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC)
	for _, hashing := range []bool{false, true} {
		b.Run(fmt.Sprintf("hashing=%v", hashing), func(b *testing.B) {
			s, err := Open(ctx, pgtest.Database(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if !hashing {
				s.stopHasher()
				s.hash = nil
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprint("acct-", i)
				p := residency.Placement{AccountID: id, Country: region.MustParseCountry("DE"), Region: region.EU,
					DataCenter: "linode-eu", Provider: provider.Linode, Backup: "aws-eu-west-1", Version: 1, Rule: "EU member state",
					Created: at, Updated: at}
				c := residency.Change{Placement: p, Event: residency.Event{Time: at, Kind: residency.Placed, AccountID: id, To: p.DataCenter, Rule: p.Rule, Version: 1}}
				if err := s.Apply(ctx, []residency.Change{c}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
