package postgres

// StopHashing stops the hashing of s's log into the audit log's tree
// (hasher.go), for the side of BenchmarkLogCost without the audit log.
// Call it before s is written to.
func StopHashing(s *Store) {
	s.stopHasher()
	s.hash = nil
}

// LockKey is the advisory lock that serialises Opens of a schema.
var LockKey = lockKey
