package residency_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

// TestLongHistoryMemory: one account with 4,000 events holds a few
// megabytes, not the square of its trail (1.5 GB when every row waiting
// for memdb kept its own copy). This measures memory, not time.
func TestLongHistoryMemory(t *testing.T) {
	ctx := context.Background()
	before := heapInUse()
	r := open(t)
	p := place(t, r, "long-lived", "DE")
	to := map[bool]string{true: "aws-eu-west-1", false: "linode-eu"}[p.DataCenter == "linode-eu"]
	const events = 4000
	for n := 1; n < events; n += 2 {
		m, err := r.BeginMove(ctx, p.AccountID, to)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.AbortMove(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	held := heapInUse() - before
	h, err := r.History(ctx, p.AccountID)
	if err != nil || len(h) < events {
		t.Fatalf("History: %d events, %v", len(h), err)
	}
	runtime.KeepAlive(r)
	const bound = 16 << 20
	if held > bound {
		t.Errorf("one account with %d events holds %d bytes, want at most %d", len(h), held, bound)
	}
	t.Logf("one account with %d events holds %d bytes", len(h), held)
}

// TestHistoryIsACopy: a caller appending to or changing a returned trail
// changes neither the Router's trail nor another caller's.
func TestHistoryIsACopy(t *testing.T) {
	ctx := context.Background()
	r := open(t)
	p := place(t, r, "a", "DE")
	to := map[bool]string{true: "aws-eu-west-1", false: "linode-eu"}[p.DataCenter == "linode-eu"]
	m, err := r.BeginMove(ctx, "a", to)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := r.History(ctx, "a")
	_ = append(first[:1], residency.Event{Kind: "forged"})
	first[0].Kind = "forged"
	if _, err := r.AbortMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	h, _ := r.History(ctx, "a")
	var kinds []residency.EventKind
	for _, e := range h {
		kinds = append(kinds, e.Kind)
	}
	want := []residency.EventKind{residency.Placed, residency.MoveBegun, residency.MoveAborted}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("History mismatch (-want +got):\n%s", diff)
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
