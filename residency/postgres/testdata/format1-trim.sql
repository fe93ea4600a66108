-- The Trim statement of format 1 (domicile at 8e3713f, residency/postgres/statements.go),
-- for schema "domicile": what a Router's Store of format 1 still running sends
-- when its Trim is called after the upgrade. Frozen: tests run it as it was.
WITH h AS (UPDATE "domicile".head SET trimmed = greatest(trimmed, least($1, pos)) RETURNING trimmed)
			DELETE FROM "domicile".changes WHERE pos <= (SELECT trimmed FROM h)
