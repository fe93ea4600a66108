package residency

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"

	"github.com/domicile-go/domicile/region"
)

// ImportRow is an existing account to bring under domicile.
type ImportRow struct {
	AccountID string `json:"account_id"`
	// Country and Region decide the home region as for [Router.Place].
	Country string        `json:"country,omitempty"`
	Region  region.Region `json:"region,omitzero"`
	// DataCenter, when set, is where the account's data lives today: a
	// catalog data center of the home region, whatever its status (an
	// offline one too: [Router.Verify] then warns of it); one the catalog
	// announces for a later date is refused ([ErrNotEffective]). When
	// empty, the account is placed as Place would.
	DataCenter string `json:"datacenter,omitempty"`
}

// ImportResult says what [Router.Import] did.
type ImportResult struct {
	// Imported counts the accounts placed; Existing the rows for accounts
	// already placed in the same region (and data center, if given).
	Imported int `json:"imported"`
	Existing int `json:"existing"`
	// Refused lists the rows that were refused, in row order. They changed
	// nothing.
	Refused []RowError `json:"refused,omitempty"`
}

// RowError is a refused import row. Row counts from 1.
type RowError struct {
	Row       int
	AccountID string
	Err       error
}

// Error returns "row N: " and the refusal.
func (e RowError) Error() string { return fmt.Sprintf("row %d: %v", e.Row, e.Err) }

// Unwrap returns the refusal, for [errors.Is].
func (e RowError) Unwrap() error { return e.Err }

// MarshalJSON encodes the row as {"row": ..., "account_id": ..., "error":
// Err.Error()}. JSON keeps the error's text only, not what [errors.Is]
// matches.
func (e RowError) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Row       int    `json:"row"`
		AccountID string `json:"account_id"`
		Error     string `json:"error"`
	}{e.Row, e.AccountID, errorText(e.Err)})
}

// importBatch is how many rows share one transaction and one fsync.
const importBatch = 8192

// Import places existing accounts in bulk, for bringing an existing helpdesk
// under domicile. Each row is checked as [Router.Place] checks a request, and
// a given data center must be in the catalog ([ErrUnknownDataCenter]) and in
// the account's home region ([ErrCrossRegion]). Refused rows are reported in
// the result and change nothing; accepted rows are committed in batches of
// thousands, each durable before the next begins, and are recorded on the
// audit trail as "imported". The error is for what stops the import as a
// whole: the context, or a store failure; rows before it stay imported.
// A context that ends while a batch is being committed leaves that batch
// imported or not (the error matches [ErrUnavailable] and the context's):
// run the import again, which counts rows already placed as Existing.
// A nil rows imports nothing.
func (r *Router) Import(ctx context.Context, rows iter.Seq[ImportRow]) (ImportResult, error) {
	if r.isClosed() {
		return ImportResult{}, ErrClosed
	}
	var res ImportResult
	if rows == nil {
		return res, nil // no rows
	}
	batch := make([]ImportRow, 0, importBatch)
	first := 1 // row number of batch[0]
	flush := func() error {
		var part ImportResult // the batch's outcome; a request may run twice (write.go)
		err := r.write(ctx, subject{kind: fmt.Sprintf("import of rows %d to %d", first, first+len(batch)-1)}, func(w *writer) error {
			part = ImportResult{}
			for i, row := range batch {
				switch isNew, err := r.importRow(w, row); {
				case err != nil:
					part.Refused = append(part.Refused, RowError{Row: first + i, AccountID: row.AccountID, Err: w.refuse(err)})
				case isNew:
					part.Imported++
				default:
					part.Existing++
				}
			}
			return nil
		})
		if err == nil {
			res.Imported += part.Imported
			res.Existing += part.Existing
			res.Refused = append(res.Refused, part.Refused...)
		}
		first += len(batch)
		batch = batch[:0]
		return err
	}
	for row := range rows {
		batch = append(batch, row)
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (r *Router) importRow(w *writer, row ImportRow) (bool, error) {
	if err := ValidAccountID(row.AccountID); err != nil {
		return false, err
	}
	home, err := r.home(PlaceRequest{AccountID: row.AccountID, Country: row.Country, Region: row.Region})
	if err != nil {
		return false, err
	}
	var at *dataCenter
	if row.DataCenter != "" {
		var ok bool
		if at, ok = r.dataCenters[row.DataCenter]; !ok {
			return false, fmt.Errorf("%w %.80q: account %q", ErrUnknownDataCenter, row.DataCenter, row.AccountID)
		}
		if !at.EffectiveAt(w.now) {
			return false, notYet(row.AccountID, at)
		}
	}
	_, isNew, err := r.placeIn(w, row.AccountID, home, at, Imported)
	return isNew, err
}
