-- The assessment service's schema: cases registered from intake's events,
-- their history, applied event ids, the decision feed sequence and the
-- outbox (decisions announced to intake).

CREATE TABLE outbox (
  id           bigserial PRIMARY KEY,
  event_id     uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  topic        text NOT NULL,
  payload      bytea NOT NULL,
  traceparent  text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  attempts     int NOT NULL DEFAULT 0,
  last_error   text
);
CREATE INDEX outbox_undelivered ON outbox (id) WHERE delivered_at IS NULL;

-- Dimension values are the proto enum numbers (smallint keeps the report's
-- GROUP BY over a million rows cheap); 0 of outcome means "no outcome".
CREATE TABLE cases (
  case_ref              text PRIMARY KEY,
  region                smallint NOT NULL CHECK (region BETWEEN 1 AND 5),
  application           text NOT NULL,
  submitted_on          date NOT NULL,
  drug_name             text NOT NULL,
  atc_code              text NOT NULL,
  indication            text NOT NULL,
  icd10                 text NOT NULL DEFAULT '',
  cancer                boolean NOT NULL,
  marketed_dk           boolean NOT NULL,
  medicinraadet_status  smallint NOT NULL CHECK (medicinraadet_status BETWEEN 1 AND 4),
  ema_status            smallint NOT NULL CHECK (ema_status BETWEEN 1 AND 3),
  state                 smallint NOT NULL CHECK (state BETWEEN 1 AND 4),
  assignee              text NOT NULL DEFAULT '',
  -- Decision (state 3), or not_concluded (3) for a withdrawal (state 4).
  outcome               smallint NOT NULL DEFAULT 0 CHECK (outcome BETWEEN 0 AND 3),
  reason                text NOT NULL DEFAULT '',
  decided_on            date,
  decided_by            text NOT NULL DEFAULT '',
  decided_at            timestamptz,
  on_behalf             boolean NOT NULL DEFAULT false,
  decision_imported     boolean NOT NULL DEFAULT false,
  decision_request_id   text,
  -- When the outcome became known, for the report's as_of: the recording
  -- time of a live decision or withdrawal, the decision date of an import.
  known_at              timestamptz,
  withdrawn_on          date,
  -- Position in the national decision feed (live decisions only).
  decision_seq          bigint UNIQUE,
  registered_by         text NOT NULL,
  registered_at         timestamptz NOT NULL,
  updated_by            text NOT NULL,
  updated_at            timestamptz NOT NULL
);
CREATE INDEX cases_submitted ON cases (submitted_on, case_ref);
CREATE INDEX cases_region_submitted ON cases (region, submitted_on, case_ref);
CREATE INDEX cases_precedents ON cases (atc_code text_pattern_ops, icd10 text_pattern_ops) WHERE state = 3;

CREATE TABLE case_events (
  id            bigserial PRIMARY KEY,
  case_ref      text NOT NULL REFERENCES cases (case_ref),
  kind          smallint NOT NULL,
  principal_id  text NOT NULL,
  at            timestamptz NOT NULL,
  detail        text NOT NULL DEFAULT ''
);
CREATE INDEX case_events_case ON case_events (case_ref, id);

-- Intake events already applied (idempotency by event id).
CREATE TABLE applied_events (
  event_id    text PRIMARY KEY,
  case_ref    text NOT NULL,
  applied_at  timestamptz NOT NULL
);

CREATE SEQUENCE decision_seq;
