CREATE SCHEMA IF NOT EXISTS outbox;
CREATE TABLE IF NOT EXISTS outbox.events (id uuid PRIMARY KEY, aggregate_type text, aggregate_id text,
  event_type text NOT NULL, payload jsonb NOT NULL, headers jsonb NOT NULL DEFAULT '{}', exchange text,
  routing_key text, correlation_id text, causation_id text, created_at timestamptz NOT NULL DEFAULT now());
DROP SCHEMA IF EXISTS w36 CASCADE; CREATE SCHEMA w36; SET search_path = w36;
CREATE TABLE t1 (id int PRIMARY KEY, v text);
INSERT INTO t1 VALUES (1, 'no event here');
BEGIN;
INSERT INTO outbox.events (id, aggregate_type, aggregate_id, event_type, payload, created_at)
  VALUES ('00000000-0000-7000-8000-000000000001', 'order', 'o-1', 'created', '{"total": 10}', '2020-01-01 00:00:00+00');
INSERT INTO t1 VALUES (2, 'with event');
INSERT INTO outbox.events (id, aggregate_type, aggregate_id, event_type, payload, headers, exchange, routing_key, created_at)
  VALUES ('00000000-0000-7000-8000-000000000002', 'order', NULL, 'paid', '{"é": "\u00e9"}', '{"h": 1}', 'ex', 'rk', '2020-01-01 00:00:01+00');
COMMIT;
UPDATE outbox.events SET event_type = 'changed' WHERE id = '00000000-0000-7000-8000-000000000001';
DELETE FROM outbox.events WHERE id IN ('00000000-0000-7000-8000-000000000001', '00000000-0000-7000-8000-000000000002');
