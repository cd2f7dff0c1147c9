-- The transactional outbox (common/db/outbox.h). Copy into the service's
-- first migration (services/<svc>/migrations/0001_*.sql); the relay expects
-- exactly these columns.
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
