-- API keys are stored only as the SHA-256 of the key; the key itself is shown
-- once, when it is created.
CREATE TABLE api_keys (
  seq          bigserial PRIMARY KEY,
  key_id       text NOT NULL UNIQUE,
  key_hash     text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
  key_prefix   text NOT NULL,
  principal_id text NOT NULL CHECK (principal_id <> ''),
  roles        text NOT NULL CHECK (roles <> ''),   -- role names, comma-separated
  region       text NOT NULL DEFAULT '',            -- slug, set iff roles has 'region'
  display_name text NOT NULL DEFAULT '',
  request_id   text UNIQUE,                         -- idempotent creates
  created_at   timestamptz NOT NULL,
  created_by   text NOT NULL,
  revoked_at   timestamptz,
  revoked_by   text
);
CREATE INDEX api_keys_principal ON api_keys (principal_id, seq DESC);

-- One row per call through the gateway; never a request or response body.
CREATE TABLE audit_log (
  id           bigserial PRIMARY KEY,
  at           timestamptz NOT NULL,
  principal_id text NOT NULL,
  method       text NOT NULL,
  resource     text NOT NULL,
  status_code  smallint NOT NULL,
  latency_us   bigint NOT NULL,
  request_id   text NOT NULL,
  peer         text NOT NULL
);
CREATE INDEX audit_log_principal ON audit_log (principal_id, id DESC);
CREATE INDEX audit_log_method ON audit_log (method, id DESC);
CREATE INDEX audit_log_at ON audit_log (at);
