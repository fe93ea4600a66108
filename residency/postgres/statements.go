package postgres

// statements are the SQL texts of one schema, built once at Open so that
// pgx's statement cache sees the same text every time.
type statements struct {
	insertMeta, selectMeta, updateMeta string

	apply string

	head, changes, dataCenters, versions, dcVersions string
	join, renew, leave, behind, members              string
	accountsPage, agreementsRange                    string
	accountsByID, eventsByAccount, agreementsByID    string
	consentsRange, objectionsRange                   string
	consentsByID, objectionsByID                     string

	logEntries, readHashes, countHashes, insertHashes, logStart string
}

// Column lists shared by the writes and the reads.
const (
	accountCols = `id, version, country, region, datacenter, provider, backup, rule, transfer,
		created, created_ns, updated, updated_ns,
		move_id, move_from, move_to, move_region, move_transfer, move_began, move_began_ns`
	accountDefs = `id text, version bigint, country text, region text, datacenter text, provider text, backup text, rule text, transfer text,
		created timestamptz, created_ns smallint, updated timestamptz, updated_ns smallint,
		move_id text, move_from text, move_to text, move_region text, move_transfer text, move_began timestamptz, move_began_ns smallint`
	eventCols     = `account, version, time, time_ns, kind, source, target, rule, reference, move_id`
	agreementCols = `account, reference, to_region, expires, expires_ns, granted, granted_ns, revoked, revoked_ns`
	consentCols   = `account, reference, subprocessor, expires, expires_ns, granted, granted_ns, revoked, revoked_ns`
	objectionCols = `account, reference, subprocessor, raised, raised_ns, withdrawn, withdrawn_ns`
)

