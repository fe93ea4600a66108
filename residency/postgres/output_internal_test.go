package postgres

import (
	"context"
	"testing"

	"github.com/domicile-go/domicile/residency/postgres/pgtest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// TestDecodeBytea checks decodeBytea against what the server writes: every
// byte value, and none, in each bytea_output and each of pgx's exec modes
// (binary results in the default mode, text in exec and simple_protocol),
// read back exactly; and malformed text refused.
func TestDecodeBytea(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, mode := range []string{"cache_statement", "exec", "simple_protocol"} {
		for _, output := range []string{"hex", "escape"} {
			t.Run(mode+"/"+output, func(t *testing.T) {
				conn, err := pgx.Connect(ctx, dsn+" default_query_exec_mode="+mode+" bytea_output="+output)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				for _, want := range [][]byte{all, {}, []byte(`a\b`), {0x5c, 0x30, 0x30, 0x30}} {
					rows, err := conn.Query(ctx, "SELECT $1::bytea", want)
					if err != nil {
						t.Fatal(err)
					}
					if !rows.Next() {
						t.Fatalf("no row: %v", rows.Err())
					}
					got, err := decodeBytea(rows.RawValues()[0], rows.FieldDescriptions()[0].Format)
					rows.Close()
					if err != nil {
						t.Fatalf("decodeBytea: %v", err)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("decodeBytea mismatch (-want +got):\n%s", diff)
					}
				}
			})
		}
	}
	for _, bad := range []string{`\x0`, `\xzz`, `\`, `\9`, `\12`, `\400`, `a\b`} {
		if got, err := decodeBytea([]byte(bad), pgx.TextFormatCode); err == nil {
			t.Errorf("decodeBytea(%q) = %q, want an error", bad, got)
		}
	}
}
