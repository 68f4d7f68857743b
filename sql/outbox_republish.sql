-- Events committed before the relay's slot existed are never decoded. outbox.events_before_slot
-- tells the relay how many there are (right after it created its slot); outbox.republish emits
-- them again, in the caller's transaction, as new events carrying the original id in the
-- header outbox-original-id.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = notice;
TRUNCATE outbox.events;

-- three events, each in its own transaction (created_at is the transaction's start)
SELECT outbox_emit('order.created', '{"order": 1}', aggregate_type => 'order', aggregate_id => '1',
                   routing_key => 'orders.new', exchange => 'orders', headers => '{"tenant": "acme", "n": 1}',
                   correlation_id => 'req-1', causation_id => 'cmd-1') AS first_id \gset
SELECT outbox_emit('order.paid', '{"order": 1}', aggregate_type => 'order', aggregate_id => '1') AS second_id \gset
SELECT outbox_emit('note', '"plain"') AS third_id \gset
-- one rolled back: never in the table, never republished
BEGIN;
SELECT outbox_emit('rolled.back', '{}') IS NOT NULL AS ok;
ROLLBACK;

-- the relay creates its slot only now
SELECT 'init' FROM pg_create_logical_replication_slot('outbox_republish', 'wal2json');
CREATE TEMP TABLE originals (name, id) AS VALUES ('first', :'first_id'::uuid), ('second', :'second_id'), ('third', :'third_id');
-- what the slot decodes (so what the relay would publish): the event type, which of the three
-- events above the header outbox-original-id names, a header of the original
CREATE FUNCTION pg_temp.published() RETURNS TABLE (event_type text, original text, tenant text) LANGUAGE sql AS $$
  SELECT c ->> 'event_type',
         coalesce((SELECT o.name FROM originals o WHERE o.id::text = (c -> 'headers') ->> 'outbox-original-id'),
                  (c -> 'headers') ->> 'outbox-original-id'),
         (c -> 'headers') ->> 'tenant'
    FROM pg_logical_slot_get_changes('outbox_republish', NULL, NULL, 'format-version', '2',
           'include-transaction', '0', 'add-tables', 'outbox.events') AS ch,
         LATERAL (SELECT jsonb_object_agg(col ->> 'name', col -> 'value') AS row
                    FROM jsonb_array_elements(ch.data::jsonb -> 'columns') AS col) r,
         LATERAL (SELECT jsonb_set(r.row, '{headers}', (r.row ->> 'headers')::jsonb) AS c) x
$$;

-- what the relay calls right after creating the slot: the events committed before it, their
-- range of created_at, and the call that republishes them
SELECT * FROM outbox.events_before_slot('outbox_republish') \gset before_
SELECT :before_count AS count,
       :'before_oldest'::timestamptz = (SELECT min(created_at) FROM outbox.events) AS oldest_ok,
       :'before_newest'::timestamptz = (SELECT max(created_at) FROM outbox.events) AS newest_ok,
       :'before_republish' ~ '^SELECT outbox\.republish\(''\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00'', ''\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00''\);$' AS republish_is_a_call;
-- the slot decodes nothing of them
SELECT * FROM pg_temp.published();

-- a slot that does not exist is an error that says what to do
SELECT * FROM outbox.events_before_slot('no_such_slot');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM outbox.events_before_slot(NULL);
\echo :LAST_ERROR_SQLSTATE

-- the call events_before_slot suggested emits the three again, in the current transaction
BEGIN;
:before_republish
SELECT count(*) AS in_table FROM outbox.events;
ROLLBACK;
SELECT count(*) AS after_rollback FROM outbox.events;
SELECT * FROM pg_temp.published();

-- committed: new events (new ids), the same fields, the original id in outbox-original-id, in
-- created_at order; the slot decodes them
-- created_at is the republishing transaction's time (not the original's): compared with now()
-- read in that same transaction
BEGIN;
SELECT outbox.republish(:'before_oldest') AS republished;
SELECT now() AS republish_now \gset
COMMIT;
SELECT e.event_type, e.payload, e.aggregate_type, e.aggregate_id, e.routing_key, e.exchange, e.headers - 'outbox-original-id' AS headers,
       e.correlation_id, e.causation_id,
       e.headers ->> 'outbox-original-id' = CASE e.event_type WHEN 'order.created' THEN :'first_id'
                                                              WHEN 'order.paid' THEN :'second_id' ELSE :'third_id' END AS original_id_ok,
       e.id NOT IN (:'first_id', :'second_id', :'third_id') AS new_id,
       e.created_at = :'republish_now' AS created_now
  FROM outbox.events e WHERE e.headers ? 'outbox-original-id' ORDER BY e.id;
SELECT * FROM pg_temp.published();

-- a range: since is inclusive, until exclusive; republishing a republished event keeps the
-- first original's id
SELECT created_at AS second_at FROM outbox.events WHERE id = :'second_id' \gset
SELECT created_at AS third_at FROM outbox.events WHERE id = :'third_id' \gset
SELECT outbox.republish(:'second_at', :'third_at') AS only_the_second;
SELECT outbox.republish(:'third_at', :'third_at') AS empty_range;
SELECT * FROM pg_temp.published();
SELECT max(created_at) AS republished_at FROM outbox.events \gset
SELECT outbox.republish(:'republished_at', :'republished_at'::timestamptz + interval '1 microsecond') AS again;
SELECT * FROM pg_temp.published();

-- the events follow outbox.storage like any outbox_emit: wal storage writes no rows
SET outbox.storage = wal;
SELECT outbox.republish(:'before_oldest', :'third_at') AS republished_to_wal;
RESET outbox.storage;
SELECT count(*) AS rows_in_table FROM outbox.events;

-- bad ranges
SELECT outbox.republish(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.republish(now(), NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.republish('2026-01-02 00:00:00+00', '2026-01-01 00:00:00+00');
\echo :LAST_ERROR_SQLSTATE

-- who may call them: the relay role (grant_relay) counts, nobody but the owner republishes
CREATE ROLE outbox_republish_relay LOGIN REPLICATION;
CREATE ROLE outbox_republish_app LOGIN;
SELECT outbox.grant_relay('outbox_republish_relay');
SELECT outbox.grant_app('outbox_republish_app');
SET ROLE outbox_republish_relay;
SELECT count > 0 AS relay_counts FROM outbox.events_before_slot('outbox_republish');
SELECT outbox.republish(now() - interval '1 day');
RESET ROLE;
SET ROLE outbox_republish_app;
SELECT * FROM outbox.events_before_slot('outbox_republish');
SELECT outbox.republish(now() - interval '1 day');
RESET ROLE;
SELECT has_function_privilege('public', 'outbox.republish(timestamptz, timestamptz)', 'EXECUTE') AS public_republishes,
       has_function_privilege('public', 'outbox.events_before_slot(text)', 'EXECUTE') AS public_counts;

SELECT pg_drop_replication_slot('outbox_republish');
DROP OWNED BY outbox_republish_relay, outbox_republish_app;
DROP ROLE outbox_republish_relay, outbox_republish_app;
TRUNCATE outbox.events;
