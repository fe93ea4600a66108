// Package storetest checks that a [residency.Store] keeps the promises the
// Router relies on, as testing/fstest checks an fs.FS: one call runs the
// whole suite, and every failure names the account or data center and
// what was expected.
//
// # Usage
//
// A store's author calls [Run] from a test, with an [Opener] that opens
// the store on new, empty storage and says how to open that storage
// again. For a store kept in a file:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) (residency.Store, func() (residency.Store, error)) {
//			path := filepath.Join(t.TempDir(), "store.db")
//			s, err := mystore.Open(path)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s, func() (residency.Store, error) { return mystore.Open(path) }
//		})
//	}
//
// A store on a database server opens each subtest's store in a schema or
// database of its own, and drops it with t.Cleanup:
//
//	storetest.Run(t, func(t *testing.T) (residency.Store, func() (residency.Store, error)) {
//		schema := newSchemaName(t)
//		s, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema))
//		if err != nil {
//			t.Fatal(err)
//		}
//		t.Cleanup(func() { dropSchema(t, schema) })
//		return s, func() (residency.Store, error) { return postgres.Open(ctx, dsn, postgres.WithSchema(schema)) }
//	})
//
// [residency.MemoryStore] passes the suite, reopened with
// [residency.MemoryStore.Reopen], and so does the embedded file store of
// [residency.OpenFileStore], reopened on its path.
//
// # What it checks
//
// The suite has a subtest per promise (see [Run] for the list): round
// trips of every record with values at the edges of what the Router
// writes (255-byte UTF-8 IDs and references, times from year 1 to 9999
// with nanoseconds, zero times, a thousand events on one account); the
// order of Load, LoadAccounts and DataCenters; versions and conflicts,
// several changes of one account in one unit, and refused units that
// leave nothing behind (stale ones, and ones holding a change that
// [residency.Change.Check] refuses); large atomic units; reopening;
// Close; a cancelled context; and that a store shares no memory with its
// callers. Every subtest checks the state through Load, LoadAccounts and
// DataCenters, then again after closing and reopening the store.
//
// A store that is a [residency.LogStore] has its audit log checked at the
// same points: one entry per committed change, in commit order, each
// exactly [residency.EncodeEntry] of the change given, nothing of a
// refused unit or of an Apply whose context ended; LogSize, LogEntries
// from every index, and every stored hash and the tree hash against
// tlog's over the entries. The Log subtests add units of every kind of
// change, refusals between accepted units, and the entries' ownership;
// for a store that keeps no log they are skipped.
//
// The suite writes with the changes the Router would write, but through
// the Store interface alone: it needs no Router, catalog or clock.
// Subtests run one after another; each opens its own store.
package storetest
