package residency

import (
	"fmt"
	"iter"

	"github.com/hashicorp/go-memdb"
)

// The memdb schema. This file is the only one that names tables and
// indexes; the rest of the package uses the typed accessors below.
//
// Indexes earn their memory: a memdb index entry costs about 300 bytes per
// row (radix nodes with their watch channels), so accounts have only their
// ID index. Scans by data center or region (migration scripts, Verify) walk
// the table; the accounts per data center are counted in memory
// (Router.accountsOn) for the metrics.
// An account's audit trail is kept on its row (account.history) rather than
// in a table of its own, which would cost an index entry per event; on a
// TrailStore rows keep none (writer.put), and History reads the store.
// Account rows reach the accounts table in batches (write.go, behindLimit):
// read it through a view (Router.snapshot), never through a transaction
// alone. Rows share their audit trail's backing array (account.change).
const (
	tableAccounts  = "accounts"
	tableMoves     = "moves"
	tableTransfers = "transfers"

	indexID = "id"
)

// account is a row of the accounts table: the placement and its audit
// trail (nil on a TrailStore). Rows are immutable once inserted; a change
// inserts a new row.
type account struct {
	Placement
	history []Event
	// access holds the account's consents and objections (consent.go);
	// nil for most accounts.
	access *access
}

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableAccounts:  accountsTableSchema(),
		tableMoves:     movesTableSchema(),
		tableTransfers: transfersTableSchema(),
	}}
}

func accountsTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableAccounts, Indexes: map[string]*memdb.IndexSchema{
		indexID: {Name: indexID, Unique: true, Indexer: stringIndexer[*account](func(a *account) string { return a.AccountID })},
	}}
}

func movesTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableMoves, Indexes: map[string]*memdb.IndexSchema{
		indexID: {Name: indexID, Unique: true, Indexer: stringIndexer[*Move](func(m *Move) string { return m.ID })},
	}}
}

// transfersTableSchema keys agreements by account and reference, so that an
// account's agreements are one prefix scan.
func transfersTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableTransfers, Indexes: map[string]*memdb.IndexSchema{
		indexID: {Name: indexID, Unique: true, Indexer: stringIndexer[*Agreement](func(a *Agreement) string {
			return a.AccountID + "\x00" + a.Reference
		})},
	}}
}

// stringIndexer indexes rows of type T by a string key, without
// reflection. Keys end in a NUL byte so that a key is never the prefix of
// another; key parts are NUL-separated (IDs and references hold no control
// characters). Arguments are the key's parts, all of them for a lookup and
// the leading ones for a prefix scan.
type stringIndexer[T any] func(T) string

func (f stringIndexer[T]) FromObject(obj any) (bool, []byte, error) {
	row, ok := obj.(T)
	if !ok {
		return false, nil, fmt.Errorf("residency: indexing %T as %T", obj, row)
	}
	key := f(row)
	b := make([]byte, len(key)+1)
	copy(b, key)
	return true, b, nil
}

func (f stringIndexer[T]) FromArgs(args ...any) ([]byte, error) {
	var b []byte
	for _, arg := range args {
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("residency: index argument %T is not a string", arg)
		}
		b = append(append(b, s...), 0)
	}
	return b, nil
}

func (f stringIndexer[T]) PrefixFromArgs(args ...any) ([]byte, error) { return f.FromArgs(args...) }

// first returns the row of table with the given key, or nil.
func first[T any](txn *memdb.Txn, table string, key ...any) T {
	var zero T
	obj, err := txn.First(table, indexID, key...)
	if err != nil {
		panic(err) // only a schema mistake can make First fail
	}
	if obj == nil {
		return zero
	}
	return obj.(T)
}

// all yields the rows of table, or those whose key starts with prefix.
func all[T any](txn *memdb.Txn, table string, prefix ...any) iter.Seq[T] {
	return func(yield func(T) bool) {
		index := indexID
		if len(prefix) > 0 {
			index += "_prefix"
		}
		it, err := txn.Get(table, index, prefix...)
		if err != nil {
			panic(err) // only a schema mistake can make Get fail
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			if !yield(obj.(T)) {
				return
			}
		}
	}
}

func getAccount(txn *memdb.Txn, id string) *account { return first[*account](txn, tableAccounts, id) }
func getMove(txn *memdb.Txn, id string) *Move       { return first[*Move](txn, tableMoves, id) }
func getAgreement(txn *memdb.Txn, accountID, reference string) *Agreement {
	return first[*Agreement](txn, tableTransfers, accountID, reference)
}
func agreementsOf(txn *memdb.Txn, accountID string) iter.Seq[*Agreement] {
	return all[*Agreement](txn, tableTransfers, accountID)
}

func mustInsert(txn *memdb.Txn, table string, row any) {
	if err := txn.Insert(table, row); err != nil {
		panic(err) // only a schema mistake can make Insert fail
	}
}

func mustDelete(txn *memdb.Txn, table string, row any) {
	if err := txn.Delete(table, row); err != nil {
		panic(err) // rows are deleted only after they were read in the same txn
	}
}
