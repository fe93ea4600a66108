package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pauseAtLayout holds the first query of a connection that reads the
// tables' layout from the catalog (Store.layout) until resume is closed,
// having closed paused.
type pauseAtLayout struct {
	once           sync.Once
	paused, resume chan struct{}
}

func (p *pauseAtLayout) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "format_type") {
		p.once.Do(func() {
			close(p.paused)
			<-p.resume
		})
	}
	return ctx
}

func (p *pauseAtLayout) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestOpenDuringAnotherOpensUpgrade: an Open that reads the schema while
// another Open upgrades it (format 1 to the current) opens it. The read
// without the setup's lock (openCurrent) takes one snapshot; its first
// version read in read committed, each statement in a snapshot of its
// own: it read the format (1) and the layout recorded with it before the
// upgrade committed and the tables' layout after, found them apart and
// refused the schema with ErrForeign ("not as domicile created them").
// The test holds the first Open between the two reads while the second
// Open upgrades; in a fleet's rolling upgrade the window is one round trip.
func TestOpenDuringAnotherOpensUpgrade(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	createFormat1(t, dsn)

	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := &pauseAtLayout{paused: make(chan struct{}), resume: make(chan struct{})}
	cfg.ConnConfig.Tracer = p
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	opened := make(chan error, 1)
	go func() {
		s, err := Open(ctx, "", WithPool(pool))
		if err == nil {
			s.Close()
		}
		opened <- err
	}()
	<-p.paused
	s, err := Open(ctx, dsn) // upgrades the schema, and commits
	if err != nil {
		close(p.resume)
		t.Fatalf("Open that upgrades: %v", err)
	}
	s.Close()
	close(p.resume)
	if err := <-opened; err != nil {
		t.Errorf("Open that read the schema while another Open upgraded it = %v, want nil", err)
	}
}
