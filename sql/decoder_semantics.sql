-- outbox_decoder semantics with the outbox extension: only committed events, in commit order,
-- in emit order inside a transaction; nothing from rolled-back transactions or savepoints;
-- two-phase transactions at COMMIT PREPARED; 10 MB TOASTed payloads intact; ALTER TABLE on
-- outbox.events mid-stream; both storage modes. Volatile values (ids, times) are masked.
\pset null '(null)'
SET client_min_messages = warning;
SET DateStyle = 'ISO, YMD';
SET TimeZone = 'UTC';

CREATE FUNCTION pg_temp.mask(t text) RETURNS text LANGUAGE sql AS $$
  SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(t,
    '[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}', '<uuidv7>', 'g'),
    '("txid","value":")\d+"', '\1<txid>"', 'g'),
    '\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(\+\d\d(:\d\d)?|Z)', '<time>', 'g'),
    '("mac\\?"\s*:\s*\\?")[0-9a-f]{64}(\\?",\\?"kid\\?":)[0-9]+', '\1<mac>\2<kid>', 'g')  -- the wal-storage MAC (outbox_message_key checks it)
$$;
-- the outbox preset, with xids and commit timestamps turned off again (later options win)
CREATE FUNCTION pg_temp.changes(slot text) RETURNS SETOF text LANGUAGE sql AS $$
  SELECT pg_temp.mask(data) FROM pg_logical_slot_get_changes(slot, NULL, NULL,
    'outbox', '1', 'include-xids', '0', 'include-timestamp', '0')
$$;
CREATE FUNCTION pg_temp.payload(line text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT (jsonb_path_query_first(line::jsonb, '$.columns[*] ? (@.name == "payload").value') #>> '{}')::jsonb
$$;
SELECT 'init' FROM pg_create_logical_replication_slot('dec_sem', 'outbox_decoder');

-- transactions without events write nothing at all (not even B/C lines)
CREATE TABLE dec_other (id int PRIMARY KEY);
INSERT INTO dec_other VALUES (1);
SELECT * FROM pg_temp.changes('dec_sem');

-- committed events only; a rolled-back savepoint and a rolled-back transaction leave nothing
BEGIN;
SELECT outbox_emit('a.1', '{"n": 1}', aggregate_type => 'order', aggregate_id => 'o-1') IS NOT NULL AS ok;
SAVEPOINT s;
SELECT outbox_emit('rolled.back.savepoint', '{}') IS NOT NULL AS ok;
ROLLBACK TO SAVEPOINT s;
SAVEPOINT r;
SELECT outbox_emit('a.2', '{"n": 2}', aggregate_type => 'order', aggregate_id => 'o-1') IS NOT NULL AS ok;
RELEASE SAVEPOINT r;
INSERT INTO dec_other VALUES (2);
COMMIT;
BEGIN;
SELECT outbox_emit('rolled.back.txn', '{}') IS NOT NULL AS ok;
ROLLBACK;
SELECT * FROM pg_temp.changes('dec_sem');

-- commit order across two interleaved sessions: the transaction that started first commits last
CREATE EXTENSION dblink;
SELECT dblink_connect('other', format('dbname=%s port=%s host=%s', current_database(),
                      current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT dblink_exec('other', 'BEGIN');
SELECT * FROM dblink('other', $$SELECT outbox_emit('started.first', '{}') IS NOT NULL$$) AS t(ok boolean);
BEGIN;
SELECT outbox_emit('started.second.1', '{}') IS NOT NULL AS ok;
SELECT * FROM dblink('other', $$SELECT outbox_emit('started.first.2', '{}') IS NOT NULL$$) AS t(ok boolean);
SELECT outbox_emit('started.second.2', '{}') IS NOT NULL AS ok;
COMMIT;
SELECT dblink_exec('other', 'COMMIT');
SELECT * FROM pg_temp.changes('dec_sem');
SELECT dblink_disconnect('other');
DROP EXTENSION dblink;

-- two-phase commit: nothing at PREPARE, the events at COMMIT PREPARED; ROLLBACK PREPARED: nothing
BEGIN;
SELECT outbox_emit('two.phase', '{}') IS NOT NULL AS ok;
PREPARE TRANSACTION 'dec_2pc_a';
SELECT * FROM pg_temp.changes('dec_sem');
COMMIT PREPARED 'dec_2pc_a';
BEGIN;
SELECT outbox_emit('two.phase.rolled.back', '{}') IS NOT NULL AS ok;
PREPARE TRANSACTION 'dec_2pc_b';
ROLLBACK PREPARED 'dec_2pc_b';
SELECT * FROM pg_temp.changes('dec_sem');

-- many events in one transaction come out in emit order
BEGIN;
SELECT count(outbox_emit('many', jsonb_build_object('n', g))) FROM generate_series(1, 2000) g;
COMMIT;
SELECT count(*) AS events,
       bool_and((pg_temp.payload(line) ->> 'n')::int = ord - 1) AS in_emit_order
  FROM pg_temp.changes('dec_sem') WITH ORDINALITY AS c(line, ord)
 WHERE line LIKE '{"action":"I"%';

-- a 10 MB payload (TOASTed) comes out intact
SET outbox.max_payload_bytes = '64MB';
SELECT outbox_emit('big', jsonb_build_object('blob', string_agg(md5(g::text), ''))) IS NOT NULL AS ok
  FROM generate_series(1, 330000) g;
SELECT length(p::text) > 10000000 AS over_10mb,
       md5(p::text) = (SELECT md5(payload::text) FROM outbox.events WHERE event_type = 'big') AS intact
  FROM (SELECT pg_temp.payload(line) AS p FROM pg_temp.changes('dec_sem') AS line
         WHERE line LIKE '{"action":"I"%') s;
RESET outbox.max_payload_bytes;

-- ALTER TABLE on outbox.events mid-stream: each event is decoded with the columns it had
SELECT outbox_emit('before.alter', '{}') IS NOT NULL AS ok;
ALTER TABLE outbox.events ADD COLUMN dec_extra text DEFAULT 'extra';
SELECT outbox_emit('after.add', '{}') IS NOT NULL AS ok;
ALTER TABLE outbox.events DROP COLUMN dec_extra;
SELECT outbox_emit('after.drop', '{}') IS NOT NULL AS ok;
SELECT * FROM pg_temp.changes('dec_sem');

-- storage = wal: the events are transactional logical messages with prefix outbox
SET outbox.storage = wal;
BEGIN;
SELECT outbox_emit('wal.1', '{"k": "v"}', aggregate_type => 'user', aggregate_id => 'u-1') IS NOT NULL AS ok;
SELECT outbox_emit('wal.2', '{}', aggregate_id => 'u-2') IS NOT NULL AS ok;
COMMIT;
BEGIN;
SELECT outbox_emit('wal.rolled.back', '{}') IS NOT NULL AS ok;
ROLLBACK;
RESET outbox.storage;
SELECT * FROM pg_temp.changes('dec_sem');

SELECT pg_drop_replication_slot('dec_sem');
DELETE FROM outbox.events;
DROP TABLE dec_other;
