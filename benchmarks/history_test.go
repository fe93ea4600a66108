package benchmarks

import (
	"context"
	"testing"

	"github.com/domicile-go/domicile/residency"
)

// BenchmarkLongLivedAccount changes one account again and again, as an
// account that lives for years is changed: each iteration begins a move
// and aborts it (two events on its audit trail). Neither the time of a
// change nor the heap held per event may grow with the trail; B/event is
// the heap the Router holds at the end, per event of the account.
func BenchmarkLongLivedAccount(b *testing.B) {
	ctx := context.Background()
	before := heap()
	r, err := residency.Open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	p, err := r.Place(ctx, residency.PlaceRequest{AccountID: "long-lived", Country: "DE"})
	if err != nil {
		b.Fatal(err)
	}
	to := "linode-eu"
	if p.DataCenter == to {
		to = "aws-eu-west-1"
	}
	start(b)
	for b.Loop() {
		m, err := r.BeginMove(ctx, p.AccountID, to)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.AbortMove(ctx, m.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	h, err := r.History(ctx, p.AccountID)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(int64(heap())-int64(before))/float64(len(h)), "B/event")
	b.ReportMetric(float64(len(h)), "events")
}
