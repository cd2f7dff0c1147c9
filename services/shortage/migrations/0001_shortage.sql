-- The shortage service's schema: shortages and their history, regional
-- positions, allocations, guidance versions, meetings, actions, and the
-- event log behind WatchShortages. Enum columns hold the proto enum numbers.

CREATE TABLE shortages (
  id              text PRIMARY KEY,          -- {shortage_id} of shortages/{shortage_id}
  drug_name       text NOT NULL,
  atc_code        text NOT NULL,
  strength        text NOT NULL,
  form            text NOT NULL,
  pack            text NOT NULL,
  announced_on    date NOT NULL,
  expected_start  date,
  expected_end    date,
  status          smallint NOT NULL CHECK (status BETWEEN 1 AND 4),
  criticality     smallint NOT NULL CHECK (criticality BETWEEN 1 AND 4),
  source          text NOT NULL,
  notes           text NOT NULL DEFAULT '',
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL,
  updated_by      text NOT NULL,
  updated_at      timestamptz NOT NULL,
  request_id      text UNIQUE,
  CHECK (expected_end IS NULL OR expected_start IS NULL OR expected_end >= expected_start)
);
-- ListShortages: newest announcement first, keyset (announced_on, id).
CREATE INDEX shortages_by_announced ON shortages (announced_on DESC, id DESC);
CREATE INDEX shortages_by_atc ON shortages (atc_code text_pattern_ops);
-- Server-assigned ids: s-000001, s-000002, ...
CREATE SEQUENCE shortage_number;

CREATE TABLE shortage_history (
  id              bigserial PRIMARY KEY,
  shortage_id     text NOT NULL REFERENCES shortages (id),
  kind            smallint NOT NULL,
  from_status     smallint NOT NULL DEFAULT 0,
  to_status       smallint NOT NULL DEFAULT 0,
  changed_fields  text[] NOT NULL DEFAULT '{}',
  reason          text NOT NULL DEFAULT '',
  changed_by      text NOT NULL,
  changed_at      timestamptz NOT NULL
);
CREATE INDEX shortage_history_by_shortage ON shortage_history (shortage_id, id);

-- Every report is kept; the current position of a region is its newest as_of.
CREATE TABLE positions (
  id                             bigserial PRIMARY KEY,
  shortage_id                    text NOT NULL REFERENCES shortages (id),
  region                         smallint NOT NULL CHECK (region BETWEEN 1 AND 5),
  stock_packs                    bigint NOT NULL CHECK (stock_packs BETWEEN 0 AND 10000000),
  weekly_consumption_millipacks  bigint NOT NULL CHECK (weekly_consumption_millipacks BETWEEN 0 AND 1000000000),
  patients_on_treatment          integer NOT NULL CHECK (patients_on_treatment BETWEEN 0 AND 1000000),
  as_of                          timestamptz NOT NULL,
  notes                          text NOT NULL DEFAULT '',
  reported_by                    text NOT NULL,
  reported_at                    timestamptz NOT NULL,
  request_id                     text UNIQUE
);
CREATE INDEX positions_by_region ON positions (shortage_id, region, as_of DESC, id DESC);
CREATE INDEX positions_by_as_of ON positions (shortage_id, as_of DESC, id DESC);

CREATE TABLE allocations (
  id                 bigserial PRIMARY KEY,
  shortage_id        text NOT NULL REFERENCES shortages (id),
  state              smallint NOT NULL CHECK (state BETWEEN 1 AND 2),
  quantity_packs     bigint NOT NULL CHECK (quantity_packs > 0),
  source             smallint NOT NULL,
  source_note        text NOT NULL DEFAULT '',
  reasoning          text[] NOT NULL,
  based_on_positions bigint[] NOT NULL,
  amended            boolean NOT NULL DEFAULT false,
  amendment_reason   text NOT NULL DEFAULT '',
  proposed_by        text NOT NULL,
  proposed_at        timestamptz NOT NULL,
  approved_by        text,
  approved_at        timestamptz,
  request_id         text UNIQUE
);
CREATE INDEX allocations_by_shortage ON allocations (shortage_id, id DESC);

CREATE TABLE allocation_lines (
  allocation_id                  bigint NOT NULL REFERENCES allocations (id),
  region                         smallint NOT NULL CHECK (region BETWEEN 1 AND 5),
  packs                          bigint NOT NULL CHECK (packs >= 0),
  proposed_packs                 bigint NOT NULL CHECK (proposed_packs >= 0),
  minimum_packs                  bigint NOT NULL CHECK (minimum_packs >= 0),
  stock_packs_before             bigint NOT NULL,
  weekly_consumption_millipacks  bigint NOT NULL,
  patients_on_treatment          integer NOT NULL,
  PRIMARY KEY (allocation_id, region)
);

-- Immutable versions; the content (alternatives, priority groups,
-- specialists) as the Guidance message in proto3 JSON.
CREATE TABLE guidance (
  shortage_id     text NOT NULL REFERENCES shortages (id),
  version         integer NOT NULL CHECK (version >= 1),
  content         jsonb NOT NULL,
  published_by    text NOT NULL,
  published_at    timestamptz NOT NULL,
  request_id      text UNIQUE,
  PRIMARY KEY (shortage_id, version)
);

CREATE TABLE meetings (
  id              bigserial PRIMARY KEY,
  shortage_id     text NOT NULL REFERENCES shortages (id),
  meeting_date    date NOT NULL,
  title           text NOT NULL,
  participants    text[] NOT NULL,
  decisions       text[] NOT NULL,
  minutes         text NOT NULL DEFAULT '',
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL,
  request_id      text UNIQUE
);
CREATE INDEX meetings_by_date ON meetings (shortage_id, meeting_date DESC, id DESC);

CREATE TABLE actions (
  id              bigserial PRIMARY KEY,
  shortage_id     text NOT NULL REFERENCES shortages (id),
  title           text NOT NULL,
  description     text NOT NULL DEFAULT '',
  owner           text NOT NULL,
  due_on          date,
  status          smallint NOT NULL CHECK (status BETWEEN 1 AND 4),
  meeting_id      bigint REFERENCES meetings (id),
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL,
  updated_by      text NOT NULL,
  updated_at      timestamptz NOT NULL,
  request_id      text UNIQUE
);
CREATE INDEX actions_by_due ON actions (shortage_id, due_on NULLS LAST, id);

-- The live feed. Sequence numbers are handed out by a single-row counter
-- that each writing transaction increments as its last statement: the row
-- lock is held until COMMIT, so the next writer gets its number only after
-- this one committed (or rolled back, returning the number). Numbers are
-- therefore gap-free and in commit order, which a nextval() taken at insert
-- would not be.
CREATE TABLE event_counter (
  singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  last_sequence  bigint NOT NULL
);
INSERT INTO event_counter (singleton, last_sequence) VALUES (true, 0);

CREATE TABLE events (
  sequence     bigint PRIMARY KEY,
  type         smallint NOT NULL,
  shortage_id  text NOT NULL,
  atc_code     text NOT NULL,
  region       smallint NOT NULL DEFAULT 0,   -- for position events, else 0
  payload      bytea NOT NULL,                -- medkoord.shortage.v1.ShortageEvent
  created_at   timestamptz NOT NULL
);
