package residency

// StoredEntry stores the change c, whose JSON entry is js, as the file
// store's log does (codec_entry.go), and reads it back: whether it was
// stored in binary, and the JSON entry read back.
func StoredEntry(c *Change, js []byte) (inBinary bool, back []byte, err error) {
	v := appendStoredEntry(nil, c, js)
	back, err = jsonOfStored(nil, v, nil)
	return len(v) > 0 && v[0] == binaryEntry, back, err
}

// HeldEvents counts the events of audit trail r holds in memory: in its
// memdb rows and in its lookup index.
func HeldEvents(r *Router) int {
	n := 0
	it, err := r.db.Txn(false).Get(tableAccounts, indexID)
	if err != nil {
		panic(err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		n += len(obj.(*account).history)
	}
	for i := range r.lookup.shards {
		s := &r.lookup.shards[i]
		s.mu.RLock()
		for _, a := range s.rows {
			n += len(a.history)
		}
		s.mu.RUnlock()
	}
	return n
}
