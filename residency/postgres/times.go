package postgres

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// A time is stored as a timestamptz, which holds microseconds, and the
// nanoseconds below the microsecond in a smallint beside it; NULL is the
// zero time. timestamptz spans years 4713 BC to 294276 AD, so every time
// the Router makes (years 1 to 9999 at least) round-trips exactly, which a
// bigint of Unix nanoseconds (years 1678 to 2262) would not.

// readTime reads a stored time from its two columns as scanned.
func readTime(ts pgtype.Timestamptz, ns int16) time.Time {
	if !ts.Valid {
		return time.Time{}
	}
	return ts.Time.Add(time.Duration(ns)).UTC()
}
