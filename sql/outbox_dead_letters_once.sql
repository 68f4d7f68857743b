-- One dead letter per slot and event (0.3): the relay writes it with ON CONFLICT DO NOTHING, so a
-- relay restarted before it acknowledged the event's transaction does not write it again. The
-- update from 0.2 removes the duplicates a 0.2 relay wrote (the oldest row is kept, and takes
-- over a replay only a later one had), and gives the 0.1 events their txid (slot recovery).
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\set regress_db :DBNAME
DROP DATABASE IF EXISTS outbox_dl_once;
CREATE DATABASE outbox_dl_once;
\c outbox_dl_once
SET client_min_messages = warning;
\pset null '(null)'
CREATE EXTENSION outbox VERSION '0.2';
INSERT INTO outbox.dead_letters (event_id, event, reason, slot_name, replayed_at, replayed_event_id) VALUES
  ('00000000-0000-7000-8000-00000000000a', '{"event_type": "a", "lsn": "0/A"}', 'a first', 's1', NULL, NULL),
  ('00000000-0000-7000-8000-00000000000a', '{"event_type": "a", "lsn": "0/A"}', 'a again', 's1', NULL, NULL),
  ('00000000-0000-7000-8000-00000000000a', '{"event_type": "a", "lsn": "0/1A"}', 'a on s2', 's2', NULL, NULL),
  ('00000000-0000-7000-8000-00000000000b', '{"event_type": "b", "lsn": "0/B"}', 'b first', 's1', NULL, NULL),
  ('00000000-0000-7000-8000-00000000000b', '{"event_type": "b", "lsn": "0/B"}', 'b again, replayed', 's1',
   '2026-01-02', '00000000-0000-7000-8000-0000000000b2'),
  ('00000000-0000-7000-8000-00000000000c', '{"event_type": "c", "lsn": "0/C"}', 'c first, replayed', 's1',
   '2026-01-01', '00000000-0000-7000-8000-0000000000c1'),
  ('00000000-0000-7000-8000-00000000000c', '{"event_type": "c", "lsn": "0/C"}', 'c again', 's1', NULL, NULL),
  (NULL, '{"event_type": "n", "lsn": "0/D"}', 'no id first', 's1', NULL, NULL),
  (NULL, '{"event_type": "n", "lsn": "0/D"}', 'no id again', 's1', NULL, NULL),
  (NULL, '{"event_type": "n", "lsn": "0/E"}', 'no id, another line', 's1', NULL, NULL),
  ('00000000-0000-7000-8000-00000000000d', '{"event_type": "d"}', 'no slot', NULL, NULL, NULL),
  ('00000000-0000-7000-8000-00000000000d', '{"event_type": "d"}', 'no slot again', NULL, NULL, NULL);
-- an event without txid, as 0.1 left them
BEGIN;
INSERT INTO outbox.events (event_type, payload, txid) VALUES ('from.0.1', '{}', NULL);
SELECT pg_current_xact_id() AS old_txid \gset
COMMIT;

ALTER EXTENSION outbox UPDATE TO '0.3';
SELECT id, event_id, slot_name, reason, replayed_at, replayed_event_id FROM outbox.dead_letters ORDER BY id;
SELECT txid = :'old_txid'::xid8 AS txid_from_xmin FROM outbox.events;
SELECT attnotnull AS txid_not_null FROM pg_attribute WHERE attrelid = 'outbox.events'::regclass AND attname = 'txid';

-- the relay's insert, twice: one row; a plain insert of the same is refused
CREATE FUNCTION pg_temp.relay_writes(event_id uuid, lsn text, slot text) RETURNS bigint LANGUAGE sql AS $$
  INSERT INTO outbox.dead_letters (event_id, event, reason, slot_name)
  VALUES (event_id, jsonb_build_object('event_type', 'x', 'payload', '{}'::jsonb, 'aggregate_id', 'agg', 'lsn', lsn),
          'nacked', slot)
  ON CONFLICT DO NOTHING RETURNING id
$$;
SELECT pg_temp.relay_writes('00000000-0000-7000-8000-0000000000e1', '0/100', 'relay') IS NOT NULL AS written,
       pg_temp.relay_writes('00000000-0000-7000-8000-0000000000e1', '0/100', 'relay') IS NOT NULL AS written_again;
SELECT pg_temp.relay_writes('00000000-0000-7000-8000-0000000000e1', '0/200', 'other') IS NOT NULL AS other_slot_written;
-- an event without an id is keyed by its line
SELECT pg_temp.relay_writes(NULL, '0/300', 'relay') IS NOT NULL AS written,
       pg_temp.relay_writes(NULL, '0/300', 'relay') IS NOT NULL AS written_again,
       pg_temp.relay_writes(NULL, '0/301', 'relay') IS NOT NULL AS next_line_written;
INSERT INTO outbox.dead_letters (event_id, event, reason, slot_name)
VALUES ('00000000-0000-7000-8000-0000000000e1', '{}', 'by hand', 'relay');
\echo :LAST_ERROR_SQLSTATE

-- release_parked replays the dead letter once; written again afterwards (a restart), it is not
-- a second row, and the next release finds nothing
SELECT outbox.release_parked(NULL, 'agg', 'relay') AS released;
SELECT pg_temp.relay_writes('00000000-0000-7000-8000-0000000000e1', '0/100', 'relay') IS NOT NULL AS written_after_replay;
SELECT outbox.release_parked(NULL, 'agg', 'relay');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS emitted FROM outbox.events WHERE event_type = 'x';
-- republish still emits events (with their txid) under the NOT NULL column
SELECT outbox.republish('-infinity') AS republished;
SELECT count(*) FILTER (WHERE txid IS NULL) AS without_txid FROM outbox.events;

\c :regress_db
DROP DATABASE outbox_dl_once;
