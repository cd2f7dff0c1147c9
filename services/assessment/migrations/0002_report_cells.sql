-- Pre-aggregated counts for the annual report, kept current by statement-level
-- triggers in the same transaction as every change of `cases`, so that a
-- report over a million cases reads a few thousand cells instead of a million
-- rows. The report query corrects them for as_of with the few cases that were
-- not yet submitted or not yet decided at as_of (assessment_store.cc).

-- Cases per submission year and every categorical dimension; `outcome` is the
-- case's current outcome (0: open).
CREATE TABLE report_category_cells (
  year                  int NOT NULL,
  region                smallint NOT NULL,
  outcome               smallint NOT NULL,
  cancer                boolean NOT NULL,
  marketed_dk           boolean NOT NULL,
  medicinraadet_status  smallint NOT NULL,
  ema_status            smallint NOT NULL,
  n                     bigint NOT NULL,
  PRIMARY KEY (year, region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status)
);

-- Cases per submission year, region and name: kind 1 drug (cancer = false),
-- kind 2 indication (split by cancer for the non-cancer ranking).
CREATE TABLE report_name_cells (
  year    int NOT NULL,
  region  smallint NOT NULL,
  kind    smallint NOT NULL,
  name    text NOT NULL,
  cancer  boolean NOT NULL,
  n       bigint NOT NULL,
  PRIMARY KEY (year, region, kind, name, cancer)
);

CREATE INDEX cases_known_at ON cases (known_at) WHERE known_at IS NOT NULL;

-- Adds (+1) the new rows and subtracts (-1) the old rows of a statement.
-- Rows are upserted in key order so concurrent writers lock cells in the
-- same order.
CREATE FUNCTION report_cells_apply() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO report_category_cells AS c
      (year, region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status, n)
    SELECT extract(year FROM submitted_on)::int, region, outcome, cancer, marketed_dk,
           medicinraadet_status, ema_status, count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (year, region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status)
    DO UPDATE SET n = c.n + EXCLUDED.n;
    INSERT INTO report_name_cells AS c (year, region, kind, name, cancer, n)
    SELECT * FROM (
      SELECT extract(year FROM submitted_on)::int, region, 1::smallint, drug_name, false, count(*)
      FROM new_rows GROUP BY 1, 2, 4
      UNION ALL
      SELECT extract(year FROM submitted_on)::int, region, 2::smallint, indication, cancer, count(*)
      FROM new_rows GROUP BY 1, 2, 4, 5) x
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (year, region, kind, name, cancer) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSIF TG_OP = 'UPDATE' THEN
    -- Only outcome changes move cases between cells; names never change.
    INSERT INTO report_category_cells AS c
      (year, region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status, n)
    SELECT year, region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status, sum(d)
    FROM (
      SELECT extract(year FROM submitted_on)::int AS year, region, outcome, cancer, marketed_dk,
             medicinraadet_status, ema_status, -1 AS d FROM old_rows
      UNION ALL
      SELECT extract(year FROM submitted_on)::int, region, outcome, cancer, marketed_dk,
             medicinraadet_status, ema_status, 1 FROM new_rows) x
    GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (year, region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status)
    DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSE
    UPDATE report_category_cells c SET n = c.n - o.n
    FROM (SELECT extract(year FROM submitted_on)::int AS year, region, outcome, cancer, marketed_dk,
                 medicinraadet_status, ema_status, count(*) AS n
          FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6, 7) o
    WHERE (c.year, c.region, c.outcome, c.cancer, c.marketed_dk, c.medicinraadet_status, c.ema_status) =
          (o.year, o.region, o.outcome, o.cancer, o.marketed_dk, o.medicinraadet_status, o.ema_status);
    UPDATE report_name_cells c SET n = c.n - o.n
    FROM (SELECT extract(year FROM submitted_on)::int AS year, region, 1::smallint AS kind,
                 drug_name AS name, false AS cancer, count(*) AS n FROM old_rows GROUP BY 1, 2, 4
          UNION ALL
          SELECT extract(year FROM submitted_on)::int, region, 2::smallint, indication, cancer, count(*)
          FROM old_rows GROUP BY 1, 2, 4, 5) o
    WHERE (c.year, c.region, c.kind, c.name, c.cancer) = (o.year, o.region, o.kind, o.name, o.cancer);
  END IF;
  RETURN NULL;
END
$fn$;

CREATE TRIGGER cases_report_insert AFTER INSERT ON cases
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_cells_apply();
CREATE TRIGGER cases_report_update AFTER UPDATE ON cases
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_cells_apply();
CREATE TRIGGER cases_report_delete AFTER DELETE ON cases
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION report_cells_apply();

-- Cells for the cases stored before this migration.
INSERT INTO report_category_cells
SELECT extract(year FROM submitted_on)::int, region, outcome, cancer, marketed_dk,
       medicinraadet_status, ema_status, count(*)
FROM cases GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO report_name_cells
SELECT extract(year FROM submitted_on)::int, region, 1, drug_name, false, count(*) FROM cases GROUP BY 1, 2, 4
UNION ALL
SELECT extract(year FROM submitted_on)::int, region, 2, indication, cancer, count(*) FROM cases GROUP BY 1, 2, 4, 5;
