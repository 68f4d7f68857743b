-- Priority: outbox_emit(priority => 0..9), the AMQP priority of the message (a header or field
-- on the other brokers). Stored in both storage modes, as a number, and carried by every copy
-- of an event; NULL is no priority.
\set VERBOSITY default
\set SHOW_CONTEXT never
\pset null '(null)'
SET client_min_messages = warning;
TRUNCATE outbox.events, outbox.dead_letters, outbox.relay_checkpoints;

-- 0 to 9, or none
SELECT outbox_emit('p.0', '{}', priority => 0) IS NOT NULL AS ok;
SELECT outbox_emit('p.9', '{}', priority => 9) IS NOT NULL AS ok;
SELECT outbox_emit('p.none', '{}') IS NOT NULL AS ok;
SELECT outbox_emit('p.null', '{}', priority => NULL) IS NOT NULL AS ok;
SELECT outbox_emit('p.positional', '{}', 'order', '1', NULL, NULL, '{}', NULL, NULL, NULL, NULL, 4) IS NOT NULL AS ok;
SELECT event_type, priority, pg_typeof(priority) FROM outbox.events ORDER BY id;

-- anything else is refused
SELECT outbox_emit('e', '{}', priority => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', priority => 10);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', priority => 2147483647);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', priority => -2147483648);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS refused_stored_nothing FROM outbox.events WHERE event_type = 'e';

-- both storage modes, as the relay reads them: the row's column (a JSON number, through the
-- decoder) and the wal message's member (only when set)
TRUNCATE outbox.events;
SELECT 'init' FROM pg_create_logical_replication_slot('outbox_priority', 'outbox_decoder');
BEGIN;
SELECT outbox_emit('table.p3', '{}', priority => 3) IS NOT NULL AS ok;
SELECT outbox_emit('table.none', '{}') IS NOT NULL AS ok;
SET LOCAL outbox.storage = wal;
SELECT outbox_emit('wal.p0', '{}', priority => 0) IS NOT NULL AS ok;
SELECT outbox_emit('wal.p7', '{}', priority => 7) IS NOT NULL AS ok;
SELECT outbox_emit('wal.none', '{}') IS NOT NULL AS ok;
COMMIT;
SELECT coalesce(c ->> 'event_type', (SELECT x ->> 'value' FROM jsonb_array_elements(d -> 'columns') x WHERE x ->> 'name' = 'event_type')) AS event_type,
       CASE WHEN d ->> 'action' = 'M' THEN c ? 'priority' ELSE true END AS has_priority,
       coalesce(c -> 'priority', (SELECT x -> 'value' FROM jsonb_array_elements(d -> 'columns') x WHERE x ->> 'name' = 'priority')) AS priority,
       jsonb_typeof(coalesce(c -> 'priority', (SELECT x -> 'value' FROM jsonb_array_elements(d -> 'columns') x WHERE x ->> 'name' = 'priority'))) AS json_type
  FROM (SELECT data::jsonb AS d, CASE WHEN data::jsonb ->> 'action' = 'M' THEN (data::jsonb ->> 'content')::jsonb END AS c
          FROM pg_logical_slot_get_changes('outbox_priority', NULL, NULL, 'outbox', '1')) l
 WHERE d ->> 'action' IN ('I', 'M');
SELECT pg_drop_replication_slot('outbox_priority');

-- copies keep it: republish, a dead letter's replay (the relay writes it as a number), a slot
-- recovery's line (a number, as the decoder writes the column)
SELECT outbox.republish(now() - interval '1 hour');
SELECT event_type, headers ? 'outbox-original-id' AS copy, priority FROM outbox.events ORDER BY id;
INSERT INTO outbox.dead_letters (event_id, event, reason, slot_name) VALUES
  ('01900000-0000-7000-8000-000000000001', '{"id": "01900000-0000-7000-8000-000000000001", "event_type": "dl.p8", "payload": {}, "headers": {}, "priority": 8}', 'nacked', 'pr'),
  ('01900000-0000-7000-8000-000000000002', '{"id": "01900000-0000-7000-8000-000000000002", "event_type": "dl.none", "payload": {}, "headers": {}, "priority": null}', 'nacked', 'pr');
SELECT outbox.replay_dead_letter(id) IS NOT NULL AS replayed FROM outbox.dead_letters ORDER BY id;
SELECT event_type, priority FROM outbox.events WHERE event_type LIKE 'dl.%' ORDER BY id;
SELECT outbox.record_checkpoint('pr', pg_current_wal_insert_lsn(), now());
SELECT outbox.begin_slot_recovery('pr') IS NOT NULL AS began;
SELECT outbox.slot_recovery_upper('pr');
SELECT line::json -> 'columns' -> 3 ->> 'value' AS event_type, c -> 'value' AS priority, json_typeof(c -> 'value') AS json_type
  FROM outbox.slot_recovery_events('pr', NULL, 20), json_array_elements(line::json -> 'columns') c
 WHERE c ->> 'name' = 'priority' AND line::json -> 'columns' -> 3 ->> 'value' IN ('table.p3', 'table.none', 'dl.p8');
SELECT outbox.finish_slot_recovery('pr');

-- capture triggers give their events no priority
CREATE TABLE pr_orders (id int PRIMARY KEY);
SELECT outbox.capture('pr_orders');
INSERT INTO pr_orders VALUES (1);
SELECT event_type, priority FROM outbox.events WHERE aggregate_type = 'pr_orders';
DROP TABLE pr_orders;
TRUNCATE outbox.events, outbox.dead_letters, outbox.relay_checkpoints;
