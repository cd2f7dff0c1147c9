-- Report cells by month, so that a report with an as_of inside the year reads
-- cells plus the cases of as_of's own month, instead of every case submitted
-- or decided after as_of (0002's correction scans). Replaces 0002's cells.
--
-- For as_of at instant T on Danish date D, with M0 the first day of D's month,
-- a case of the report year counts when submitted_on <= D, with its outcome
-- when known_at <= T, else as open. Let e = greatest(Danish date of known_at,
-- submitted_on) for a case with an outcome (e >= submitted_on always):
--   e <  D  -> counted, outcome known;
--   e =  D  -> submitted_on <= D; known iff known_at <= T (checked per case);
--   e >  D  -> either not counted (submitted after D) or counted as open.
-- So (assessment_store.cc, "report_*"):
--   all cases submitted <= D  = submitted cells of months < M0
--                               + cases submitted in [M0, D]       (as open)
--   known outcomes             = known cells of e-months < M0
--                               + cases with e in [M0, D] known at T
--                               (each moved from open to its outcome).

DROP TRIGGER cases_report_insert ON cases;
DROP TRIGGER cases_report_update ON cases;
DROP TRIGGER cases_report_delete ON cases;
DROP FUNCTION report_cells_apply();
DROP TABLE report_category_cells;
DROP TABLE report_name_cells;
DROP INDEX cases_known_at;

-- The Danish date from which a case's outcome counts (NULL: open). An
-- outcome without a recording time counts from the submission date.
CREATE FUNCTION report_known_on(outcome smallint, known_at timestamptz, submitted_on date) RETURNS date
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE WHEN outcome <> 0
              THEN greatest((known_at AT TIME ZONE 'Europe/Copenhagen')::date, submitted_on) END;

-- Cases per submission month and every categorical dimension but outcome.
CREATE TABLE report_submitted_cells (
  year                  int NOT NULL,
  month                 date NOT NULL,  -- first day of the submission month
  region                smallint NOT NULL,
  cancer                boolean NOT NULL,
  marketed_dk           boolean NOT NULL,
  medicinraadet_status  smallint NOT NULL,
  ema_status            smallint NOT NULL,
  n                     bigint NOT NULL,
  PRIMARY KEY (year, month, region, cancer, marketed_dk, medicinraadet_status, ema_status)
);

-- Cases with an outcome per submission year, month of report_known_on and
-- every categorical dimension.
CREATE TABLE report_known_cells (
  year                  int NOT NULL,
  month                 date NOT NULL,  -- first day of the month of report_known_on
  region                smallint NOT NULL,
  outcome               smallint NOT NULL,
  cancer                boolean NOT NULL,
  marketed_dk           boolean NOT NULL,
  medicinraadet_status  smallint NOT NULL,
  ema_status            smallint NOT NULL,
  n                     bigint NOT NULL,
  PRIMARY KEY (year, month, region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status)
);

-- Cases per submission month, region and name: kind 1 drug (cancer =
-- false), kind 2 indication (split by cancer for the non-cancer ranking).
CREATE TABLE report_name_month_cells (
  year    int NOT NULL,
  month   date NOT NULL,
  region  smallint NOT NULL,
  kind    smallint NOT NULL,
  name    text NOT NULL,
  cancer  boolean NOT NULL,
  n       bigint NOT NULL,
  PRIMARY KEY (year, month, region, kind, name, cancer)
);

-- The cases decided in as_of's month up to as_of.
CREATE INDEX cases_report_known_on ON cases (report_known_on(outcome, known_at, submitted_on))
  WHERE outcome <> 0;

-- Adds the statement's new rows (+1) and subtracts its old rows (-1); an
-- UPDATE that changes no cell's count writes nothing. Cells are upserted in
-- key order so concurrent writers lock them in the same order. The delta
-- source is chosen per operation and spliced into one set of statements.
CREATE FUNCTION report_cells_apply() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  cols constant text := 'region, submitted_on, drug_name, indication, cancer, marketed_dk, '
                        'medicinraadet_status, ema_status, outcome, known_at';
  delta text;
BEGIN
  delta := CASE TG_OP
    WHEN 'INSERT' THEN format('SELECT %s, 1 AS d FROM new_rows', cols)
    WHEN 'DELETE' THEN format('SELECT %s, -1 AS d FROM old_rows', cols)
    ELSE format('SELECT %1$s, -1 AS d FROM old_rows UNION ALL SELECT %1$s, 1 FROM new_rows', cols)
  END;
  EXECUTE format($q$
    INSERT INTO report_submitted_cells AS c
      (year, month, region, cancer, marketed_dk, medicinraadet_status, ema_status, n)
    SELECT extract(year FROM submitted_on)::int, date_trunc('month', submitted_on)::date, region, cancer,
           marketed_dk, medicinraadet_status, ema_status, sum(d)
    FROM (%s) x GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (year, month, region, cancer, marketed_dk, medicinraadet_status, ema_status)
    DO UPDATE SET n = c.n + EXCLUDED.n$q$, delta);
  EXECUTE format($q$
    INSERT INTO report_known_cells AS c
      (year, month, region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status, n)
    SELECT extract(year FROM submitted_on)::int,
           date_trunc('month', report_known_on(outcome, known_at, submitted_on))::date, region, outcome,
           cancer, marketed_dk, medicinraadet_status, ema_status, sum(d)
    FROM (%s) x WHERE outcome <> 0
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT (year, month, region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status)
    DO UPDATE SET n = c.n + EXCLUDED.n$q$, delta);
  EXECUTE format($q$
    INSERT INTO report_name_month_cells AS c (year, month, region, kind, name, cancer, n)
    SELECT extract(year FROM submitted_on)::int, date_trunc('month', submitted_on)::date, region, kind, name,
           cancer, sum(d)
    FROM (SELECT submitted_on, region, 1::smallint AS kind, drug_name AS name, false AS cancer, d FROM (%1$s) x
          UNION ALL
          SELECT submitted_on, region, 2::smallint, indication, cancer, d FROM (%1$s) y) z
    GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (year, month, region, kind, name, cancer) DO UPDATE SET n = c.n + EXCLUDED.n$q$, delta);
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
INSERT INTO report_submitted_cells
SELECT extract(year FROM submitted_on)::int, date_trunc('month', submitted_on)::date, region, cancer, marketed_dk,
       medicinraadet_status, ema_status, count(*)
FROM cases GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO report_known_cells
SELECT extract(year FROM submitted_on)::int, date_trunc('month', report_known_on(outcome, known_at, submitted_on))::date,
       region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status, count(*)
FROM cases WHERE outcome <> 0 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
INSERT INTO report_name_month_cells
SELECT extract(year FROM submitted_on)::int, date_trunc('month', submitted_on)::date, region, 1, drug_name, false,
       count(*)
FROM cases GROUP BY 1, 2, 3, 5
UNION ALL
SELECT extract(year FROM submitted_on)::int, date_trunc('month', submitted_on)::date, region, 2, indication, cancer,
       count(*)
FROM cases GROUP BY 1, 2, 3, 5, 6;
