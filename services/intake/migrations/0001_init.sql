-- Intake's schema: applications, investigator-initiated protocols, the
-- idempotency keys of creates, applied decision events and the outbox.

-- The transactional outbox, copied from common/db/outbox.sql.
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
-- The relay reads undelivered rows in id order.
CREATE INDEX outbox_undelivered ON outbox (id) WHERE delivered_at IS NULL;

CREATE SEQUENCE application_number;

CREATE TABLE applications (
  case_ref text PRIMARY KEY,
  region text NOT NULL CHECK (region IN ('hovedstaden', 'midtjylland', 'syddanmark', 'sjaelland', 'nordjylland')),
  region_ref text,
  submitted_on date NOT NULL,
  drug_name text NOT NULL,
  atc_code text NOT NULL,
  indication text NOT NULL,
  icd10 text NOT NULL DEFAULT '',
  cancer boolean NOT NULL,
  marketed_dk boolean NOT NULL,
  medicinraadet_status text NOT NULL
    CHECK (medicinraadet_status IN ('not_assessed', 'under_assessment', 'rejected', 'recommended_outside_criteria')),
  ema_status text NOT NULL CHECK (ema_status IN ('on_label', 'off_label', 'unknown')),
  outcome text CHECK (outcome IN ('recommended', 'not_recommended', 'not_concluded')),
  decided_on date,
  note text NOT NULL DEFAULT '',
  state text NOT NULL CHECK (state IN ('open', 'decided', 'withdrawn')),
  source text NOT NULL CHECK (source IN ('submitted', 'imported')),
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  withdrawn_by text,
  withdrawn_at timestamptz,
  withdraw_reason text,
  decided_by text,
  decided_at timestamptz,
  decision_reason text,
  updated_at timestamptz NOT NULL,
  -- A region's own reference identifies one application of that region.
  CONSTRAINT applications_region_ref UNIQUE (region, region_ref)
);
-- ListApplications' order (newest first), nationally and per region.
CREATE INDEX applications_by_date ON applications (submitted_on DESC, case_ref DESC);
CREATE INDEX applications_by_region_date ON applications (region, submitted_on DESC, case_ref DESC);
CREATE INDEX applications_by_atc ON applications (atc_code text_pattern_ops);

-- request_id of creates, per caller: a retry returns the first result.
CREATE TABLE create_requests (
  kind text NOT NULL,            -- 'application', 'protocol', 'protocol_note'
  principal_id text NOT NULL,
  request_id text NOT NULL,
  resource text NOT NULL,        -- case_ref / protocol id
  created_at timestamptz NOT NULL,
  PRIMARY KEY (kind, principal_id, request_id)
);

-- Decision events from assessment already applied (idempotency by event id).
CREATE TABLE applied_decisions (
  event_id text PRIMARY KEY,
  case_ref text NOT NULL,
  applied_at timestamptz NOT NULL
);

CREATE SEQUENCE protocol_number;

CREATE TABLE protocols (
  id text PRIMARY KEY,
  title text NOT NULL,
  region text NOT NULL,
  department text NOT NULL,
  drug_name text NOT NULL,
  atc_code text NOT NULL,
  indication text NOT NULL,
  icd10 text NOT NULL DEFAULT '',
  presented_on date NOT NULL,
  state text NOT NULL CHECK (state IN ('presented', 'under_follow_up', 'closed')),
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX protocols_by_date ON protocols (presented_on DESC, id DESC);

CREATE TABLE protocol_notes (
  id bigserial PRIMARY KEY,
  protocol_id text NOT NULL REFERENCES protocols (id),
  text text NOT NULL,
  noted_on date NOT NULL,
  state text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX protocol_notes_by_protocol ON protocol_notes (protocol_id, id);
