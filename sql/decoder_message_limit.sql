-- An `outbox` message larger than the decoder's max-outbox-message-bytes (default 64 MB) is
-- written as its size only ("content":null,"oversized":{...}, common/outbox_wire.h): escaping a
-- ~180 MB one passed PostgreSQL's 1 GB string limit and the walsender failed on it again and
-- again. The decoder never raises an error for a message; outbox_emit refuses to write one that
-- large, so no genuine event is ever replaced.
SET client_min_messages = warning;
SELECT 'init' FROM pg_create_logical_replication_slot('dec_limit', 'outbox_decoder');
CREATE FUNCTION pg_temp.changes(VARIADIC opts text[]) RETURNS SETOF text LANGUAGE sql AS $$
  SELECT regexp_replace(regexp_replace(data, '"timestamp":"[^"]*"', '"timestamp":"<time>"'),
                        '"value":"[0-9a-f-]{36}"', '"value":"<id>"')
    FROM pg_logical_slot_peek_changes('dec_limit', NULL, NULL, VARIADIC opts)
$$;

-- at the limit, above it (transactional and not), another prefix above it, then a genuine
-- event: only the outbox messages above the limit are replaced, and the stream goes on past them
SELECT 'm' FROM pg_logical_emit_message(true, 'outbox', repeat('a', 100));
SELECT 'm' FROM pg_logical_emit_message(true, 'outbox', repeat(chr(1), 101));
SELECT 'm' FROM pg_logical_emit_message(false, 'outbox', repeat('b', 5000));
SELECT 'm' FROM pg_logical_emit_message(true, 'other', repeat('c', 101));
SELECT outbox_emit('after', '{}') IS NOT NULL AS ok;
SELECT regexp_replace(c, '"content":"a+"', '"content":"a{100}"')
  FROM pg_temp.changes('format-version', '2', 'include-xids', '0', 'actions', '',
                       'max-outbox-message-bytes', '100') c;
-- format 1 the same way
SELECT regexp_replace(c, '"content":"a+"', '"content":"a{100}"')
  FROM pg_temp.changes('max-outbox-message-bytes', '100', 'actions', '') c;
-- the outbox preset (what the relay reads): the marker, then the event
SELECT left(c, 120) FROM pg_temp.changes('outbox', '1', 'include-xids', '0', 'max-outbox-message-bytes', '100') c;
-- sharded: the marker goes to shard 0 only (its aggregate is not read)
SELECT s.i AS shard, count(*) FILTER (WHERE c LIKE '%"oversized"%') AS markers
  FROM generate_series(0, 2) s(i),
       LATERAL pg_temp.changes('outbox', '1', 'shard', s.i || '/3', 'max-outbox-message-bytes', '100') c
 GROUP BY 1 ORDER BY 1;
-- consumed with the preset: an autoanalyze's transaction in this database is an empty
-- transaction in format 1, which made the count depend on autovacuum's timing
SELECT count(*) FROM pg_logical_slot_get_changes('dec_limit', NULL, NULL, 'outbox', '1', 'max-outbox-message-bytes', '100');

-- values out of range name the limits
SELECT * FROM pg_temp.changes('max-outbox-message-bytes', '0');
SELECT * FROM pg_temp.changes('max-outbox-message-bytes', '134217729');
SELECT * FROM pg_temp.changes('max-outbox-message-bytes', '64MB');

-- real size: the default limit, one byte above it
SELECT 'm' FROM pg_logical_emit_message(true, 'outbox', repeat('x', 64 * 1024 * 1024 + 1));
SELECT outbox_emit('after.big', '{}') IS NOT NULL AS ok;
SELECT left(regexp_replace(regexp_replace(data, '"xid":\d+', '"xid":<xid>', 'g'), '"value":"[0-9a-f-]{36}"', '"value":"<id>"'), 140)
  FROM pg_logical_slot_get_changes('dec_limit', NULL, NULL, 'outbox', '1', 'include-timestamp', '0');

-- outbox_emit writes no message above the default limit (wal storage)
SET outbox.max_payload_bytes = '100MB';
SET outbox.storage = wal;
DO $$
BEGIN
  PERFORM outbox_emit('huge', jsonb_build_object('s', repeat('y', 64 * 1024 * 1024)));
EXCEPTION WHEN program_limit_exceeded THEN  -- its size varies with created_at's digits
  RAISE WARNING '%', regexp_replace(SQLERRM, 'be 6710\d{4} bytes', 'be 6710.... bytes');
END
$$;
SELECT outbox_emit('just.below', jsonb_build_object('s', repeat('y', 64 * 1024 * 1024 - 400))) IS NOT NULL AS ok;
RESET outbox.storage;
RESET outbox.max_payload_bytes;
SELECT count(*) FILTER (WHERE data LIKE '%"oversized"%') AS markers, count(*) FILTER (WHERE data LIKE '%just.below%') AS events
  FROM pg_logical_slot_get_changes('dec_limit', NULL, NULL, 'outbox', '1');

SELECT pg_drop_replication_slot('dec_limit');
TRUNCATE outbox.events;
