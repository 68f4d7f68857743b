-- outbox_decoder's per-relation cache (column list, output functions, the table filter decision,
-- and the last relation tried before the hash): every change below is decoded by ONE
-- pg_logical_slot_get_changes call, so one cache sees outbox.events change under it (ALTER ...
-- ADD COLUMN, DROP COLUMN, RENAME COLUMN, a rename of the table out of and back into the preset's
-- filter, DROP/CREATE EXTENSION: a new outbox.events) and must answer for each change with the
-- relation as it was then.
SET client_min_messages = warning;
CREATE TABLE dec_rc_other (id int PRIMARY KEY);
SELECT 'init' FROM pg_create_logical_replication_slot('dec_rc', 'outbox_decoder');
CREATE FUNCTION pg_temp.ev(n int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO dec_rc_other VALUES (n);   -- a change the preset drops, between two events
  INSERT INTO outbox.events (event_type, payload) VALUES ('e' || n, '{}');
$$;

SELECT pg_temp.ev(1);
ALTER TABLE outbox.events ADD COLUMN extra text DEFAULT 'added';
SELECT pg_temp.ev(2);
ALTER TABLE outbox.events DROP COLUMN extra;              -- same number of attributes
SELECT pg_temp.ev(3);
ALTER TABLE outbox.events RENAME COLUMN routing_key TO rk;   -- same attributes, a new name
SELECT pg_temp.ev(4);
ALTER TABLE outbox.events RENAME COLUMN rk TO routing_key;
-- DDL inside the transaction that writes events before and after it
BEGIN;
SELECT pg_temp.ev(5);
ALTER TABLE outbox.events ADD COLUMN extra2 int DEFAULT 7;
SELECT pg_temp.ev(6);
COMMIT;
ALTER TABLE outbox.events DROP COLUMN extra2;
-- out of the preset's filter (outbox.events) and back in
ALTER TABLE outbox.events RENAME TO events_away;
INSERT INTO outbox.events_away (event_type, payload) VALUES ('e7.not.written', '{}');
ALTER TABLE outbox.events_away RENAME TO events;
SELECT pg_temp.ev(8);
-- a new outbox.events (a new relation id), same session, same slot
DROP EXTENSION outbox CASCADE;
CREATE EXTENSION outbox;
SELECT pg_temp.ev(9);
SELECT outbox_emit('e10', '{"n": 10}') IS NOT NULL AS ok;

-- one decoding pass over all of it
SELECT data::jsonb->>'action' AS action,
       data::jsonb->>'table' AS tbl,
       (SELECT c->>'value' FROM jsonb_array_elements(data::jsonb->'columns') c WHERE c->>'name' = 'event_type') AS event_type,
       jsonb_array_length(data::jsonb->'columns') AS ncols,
       (SELECT string_agg(c->>'name' || '=' || coalesce(c->>'value', 'null'), ',')
          FROM jsonb_array_elements(data::jsonb->'columns') c
         WHERE c->>'name' IN ('extra', 'extra2', 'rk')) AS changed_columns
  FROM pg_logical_slot_get_changes('dec_rc', NULL, NULL, 'outbox', '1', 'include-xids', '0', 'include-timestamp', '0');

SELECT pg_drop_replication_slot('dec_rc');
DROP TABLE dec_rc_other;
