package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
)

// TestSyncCommitOffWithSynchronousStandby: a server with a synchronous
// standby configured (synchronous_standby_names), whose operator turned
// synchronous_commit off (for the server here; for a database or role alike) so that its writes do not wait
// for the standby (here the standby is down: none is connected). The
// apply statement turns synchronous_commit 'on' for its transaction to
// make each commit durable on this server, but 'on' also waits for the
// synchronous standby; 'local' would give the durability it is after
// (the WAL flushed here before the acknowledgement) without overriding
// the operator's replication choice.
//
// Observed: every Place waits for a standby that never answers: it
// returns ErrUnavailable at its deadline (the commit, done locally, is
// only learnt by reading it back later). Expected: the Place succeeds,
// as every other statement of the store does under the operator's
// setting.
func TestSyncCommitOffWithSynchronousStandby(t *testing.T) {
	ctx := context.Background()
	srv := startOwnServerWith(t, ownServerConfig{opts: "-c synchronous_standby_names=absent_standby -c synchronous_commit=off"})
	s, err := postgres.Open(ctx, srv.dsn())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r, err := residency.Open(ctx, residency.WithStore(s), residency.WithWriteTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := r.Place(dctx, residency.PlaceRequest{AccountID: "a", Country: "DE"}); err != nil {
		t.Errorf("Place with synchronous_commit off on the database and a synchronous standby named but absent = %v; want it placed without waiting for the standby", err)
	}
}
