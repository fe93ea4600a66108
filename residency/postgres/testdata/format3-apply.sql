-- The apply statement of format 3 (domicile at d4c4058, residency/postgres/statements.go),
-- for schema "domicile": what a Router of format 3 still running sends to
-- tables a Router of format 4 upgraded. Frozen: tests run it as it was.
WITH
			e AS (INSERT INTO "domicile".events (account, version, prev, time, time_ns, kind, source, target, rule, reference, move_id)
				SELECT account, version, NULLIF(version - 1, 0), time, time_ns, kind, source, target, rule, reference, move_id
				FROM json_to_recordset($1::json) AS r(account text, version bigint, time timestamptz, time_ns smallint, kind text,
					source text, target text, rule text, reference text, move_id text)
				RETURNING 1),
			a AS (INSERT INTO "domicile".accounts (id, version, country, region, datacenter, provider, backup, rule, transfer,
		created, created_ns, updated, updated_ns,
		move_id, move_from, move_to, move_region, move_transfer, move_began, move_began_ns)
				SELECT id, version, country, region, datacenter, provider, backup, rule, transfer,
		created, created_ns, updated, updated_ns,
		move_id, move_from, move_to, move_region, move_transfer, move_began, move_began_ns FROM json_to_recordset($2::json) AS r(id text, version bigint, country text, region text, datacenter text, provider text, backup text, rule text, transfer text,
		created timestamptz, created_ns smallint, updated timestamptz, updated_ns smallint,
		move_id text, move_from text, move_to text, move_region text, move_transfer text, move_began timestamptz, move_began_ns smallint)
				ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, country = EXCLUDED.country, region = EXCLUDED.region,
					datacenter = EXCLUDED.datacenter, provider = EXCLUDED.provider, backup = EXCLUDED.backup, rule = EXCLUDED.rule,
					transfer = EXCLUDED.transfer, created = EXCLUDED.created, created_ns = EXCLUDED.created_ns,
					updated = EXCLUDED.updated, updated_ns = EXCLUDED.updated_ns, move_id = EXCLUDED.move_id,
					move_from = EXCLUDED.move_from, move_to = EXCLUDED.move_to, move_region = EXCLUDED.move_region,
					move_transfer = EXCLUDED.move_transfer, move_began = EXCLUDED.move_began, move_began_ns = EXCLUDED.move_began_ns
				RETURNING 1),
			g AS (INSERT INTO "domicile".agreements (account, reference, to_region, expires, expires_ns, granted, granted_ns, revoked, revoked_ns)
				SELECT account, reference, to_region, expires, expires_ns, granted, granted_ns, revoked, revoked_ns FROM json_to_recordset($3::json) AS r(account text, reference text, to_region text,
					expires timestamptz, expires_ns smallint, granted timestamptz, granted_ns smallint, revoked timestamptz, revoked_ns smallint)
				ON CONFLICT (account, reference) DO UPDATE SET to_region = EXCLUDED.to_region, expires = EXCLUDED.expires,
					expires_ns = EXCLUDED.expires_ns, granted = EXCLUDED.granted, granted_ns = EXCLUDED.granted_ns,
					revoked = EXCLUDED.revoked, revoked_ns = EXCLUDED.revoked_ns
				RETURNING 1),
			k AS (INSERT INTO "domicile".consents (account, reference, subprocessor, expires, expires_ns, granted, granted_ns, revoked, revoked_ns)
				SELECT account, reference, subprocessor, expires, expires_ns, granted, granted_ns, revoked, revoked_ns FROM json_to_recordset($8::json) AS r(account text, reference text, subprocessor text,
					expires timestamptz, expires_ns smallint, granted timestamptz, granted_ns smallint, revoked timestamptz, revoked_ns smallint)
				ON CONFLICT (account, reference) DO UPDATE SET subprocessor = EXCLUDED.subprocessor, expires = EXCLUDED.expires,
					expires_ns = EXCLUDED.expires_ns, granted = EXCLUDED.granted, granted_ns = EXCLUDED.granted_ns,
					revoked = EXCLUDED.revoked, revoked_ns = EXCLUDED.revoked_ns
				RETURNING 1),
			o AS (INSERT INTO "domicile".objections (account, reference, subprocessor, raised, raised_ns, withdrawn, withdrawn_ns)
				SELECT account, reference, subprocessor, raised, raised_ns, withdrawn, withdrawn_ns FROM json_to_recordset($9::json) AS r(account text, reference text, subprocessor text,
					raised timestamptz, raised_ns smallint, withdrawn timestamptz, withdrawn_ns smallint)
				ON CONFLICT (account, reference) DO UPDATE SET subprocessor = EXCLUDED.subprocessor, raised = EXCLUDED.raised,
					raised_ns = EXCLUDED.raised_ns, withdrawn = EXCLUDED.withdrawn, withdrawn_ns = EXCLUDED.withdrawn_ns
				RETURNING 1),
			d AS (INSERT INTO "domicile".datacenters (id, status, changed, changed_ns, version)
				SELECT id, status, changed, changed_ns, n FROM json_to_recordset($4::json) AS r(id text, status text, changed timestamptz, changed_ns smallint, n bigint)
				ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, changed = EXCLUDED.changed, changed_ns = EXCLUDED.changed_ns,
					version = "domicile".datacenters.version + EXCLUDED.version
				RETURNING 1),
			h AS (UPDATE "domicile".head SET pos = pos + $6
				WHERE (SELECT count(*) FROM e) + (SELECT count(*) FROM a) + (SELECT count(*) FROM g)
					+ (SELECT count(*) FROM k) + (SELECT count(*) FROM o) + (SELECT count(*) FROM d) >= 0
				RETURNING pos),
			c AS (INSERT INTO "domicile".changes (pos, change)
				SELECT h.pos - $6 + l.ord, l.value FROM h, json_array_elements($5::json) WITH ORDINALITY AS l(value, ord))
			SELECT pos, pg_notify($7, pos::text) FROM h
