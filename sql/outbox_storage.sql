-- Both storage modes, seen through a wal2json slot: only committed events are decoded, in
-- commit order, and in emit order inside a transaction. Rolled-back transactions and
-- rolled-back savepoints leave nothing in the stream.
\pset null '(null)'
SET client_min_messages = warning;
SET DateStyle = 'ISO, YMD';
SET TimeZone = 'UTC';

-- Volatile values (ids, timestamps, xids, LSNs) are masked, not printed.
CREATE FUNCTION pg_temp.mask(t text) RETURNS text LANGUAGE sql AS $$
  SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(t,
    '[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}', '<uuidv7>', 'g'),
    '("txid","value":")\d+"', '\1<txid>"', 'g'),
    '\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(\+\d\d(:\d\d)?|Z)', '<time>', 'g'),
    '("mac\\?"\s*:\s*\\?")[0-9a-f]{64}(\\?",\\?"kid\\?":)[0-9]+', '\1<mac>\2<kid>', 'g')  -- the wal-storage MAC (outbox_message_key checks it)
$$;
CREATE FUNCTION pg_temp.changes() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT pg_temp.mask(data) FROM pg_logical_slot_get_changes('outbox_storage', NULL, NULL,
    'format-version', '2', 'include-types', '0', 'include-transaction', '0',
    'add-tables', 'outbox.events', 'add-msg-prefixes', 'outbox')
$$;
SELECT 'init' FROM pg_create_logical_replication_slot('outbox_storage', 'wal2json');

-- table mode (the default)
BEGIN;
SELECT outbox_emit('t.committed.1', '{"n": 1}', aggregate_type => 'order', aggregate_id => '1') IS NOT NULL AS ok;
SELECT outbox_emit('t.committed.2', '{"n": 2}', aggregate_type => 'order', aggregate_id => '1') IS NOT NULL AS ok;
COMMIT;
BEGIN;
SELECT outbox_emit('t.rolled-back', '{"n": 3}') IS NOT NULL AS ok;
ROLLBACK;
BEGIN;
SELECT outbox_emit('t.before-savepoint', '{"n": 4}') IS NOT NULL AS ok;
SAVEPOINT s1;
SELECT outbox_emit('t.in-rolled-back-savepoint', '{"n": 5}') IS NOT NULL AS ok;
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
SELECT outbox_emit('t.in-released-savepoint', '{"n": 6}') IS NOT NULL AS ok;
RELEASE SAVEPOINT s2;
COMMIT;
SHOW outbox.storage;  -- known once the module is loaded (here: by the first outbox_emit)
SELECT * FROM pg_temp.changes();
SELECT event_type FROM outbox.events ORDER BY id;

-- wal mode: the same events as transactional logical messages, nothing in the table
SET outbox.storage = wal;
BEGIN;
SELECT outbox_emit('w.committed.1', '{"n": 1, "s": "quote\" é"}', aggregate_type => 'order', aggregate_id => '7',
                   routing_key => 'rk', exchange => 'ex', headers => '{"h": 1}', correlation_id => 'c', causation_id => 'k') IS NOT NULL AS ok;
SELECT outbox_emit('w.committed.2', '[1, 2]') IS NOT NULL AS ok;
COMMIT;
BEGIN;
SELECT outbox_emit('w.rolled-back', '{}') IS NOT NULL AS ok;
ROLLBACK;
BEGIN;
SAVEPOINT s1;
SELECT outbox_emit('w.in-rolled-back-savepoint', '{}') IS NOT NULL AS ok;
ROLLBACK TO s1;
SELECT outbox_emit('w.after-savepoint', '{}') IS NOT NULL AS ok;
COMMIT;
SELECT * FROM pg_temp.changes();
SELECT count(*) AS rows_in_table FROM outbox.events WHERE event_type LIKE 'w.%';

-- the message content is one JSON object: "mac" (outbox_message_key checks it), then the table's column names
SELECT outbox_emit('w.shape', '{"a": [1, {"b": null}]}', aggregate_id => 'x') IS NOT NULL AS ok;
SELECT jsonb_pretty(pg_temp.mask(data::jsonb ->> 'content')::jsonb) AS message_content
  FROM pg_logical_slot_get_changes('outbox_storage', NULL, NULL, 'format-version', '2',
         'include-transaction', '0', 'add-tables', 'outbox.events', 'add-msg-prefixes', 'outbox');

-- both modes in one transaction keep emit order
BEGIN;
SET LOCAL outbox.storage = 'table';  -- table is an SQL keyword: quote it
SELECT outbox_emit('mixed.1', '{}') IS NOT NULL AS ok;
SET LOCAL outbox.storage = wal;
SELECT outbox_emit('mixed.2', '{}') IS NOT NULL AS ok;
SET LOCAL outbox.storage = 'table';  -- table is an SQL keyword: quote it
SELECT outbox_emit('mixed.3', '{}') IS NOT NULL AS ok;
COMMIT;
SELECT coalesce(jsonb_path_query_first(data::jsonb, '$.columns[*] ? (@.name == "event_type").value') #>> '{}',
                (data::jsonb ->> 'content')::jsonb ->> 'event_type') AS in_order
  FROM pg_logical_slot_get_changes('outbox_storage', NULL, NULL,
    'format-version', '2', 'include-transaction', '0', 'add-tables', 'outbox.events', 'add-msg-prefixes', 'outbox');

SELECT pg_drop_replication_slot('outbox_storage');
RESET outbox.storage;
TRUNCATE outbox.events;
