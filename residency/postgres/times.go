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

// wireTime is a time as the JSON given to json_to_recordset carries it:
// the microseconds as text PostgreSQL parses (nil for the zero time), and
// the nanoseconds below.
func wireTime(t time.Time) (*string, int16) {
	if t.IsZero() {
		return nil, 0
	}
	t = t.UTC()
	us := t.Truncate(time.Microsecond)
	s := us.Format("2006-01-02T15:04:05.999999Z07:00")
	return &s, int16(t.Sub(us))
}

// readTime is the inverse of wireTime, from the two columns as scanned.
func readTime(ts pgtype.Timestamptz, ns int16) time.Time {
	if !ts.Valid {
		return time.Time{}
	}
	return ts.Time.Add(time.Duration(ns)).UTC()
}
