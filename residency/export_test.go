package residency

// StoredEntry stores the change c, whose JSON entry is js, as the file
// store's log does (codec_entry.go), and reads it back: whether it was
// stored in binary, and the JSON entry read back.
func StoredEntry(c *Change, js []byte) (inBinary bool, back []byte, err error) {
	v := appendStoredEntry(nil, c, js)
	back, err = jsonOfStored(nil, v, nil)
	return len(v) > 0 && v[0] == binaryEntry, back, err
}

// HeldEvents counts the events of audit trail r holds in memory, each
// once however many rows share it: on its rows in memdb's accounts table,
// on the committed rows that wait for it (Router.behind, which keeps older
// versions of an account too) and on the rows of the lookup index (the
// same rows as memdb's, and the newest of the waiting ones).
func HeldEvents(r *Router) int {
	type event struct {
		account string
		version uint64
	}
	held := make(map[event]struct{})
	add := func(a *account) {
		for _, e := range a.history {
			held[event{a.AccountID, e.Version}] = struct{}{}
		}
	}
	r.mem.Lock()
	txn := r.db.Txn(false)
	behind := r.behind // the leader appends past its length (snapshot)
	r.mem.Unlock()
	for _, a := range behind {
		add(a)
	}
	it, err := txn.Get(tableAccounts, indexID)
	if err != nil {
		panic(err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		add(obj.(*account))
	}
	for i := range r.lookup.shards {
		s := &r.lookup.shards[i]
		s.mu.RLock()
		for _, a := range s.rows {
			add(a)
		}
		s.mu.RUnlock()
	}
	return len(held)
}

// AppliedPos returns the log position a Router on a shared store has
// applied to memory.
func AppliedPos(r *Router) uint64 { return r.follow.applied.Load() }
