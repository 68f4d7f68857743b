-- shard=i/n: n slots with shards 0..n-1 together carry every outbox event exactly once, in both
-- storage modes; transactions left without events write nothing. The hash is FNV-1a 64 of the
-- aggregate_id's UTF-8 bytes, mod n; a NULL or missing aggregate_id goes to shard 0.
SET client_min_messages = warning;
SELECT 'init' FROM pg_create_logical_replication_slot('dec_shard_0', 'outbox_decoder');
SELECT 'init' FROM pg_create_logical_replication_slot('dec_shard_1', 'outbox_decoder');
SELECT 'init' FROM pg_create_logical_replication_slot('dec_shard_2', 'outbox_decoder');

BEGIN;
SELECT count(outbox_emit('row', jsonb_build_object('n', g),
                         aggregate_id => CASE WHEN g % 7 = 0 THEN NULL ELSE 'agg-' || (g % 10) END))
  FROM generate_series(1, 60) g;
COMMIT;
SET outbox.storage = wal;
SELECT count(outbox_emit('msg', jsonb_build_object('n', g),
                         aggregate_id => CASE WHEN g % 7 = 0 THEN NULL ELSE 'agg-' || (g % 10) END))
  FROM generate_series(101, 140) g;
RESET outbox.storage;
SELECT outbox_emit('alone', '{"n": 1000}', aggregate_id => 'agg-3') IS NOT NULL AS ok;

CREATE TEMP TABLE got AS
SELECT s.i AS shard, c.data::jsonb AS line
  FROM generate_series(0, 2) s(i),
       LATERAL pg_logical_slot_get_changes('dec_shard_' || s.i, NULL, NULL,
                                           'outbox', '1', 'shard', s.i || '/3') c;
CREATE TEMP TABLE ev AS
SELECT shard, line->>'action' AS action,
       CASE line->>'action'
         WHEN 'M' THEN (line->>'content')::jsonb -> 'payload'
         ELSE (jsonb_path_query_first(line, '$.columns[*] ? (@.name == "payload").value') #>> '{}')::jsonb END ->> 'n' AS n,
       CASE line->>'action'
         WHEN 'M' THEN (line->>'content')::jsonb ->> 'aggregate_id'
         ELSE jsonb_path_query_first(line, '$.columns[*] ? (@.name == "aggregate_id").value') #>> '{}' END AS aggregate_id
  FROM got WHERE line->>'action' IN ('I', 'M');

-- every event exactly once
SELECT count(*) AS events, count(DISTINCT n) AS distinct_events FROM ev;
-- one aggregate, one shard (the mapping is part of the documented hash)
SELECT coalesce(aggregate_id, '(null)') AS aggregate_id, array_agg(DISTINCT shard) AS shards, count(*)
  FROM ev GROUP BY 1 ORDER BY 1;
-- every shard's transactions are balanced B/C pairs around at least one event
SELECT shard, count(*) FILTER (WHERE line->>'action' = 'B') AS begins,
       count(*) FILTER (WHERE line->>'action' = 'C') AS commits,
       count(*) FILTER (WHERE line->>'action' IN ('I', 'M')) AS events
  FROM got GROUP BY shard ORDER BY shard;

-- message contents the aggregate_id scanner must survive; nested keys do not count, escapes do
-- (FNV-1a mod 2: agg-2 -> 1, agg-7 -> 0; malformed or missing -> 0)
SELECT 'init' FROM pg_create_logical_replication_slot('dec_shard_m0', 'outbox_decoder');
SELECT 'init' FROM pg_create_logical_replication_slot('dec_shard_m1', 'outbox_decoder');
BEGIN;
SELECT count(pg_logical_emit_message(true, 'outbox', c)) FROM unnest(ARRAY[
  '', '{', '{"aggregate_id":', '{"aggregate_id":"unterminated', '[1,2]', 'null', 'not json',
  '{"a":{"aggregate_id":"agg-7"},"aggregate_id":"agg-2"}', '{"aggregate_id":"\u0061gg-2"}',
  '{"aggregate_id":"agg-2"}', '{"x":[1,{"y":"}"}],"aggregate_id":"agg-2"}', '{"aggregate_id":7}',
  repeat('[', 100000), '{"k":"' || repeat('\"', 50000) || '","aggregate_id":"agg-2"}']) AS c;
COMMIT;
SELECT s.i AS shard, count(*) FILTER (WHERE c.data LIKE '{"action":"M"%') AS messages,
       string_agg(CASE WHEN c.data LIKE '%agg-2%' OR c.data LIKE '%u0061gg%' THEN 'agg-2' END, ',') AS agg2
  FROM generate_series(0, 1) s(i),
       LATERAL pg_logical_slot_get_changes('dec_shard_m' || s.i, NULL, NULL, 'outbox', '1', 'shard', s.i || '/2') c
 GROUP BY s.i ORDER BY s.i;
SELECT pg_drop_replication_slot('dec_shard_m0');
SELECT pg_drop_replication_slot('dec_shard_m1');

-- a release of a parked aggregate (outbox.release_parked's control message) goes where the
-- aggregate's events go, so the shard's relay that parked it sees it (agg-0 -> 2, agg-1 -> 1,
-- agg-3 and no aggregate -> 0)
SELECT outbox.emit_release(NULL, 'agg-0', NULL), outbox.emit_release(NULL, 'agg-1', NULL),
       outbox.emit_release('order', 'agg-3', 'dec_shard_0'), outbox.emit_release(NULL, NULL, NULL);
SELECT s.i AS shard, (c.data::jsonb ->> 'content')::jsonb - 'mac' - 'kid' AS release
  FROM generate_series(0, 2) s(i),
       LATERAL pg_logical_slot_get_changes('dec_shard_' || s.i, NULL, NULL, 'outbox', '1', 'shard', s.i || '/3')
               WITH ORDINALITY AS c(lsn, xid, data, n)
 WHERE c.data::jsonb ->> 'action' = 'M' AND c.data::jsonb ->> 'content' LIKE '{"mac":%'  -- not the messages above
 ORDER BY s.i, c.n;

-- bad shard values
SELECT count(*) FROM pg_logical_slot_peek_changes('dec_shard_0', NULL, NULL, 'outbox', '1', 'shard', '3/3');
SELECT count(*) FROM pg_logical_slot_peek_changes('dec_shard_0', NULL, NULL, 'outbox', '1', 'shard', 'x');
SELECT count(*) FROM pg_logical_slot_peek_changes('dec_shard_0', NULL, NULL, 'shard', '0/2');

SELECT pg_drop_replication_slot('dec_shard_' || i) FROM generate_series(0, 2) i;
DELETE FROM outbox.events;
