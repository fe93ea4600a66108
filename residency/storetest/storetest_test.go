package storetest_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/storetest"
)

// TestMemoryStore runs the suite against residency.MemoryStore, reopened
// with MemoryStore.Reopen.
func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (residency.Store, func() (residency.Store, error)) {
		s := residency.NewMemoryStore()
		return s, func() (residency.Store, error) { return s.Reopen(), nil }
	})
}

// TestFileStore runs the suite against the embedded file store, reopened
// on the same path.
func TestFileStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (residency.Store, func() (residency.Store, error)) {
		path := filepath.Join(t.TempDir(), "domicile.db")
		s, err := residency.OpenFileStore(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return s, func() (residency.Store, error) { return residency.OpenFileStore(context.Background(), path) }
	})
}