func buildStatements(s string) statements {
	return statements{
		insertMeta: `INSERT INTO ` + s + `.meta (key, value) VALUES ($1, $2), ($3, $4)`,
		selectMeta: `SELECT value FROM ` + s + `.meta WHERE key = $1`,
		updateMeta: `UPDATE ` + s + `.meta SET value = CASE key WHEN $1 THEN $2 ELSE $4 END WHERE key IN ($1, $3)`,

		// apply is the whole of Apply, one statement and so one
		// transaction: each table's rows come from one JSON parameter (NULL
		// when there are none). The head is taken last: its WHERE reads the
		// other writes' results, so PostgreSQL runs them to completion
		// before it reads and locks the head row. A write that waits (for
		// another transaction writing the same event key) thus waits
		// without holding the head, and other writers commit meanwhile.
		// Only the events' foreign key checks run later, at the end of the
		// statement; they wait only for someone who locks or deletes an
		// event row, which domicile never does.
		//
		// Data center statuses are versioned: du updates a row only from
		// the version the change follows (prev), di inserts one only at
		// prev 0. The head row counts the status changes of the whole
		// log (statuses), and a writer says how many it decided on ($12,
		// NULL for no check). Once it holds the head row, every earlier
		// writer has committed, and PostgreSQL checks h's WHERE against
		// the head's latest version: a status change committed meanwhile,
		// or a data center change that wrote fewer rows than the unit has
		// ($10), leaves h without a row. The changes' positions are then
		// NULL, which the log's primary key refuses (23502): the
		// statement fails and writes nothing.
		//
		// The notification's payload is the last position, followed by
		// $13: the writing Store's tag for an Append, empty for an Apply.
		//
		// A write is acknowledged once durable: synchronous_commit off
		// (a database's or role's setting) would acknowledge commits a
		// crash then loses, and hand their log positions out again to
		// later writes, which Routers that applied the lost ones never
		// read. The statement sets it to local for its own transaction:
		// durable on this server, without waiting for the synchronous
		// standbys the operator chose not to wait for.
		apply: `WITH
			e AS (INSERT INTO ` + s + `.events (account, version, prev, time, time_ns, kind, source, target, rule, reference, move_id)
				SELECT account, version, NULLIF(version - 1, 0), time, time_ns, kind, source, target, rule, reference, move_id
				FROM json_to_recordset($1::json) AS r(account text, version bigint, time timestamptz, time_ns smallint, kind text,
					source text, target text, rule text, reference text, move_id text)
				RETURNING 1),
			a AS (INSERT INTO ` + s + `.accounts (` + accountCols + `)
				SELECT ` + accountCols + ` FROM json_to_recordset($2::json) AS r(` + accountDefs + `)
				ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, country = EXCLUDED.country, region = EXCLUDED.region,
					datacenter = EXCLUDED.datacenter, provider = EXCLUDED.provider, backup = EXCLUDED.backup, rule = EXCLUDED.rule,
					transfer = EXCLUDED.transfer, created = EXCLUDED.created, created_ns = EXCLUDED.created_ns,
					updated = EXCLUDED.updated, updated_ns = EXCLUDED.updated_ns, move_id = EXCLUDED.move_id,
					move_from = EXCLUDED.move_from, move_to = EXCLUDED.move_to, move_region = EXCLUDED.move_region,
					move_transfer = EXCLUDED.move_transfer, move_began = EXCLUDED.move_began, move_began_ns = EXCLUDED.move_began_ns
				RETURNING 1),
			g AS (INSERT INTO ` + s + `.agreements (` + agreementCols + `)
				SELECT ` + agreementCols + ` FROM json_to_recordset($3::json) AS r(account text, reference text, to_region text,
					expires timestamptz, expires_ns smallint, granted timestamptz, granted_ns smallint, revoked timestamptz, revoked_ns smallint)
				ON CONFLICT (account, reference) DO UPDATE SET to_region = EXCLUDED.to_region, expires = EXCLUDED.expires,
					expires_ns = EXCLUDED.expires_ns, granted = EXCLUDED.granted, granted_ns = EXCLUDED.granted_ns,
					revoked = EXCLUDED.revoked, revoked_ns = EXCLUDED.revoked_ns
				RETURNING 1),
			k AS (INSERT INTO ` + s + `.consents (` + consentCols + `)
				SELECT ` + consentCols + ` FROM json_to_recordset($8::json) AS r(account text, reference text, subprocessor text,
					expires timestamptz, expires_ns smallint, granted timestamptz, granted_ns smallint, revoked timestamptz, revoked_ns smallint)
				ON CONFLICT (account, reference) DO UPDATE SET subprocessor = EXCLUDED.subprocessor, expires = EXCLUDED.expires,
					expires_ns = EXCLUDED.expires_ns, granted = EXCLUDED.granted, granted_ns = EXCLUDED.granted_ns,
					revoked = EXCLUDED.revoked, revoked_ns = EXCLUDED.revoked_ns
				RETURNING 1),
			o AS (INSERT INTO ` + s + `.objections (` + objectionCols + `)
				SELECT ` + objectionCols + ` FROM json_to_recordset($9::json) AS r(account text, reference text, subprocessor text,
					raised timestamptz, raised_ns smallint, withdrawn timestamptz, withdrawn_ns smallint)
				ON CONFLICT (account, reference) DO UPDATE SET subprocessor = EXCLUDED.subprocessor, raised = EXCLUDED.raised,
					raised_ns = EXCLUDED.raised_ns, withdrawn = EXCLUDED.withdrawn, withdrawn_ns = EXCLUDED.withdrawn_ns
				RETURNING 1),
			du AS (UPDATE ` + s + `.datacenters SET status = r.status, changed = r.changed, changed_ns = r.changed_ns, version = r.version, prev = r.prev
				FROM json_to_recordset($4::json) AS r(id text, status text, changed timestamptz, changed_ns smallint, version bigint, prev bigint)
				WHERE ` + s + `.datacenters.id = r.id AND ` + s + `.datacenters.version = r.prev
				RETURNING 1),
			di AS (INSERT INTO ` + s + `.datacenters (id, status, changed, changed_ns, version, prev)
				SELECT id, status, changed, changed_ns, version, prev FROM json_to_recordset($4::json) AS r(id text, status text, changed timestamptz, changed_ns smallint, version bigint, prev bigint)
				WHERE prev = 0
				ON CONFLICT (id) DO NOTHING
				RETURNING 1),
			h AS (UPDATE ` + s + `.head SET pos = pos + $6, statuses = statuses + $11
				WHERE (SELECT count(*) FROM e) + (SELECT count(*) FROM a) + (SELECT count(*) FROM g)
					+ (SELECT count(*) FROM k) + (SELECT count(*) FROM o) >= 0
					AND (SELECT count(*) FROM du) + (SELECT count(*) FROM di) = $10
					AND ($12::bigint IS NULL OR statuses = $12)
				RETURNING pos),
			c AS (INSERT INTO ` + s + `.changes (pos, change)
				SELECT (SELECT pos FROM h) - $6 + l.ord, l.value FROM json_array_elements($5::json) WITH ORDINALITY AS l(value, ord))
			SELECT pos, pg_notify($7, pos::text || $13),
				CASE WHEN current_setting('synchronous_commit') = 'off' THEN set_config('synchronous_commit', 'local', true) END
			FROM h`,

		join: `WITH gone AS (DELETE FROM ` + s + `.members WHERE expires < now() - interval '1 hour')
			INSERT INTO ` + s + `.members (id, name, applied, joined, expires) VALUES ($1, $2, $3, now(), now() + $4::interval)`,
		renew:   `UPDATE ` + s + `.members SET applied = greatest(applied, $2), expires = now() + $3::interval WHERE id = $1`,
		leave:   `DELETE FROM ` + s + `.members WHERE id = $1`,
		behind:  `SELECT id, name, applied, extract(epoch FROM expires - now())::float8 FROM ` + s + `.members WHERE applied < $1 AND expires > now() AND id <> $2 ORDER BY applied, id`,
		members: `SELECT id, name, applied, joined, expires, expires > now() FROM ` + s + `.members ORDER BY id`,

		head: `SELECT pos FROM ` + s + `.head`,
		// changes reads the trim mark in the same snapshot as the rows, so
		// that changes removed by the Trim of formats 1 and 2 are told
		// apart from a gap.
		changes: `SELECT h.trimmed, c.pos, c.change::text FROM ` + s + `.head h LEFT JOIN LATERAL
			(SELECT pos, change FROM ` + s + `.changes WHERE pos > $1 ORDER BY pos LIMIT $2) c ON true ORDER BY c.pos`,
		dataCenters: `SELECT id, status, changed, changed_ns, version FROM ` + s + `.datacenters ORDER BY id`,
		dcVersions:  `SELECT id, version FROM ` + s + `.datacenters WHERE id = ANY($1) UNION ALL SELECT NULL, statuses FROM ` + s + `.head`,

		accountsPage:    `SELECT ` + accountCols + ` FROM ` + s + `.accounts WHERE id > $1 ORDER BY id LIMIT $2`,
		agreementsRange: `SELECT ` + agreementCols + ` FROM ` + s + `.agreements WHERE account BETWEEN $1 AND $2 ORDER BY account, reference`,

		versions:        `SELECT id, version FROM ` + s + `.accounts WHERE id = ANY($1)`,
		accountsByID:    `SELECT ` + accountCols + ` FROM ` + s + `.accounts WHERE id = ANY($1) ORDER BY id`,
		eventsByAccount: `SELECT ` + eventCols + ` FROM ` + s + `.events WHERE account = ANY($1) ORDER BY account, version`,
		agreementsByID:  `SELECT ` + agreementCols + ` FROM ` + s + `.agreements WHERE account = ANY($1) ORDER BY account, reference`,

		consentsRange:   `SELECT ` + consentCols + ` FROM ` + s + `.consents WHERE account BETWEEN $1 AND $2 ORDER BY account, reference`,
		objectionsRange: `SELECT ` + objectionCols + ` FROM ` + s + `.objections WHERE account BETWEEN $1 AND $2 ORDER BY account, reference`,
		consentsByID:    `SELECT ` + consentCols + ` FROM ` + s + `.consents WHERE account = ANY($1) ORDER BY account, reference`,
		objectionsByID:  `SELECT ` + objectionCols + ` FROM ` + s + `.objections WHERE account = ANY($1) ORDER BY account, reference`,
		logEntries:      `SELECT pos, change::text FROM ` + s + `.changes WHERE pos > $1 ORDER BY pos LIMIT $2`,
		readHashes:      `SELECT idx, hash FROM ` + s + `.loghashes WHERE idx = ANY($1)`,
		countHashes:     `SELECT coalesce(max(idx) + 1, 0) FROM ` + s + `.loghashes`,
		insertHashes:    `INSERT INTO ` + s + `.loghashes (idx, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[]) ON CONFLICT (idx) DO NOTHING`,
		logStart:        `SELECT value::bigint FROM ` + s + `.meta WHERE key = 'logstart'`,
	}
}
