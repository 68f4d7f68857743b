-- Parked aggregates (the relay's --on-dead-letter=park): outbox.release_parked writes a signed
-- release control message, then emits the aggregate's dead letters again in dead-letter order,
-- in one transaction, so the relay stops parking the aggregate exactly before them.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- HMAC-SHA256 from sha256() (as in outbox_message_key, which checks it against RFC 4231), under
-- outbox.message_key(), the key derived for this database (outbox_message_key checks that too)
CREATE FUNCTION pg_temp.xor_pad(key bytea, pad int) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT decode(string_agg(lpad(to_hex(get_byte(k, i) # pad), 2, '0'), '' ORDER BY i), 'hex')
    FROM (SELECT CASE WHEN octet_length(key) > 64 THEN sha256(key) ELSE key END AS k0) s,
         LATERAL (SELECT k0 || decode(repeat('00', 64 - octet_length(k0)), 'hex') AS k) p,
         generate_series(0, 63) i
$$;
CREATE FUNCTION pg_temp.hmac_sha256(key bytea, msg bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(pg_temp.xor_pad(key, 92) || sha256(pg_temp.xor_pad(key, 54) || msg)), 'hex')
$$;
-- The slot's changes, one short line each, in stream order: outbox messages (a control
-- message in full, MAC masked; an event by its type) with whether their MAC verifies, rows
-- inserted into outbox.events by their type and aggregate, dead letters (by their payload's
-- name) written and marked replayed. COMMIT ends each transaction; BEGIN lines are left out, because test_decoding
-- with skip-empty-xacts writes BEGIN only in front of a transaction's first row change, so
-- after a message that comes before it (the message is transactional: 1, in that transaction).
CREATE FUNCTION pg_temp.stream() RETURNS TABLE (change text, mac_verifies boolean) LANGUAGE sql AS $$
  WITH c AS (SELECT convert_from(data, 'UTF8') AS line, xid,
                    CASE WHEN position('message: transactional: 1 prefix: outbox,'::bytea IN data) = 1
                         THEN substring(data FROM position('content:'::bytea IN data) + 8) END AS content
               FROM pg_logical_slot_get_binary_changes('outbox_parked', NULL, NULL, 'include-xids', '0',
                                                       'skip-empty-xacts', '1'))
  SELECT CASE
           WHEN content IS NOT NULL AND convert_from(content, 'UTF8')::jsonb ? 'control'
             THEN 'message ' || regexp_replace(convert_from(content, 'UTF8'), '^\{"mac":"[0-9a-f]{64}","kid":[0-9]+', '{"mac":"<mac>","kid":<kid>')
           WHEN content IS NOT NULL
             THEN 'message event ' || (convert_from(content, 'UTF8')::jsonb ->> 'event_type')
           WHEN line LIKE 'table outbox.events: INSERT:%'
             THEN format('row event %s (%s, %s)', substring(line FROM $r$ event_type\[text\]:'([^']*)'$r$),
                         quote_nullable(substring(line FROM $r$ aggregate_type\[text\]:'([^']*)'$r$)),
                         quote_nullable(substring(line FROM $r$ aggregate_id\[text\]:'([^']*)'$r$)))
           WHEN line LIKE 'table outbox.dead_letters: INSERT:%'
             THEN 'dead letter written: ' || substring(line FROM '"name": "([^"]*)"')
           WHEN line LIKE 'table outbox.dead_letters: UPDATE:%'
             THEN 'dead letter replayed: ' || substring(line FROM '"name": "([^"]*)"')
           ELSE line
         END,
         -- common/outbox_wire.h: '{"mac":"' hex '","kid":' id ',' body-without-'{', over xid ':' body
         CASE WHEN content IS NOT NULL THEN
           substring(content FROM 1 FOR 8) = '{"mac":"'::bytea
           AND convert_from(substring(content FROM 9 FOR 64), 'UTF8')
               = pg_temp.hmac_sha256(outbox.message_key(),
                   convert_to(xid::text || ':', 'UTF8') || '{'::bytea ||
                   substring(content FROM 82 + length((SELECT key_id::text FROM outbox.message_key_store
                                                        WHERE superseded_at IS NULL))))
         END
    FROM c
   WHERE line <> 'BEGIN'
$$;
SELECT 'init' FROM pg_create_logical_replication_slot('outbox_parked', 'test_decoding');

-- Dead letters as the relay writes them (one per event, slot_name = its slot), in this order.
-- The relay's ordering key is (aggregate_type, aggregate_id), a NULL type counting as '', and
-- all events without an aggregate_id share one key.
CREATE TEMP TABLE dl (name text PRIMARY KEY, id bigint);
CREATE FUNCTION pg_temp.dead_letter(name text, aggregate_type text, aggregate_id text, slot text,
                                    extra jsonb DEFAULT '{}') RETURNS void LANGUAGE sql AS $$
  WITH d AS (
    INSERT INTO outbox.dead_letters (event_id, event, reason, slot_name)
    SELECT e.id, jsonb_build_object('id', e.id, 'event_type', name, 'payload', jsonb_build_object('name', name),
                                    'headers', '{}'::jsonb) || extra
                 || CASE WHEN aggregate_type IS NOT NULL OR aggregate_id IS NOT NULL
                         THEN jsonb_build_object('aggregate_type', aggregate_type, 'aggregate_id', aggregate_id)
                         ELSE '{}' END,  -- 'none.a' has no aggregate members at all
           CASE WHEN name LIKE 'o1.%' OR name LIKE 'o2.%' THEN 'unroutable' ELSE 'nacked' END, slot
      FROM (SELECT outbox.uuidv7() AS id) e
    RETURNING id)
  INSERT INTO dl SELECT name, d.id FROM d
$$;
SELECT pg_temp.dead_letter('o1.a', 'order', '1', 'relay_a',
         '{"exchange": "orders", "routing_key": "order.one", "headers": {"tenant": "acme", "n": 7},
           "correlation_id": "c-1", "causation_id": "k-1", "created_at": "2026-01-01T00:00:00+00:00",
           "lsn": "0/16B3748", "xid": 740}'),
       pg_temp.dead_letter('o2.a', 'order', '2', 'relay_a'),
       pg_temp.dead_letter('o1.b', 'order', '1', 'relay_a'),
       pg_temp.dead_letter('o1.c', 'order', '1', 'relay_b'),
       pg_temp.dead_letter('o1.d', 'order', '1', 'relay_a'),
       pg_temp.dead_letter('o1.e', 'order', '1', 'relay_a'),
       pg_temp.dead_letter('none.a', NULL, NULL, 'relay_a'),
       pg_temp.dead_letter('none.b', 'misc', NULL, 'relay_a'),
       pg_temp.dead_letter('untyped.a', NULL, '1', 'relay_a'),
       pg_temp.dead_letter('untyped.b', '', '1', 'relay_a');
-- o1.d was replayed by hand already: it is not emitted again
SELECT outbox.replay_dead_letter(id) IS NOT NULL AS replayed_by_hand FROM dl WHERE name = 'o1.d';
SELECT * FROM pg_temp.stream();

-- (order, 1) of relay_a: the release first (whatever outbox.storage is; table here), then
-- o1.a, o1.b, o1.e in dead-letter order, each with its original fields and a new id
SHOW outbox.storage;
SELECT outbox.release_parked('order', '1', 'relay_a') AS released;
SELECT * FROM pg_temp.stream();
SELECT e.event_type, e.aggregate_type, e.aggregate_id, e.payload, e.headers, e.exchange, e.routing_key,
       e.correlation_id, e.causation_id, e.id <> (d.event ->> 'id')::uuid AS new_id
  FROM outbox.dead_letters d JOIN outbox.events e ON e.id = d.replayed_event_id
 WHERE d.replayed_at IS NOT NULL AND d.event ->> 'event_type' <> 'o1.d'
 ORDER BY e.id;
-- the emitted events are in dead-letter order (ids are time-ordered)
SELECT array_agg(d.event ->> 'event_type' ORDER BY d.id) = array_agg(d.event ->> 'event_type' ORDER BY d.replayed_event_id)
       AS event_order_is_dead_letter_order
  FROM outbox.dead_letters d WHERE d.replayed_at IS NOT NULL AND d.event ->> 'event_type' <> 'o1.d';

-- without slot_name every relay's dead letters of the aggregate, and a release for every relay
SELECT outbox.release_parked('order', '1') AS released;
SELECT * FROM pg_temp.stream();

-- nothing left to release: an error that says how to list the dead letters
SELECT outbox.release_parked('order', '1');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.release_parked('order', '2', 'relay_b');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.release_parked('order', '3');
\echo :LAST_ERROR_SQLSTATE

-- the events without an aggregate_id share one key: NULL, NULL releases them all (whatever
-- their type); a type with a NULL id names no key
SELECT outbox.release_parked('misc', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.release_parked(NULL, NULL) AS released;
-- a NULL aggregate_type and '' are one key, apart from (order, 1)
SELECT outbox.release_parked(NULL, '1') AS released;
SELECT * FROM pg_temp.stream();

-- wal storage: the release and the events are all signed messages, the release first
SET outbox.storage = wal;
SELECT outbox.release_parked('order', '2', 'relay_a') AS released;
RESET outbox.storage;
SELECT * FROM pg_temp.stream();

-- in a transaction that rolls back: no release, no event, nothing marked
SELECT pg_temp.dead_letter('o3.a', 'order', '3', 'relay_a');
BEGIN;
SELECT outbox.release_parked('order', '3') AS released;
ROLLBACK;
SELECT * FROM pg_temp.stream();
SELECT name, d.replayed_at FROM dl JOIN outbox.dead_letters d USING (id) WHERE name = 'o3.a';

-- a dead letter outbox_emit refuses fails the whole release (nothing is written); marking it
-- replayed by hand (replayed_event_id stays NULL) lets the others go
SELECT pg_temp.dead_letter('o4.a', 'order', '4', 'relay_a', '{"event_type": ""}'),
       pg_temp.dead_letter('o4.b', 'order', '4', 'relay_a');
SELECT outbox.release_parked('order', '4');
\echo :LAST_ERROR_SQLSTATE
UPDATE outbox.dead_letters d SET replayed_at = now() FROM dl WHERE dl.id = d.id AND dl.name = 'o4.a';
SELECT outbox.release_parked('order', '4') AS released;
SELECT * FROM pg_temp.stream();

-- every dead letter but the rolled-back one's is replayed now, each once (o2.a as a message;
-- o4.a only marked)
SELECT name, d.replayed_at IS NOT NULL AS replayed,
       (SELECT count(*) FROM outbox.events e WHERE e.id = d.replayed_event_id) AS events
  FROM dl JOIN outbox.dead_letters d USING (id) ORDER BY d.id;

-- Privileges: nothing for PUBLIC; an application or relay role may not release (nor write a
-- release itself); a role the owner gives EXECUTE (and USAGE on the schema) may release and
-- needs nothing else, but still may not call emit_release.
SELECT has_function_privilege('public', 'outbox.release_parked(text, text, text)', 'EXECUTE') AS public_may_release,
       has_function_privilege('public', 'outbox.emit_release(text, text, text)', 'EXECUTE') AS public_may_emit_release;
CREATE ROLE outbox_parked_app LOGIN;
CREATE ROLE outbox_parked_relay LOGIN REPLICATION;
CREATE ROLE outbox_parked_operator LOGIN;
SELECT outbox.grant_app('outbox_parked_app');
SELECT outbox.grant_relay('outbox_parked_relay');
GRANT USAGE ON SCHEMA outbox TO outbox_parked_operator;
GRANT EXECUTE ON FUNCTION outbox.release_parked(text, text, text) TO outbox_parked_operator;
SET ROLE outbox_parked_app;
SELECT outbox.release_parked('order', '3');
RESET ROLE;
SET ROLE outbox_parked_relay;
SELECT outbox.release_parked('order', '3');
SELECT outbox.emit_release('order', '3', NULL);
RESET ROLE;
SET ROLE outbox_parked_operator;
SELECT outbox.emit_release('order', '3', NULL);
SELECT count(*) FROM outbox.dead_letters;
SELECT outbox.release_parked('order', '3') AS released_by_operator;
RESET ROLE;
SELECT * FROM pg_temp.stream();

SELECT pg_drop_replication_slot('outbox_parked');
DROP OWNED BY outbox_parked_app, outbox_parked_relay, outbox_parked_operator;
DROP ROLE outbox_parked_app, outbox_parked_relay, outbox_parked_operator;
TRUNCATE outbox.events, outbox.dead_letters;
