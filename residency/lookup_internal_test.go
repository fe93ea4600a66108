package residency

import (
	"fmt"
	"testing"
)

// TestLookupFill: fill gives the index every row, the last of an ID over
// the earlier ones, in every shard, and the index takes puts after it.
func TestLookupFill(t *testing.T) {
	for _, n := range []int{0, 1, 63, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var rows []*account
			want := map[string]*account{}
			for i := range n {
				a := &account{}
				a.AccountID, a.Version = fmt.Sprint("a-", i%(n/2+1)), uint64(i) // IDs repeat
				rows = append(rows, a)
				want[a.AccountID] = a
			}
			l := newLookupIndex()
			l.fill(rows)
			got, shards := 0, 0
			for s := range l.shards {
				got += len(l.shards[s].rows)
				if len(l.shards[s].rows) > 0 {
					shards++
				}
			}
			if got != len(want) {
				t.Errorf("the index holds %d rows, want %d", got, len(want))
			}
			if n == 5000 && shards != lookupShards {
				t.Errorf("rows in %d shards, want all %d", shards, lookupShards)
			}
			for id, a := range want {
				if l.get(id) != a {
					t.Fatalf("get(%q) = %+v, want the last row of that ID, %+v", id, l.get(id), a)
				}
			}
			a := &account{}
			a.AccountID = "after"
			l.put(a)
			if l.get("after") != a || l.get("missing") != nil {
				t.Error("the filled index does not take a put")
			}
		})
	}
}
