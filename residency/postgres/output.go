package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/domicile-go/domicile/residency"
	"github.com/jackc/pgx/v5"
)

// Output settings. With pgx's default_query_exec_mode=exec or
// simple_protocol (which a proxy that pools by transaction needs: see
// [WithPollOnly]), results come back as text, written in the session's
// DateStyle and bytea_output; pgx reads only ISO dates and hex bytea. So:
//
//   - a pool Open opens sends DateStyle=ISO as a startup parameter (which
//     PgBouncer accepts and keeps per client), whatever the database's or
//     role's DateStyle; a pool from [WithPool] should set it in its
//     ConnConfig.RuntimeParams when the database's DateStyle is not ISO
//     and its exec mode one of those two;
//   - bytea, which only the audit log's stored hashes are, is read from
//     the raw result, in either output format (PgBouncer refuses
//     bytea_output as a startup parameter).

// setDateStyle makes the sessions of params write dates in ISO format,
// replacing a DateStyle given in the connection string in any case.
func setDateStyle(params map[string]string) {
	for k := range params {
		if strings.EqualFold(k, "DateStyle") {
			delete(params, k)
		}
	}
	params["DateStyle"] = "ISO"
}

// checkDateStyle refuses, at Open, a pool from [WithPool] whose results
// come back as text (exec modes exec and simple_protocol) in a DateStyle
// other than ISO, which reading the accounts would fail on later with
// pgx's "invalid PostgreSQL date/time value". One query, in those modes
// only.
func (s *Store) checkDateStyle(ctx context.Context) error {
	switch s.pool.Config().ConnConfig.DefaultQueryExecMode {
	case pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol:
	default:
		return nil
	}
	var style string
	if err := s.pool.QueryRow(ctx, "SELECT current_setting('DateStyle')").Scan(&style); err != nil {
		return fmt.Errorf("postgres: reading the session's DateStyle: %w", connectError(err))
	}
	if !strings.HasPrefix(style, "ISO") {
		return fmt.Errorf("%w: postgres: the pool's sessions write dates with DateStyle %q, and in the pool's exec mode (exec or simple_protocol) pgx reads only ISO: set the pool's ConnConfig.RuntimeParams[\"DateStyle\"] = \"ISO\"", residency.ErrInvalidOption, style)
	}
	return nil
}

// errBytea: a bytea value in text format that is neither hex nor escape.
var errBytea = errors.New("postgres: bad bytea text")

// decodeBytea decodes a bytea result value: raw in binary format, and in
// text format as bytea_output writes it, hex ("\x0aff") or escape
// (printable bytes as they are, "\\" for a backslash, "\ooo" in octal
// for the others).
func decodeBytea(raw []byte, format int16) ([]byte, error) {
	if format == pgx.BinaryFormatCode {
		return raw, nil
	}
	if len(raw) >= 2 && raw[0] == '\\' && raw[1] == 'x' {
		out := make([]byte, hex.DecodedLen(len(raw)-2))
		if _, err := hex.Decode(out, raw[2:]); err != nil {
			return nil, errBytea
		}
		return out, nil
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		switch {
		case i+1 < len(raw) && raw[i+1] == '\\':
			out = append(out, '\\')
			i++
		case i+3 < len(raw) && isOctal(raw[i+1]) && raw[i+1] <= '3' && isOctal(raw[i+2]) && isOctal(raw[i+3]):
			out = append(out, (raw[i+1]-'0')<<6|(raw[i+2]-'0')<<3|(raw[i+3]-'0'))
			i += 3
		default:
			return nil, errBytea
		}
	}
	return out, nil
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }
