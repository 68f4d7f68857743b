-- Trace context: outbox_emit(traceparent =>, tracestate =>), or what the transaction set with
-- SET LOCAL outbox.traceparent/outbox.tracestate (capture triggers included), checked against
-- W3C Trace Context; stored in both storage modes and carried by every copy of an event.
\set VERBOSITY default
\set SHOW_CONTEXT never
\pset null '(null)'
SET client_min_messages = warning;
TRUNCATE outbox.events, outbox.dead_letters, outbox.relay_checkpoints;
\set tp '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
\set tp2 '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00'
CREATE FUNCTION pg_temp.last_trace() RETURNS TABLE (event_type text, traceparent text, tracestate text) LANGUAGE sql AS $$
  SELECT e.event_type, e.traceparent, e.tracestate FROM outbox.events e ORDER BY e.id DESC LIMIT 1
$$;

------------------------------------------------------------------------------------------------
-- traceparent: valid ones are stored as given
------------------------------------------------------------------------------------------------
SELECT outbox_emit('tp.v00', '{}', traceparent => :'tp') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
-- a higher version: 55 characters, or more after a '-' (the spec's rule for versions to come)
SELECT outbox_emit('tp.v01', '{}', traceparent => '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01') IS NOT NULL AS ok;
SELECT outbox_emit('tp.v01.more', '{}', traceparent => 'cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-comes-next') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
SELECT outbox_emit('tp.none', '{}') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();

------------------------------------------------------------------------------------------------
-- traceparent: each malformed one is refused, naming what is wrong, the format in the hint
------------------------------------------------------------------------------------------------
SELECT outbox_emit('e', '{}', traceparent => '');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => '00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => '00-00000000000000000000000000000000-00f067aa0ba902b7-01');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => '00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902g7-01');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => ' 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
\echo :LAST_ERROR_SQLSTATE
-- version 00 is exactly 55 characters; a higher version goes on only after a '-'
SELECT outbox_emit('e', '{}', traceparent => :'tp' || '-00');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => E'01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-a\nb');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-é');
\echo :LAST_ERROR_SQLSTATE
-- a long one is shown cut
SELECT outbox_emit('e', '{}', traceparent => repeat('z', 1000));
-- a higher version is bounded (the relay sends it twice with CloudEvents): 256 characters pass, 257 not
SELECT outbox_emit('tp.v01.max', '{}', traceparent => '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-' || repeat('a', 200)) IS NOT NULL AS ok;
SELECT outbox_emit('e', '{}', traceparent => '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-' || repeat('a', 201));
\echo :LAST_ERROR_SQLSTATE

------------------------------------------------------------------------------------------------
-- tracestate: valid ones are stored as given; one without any list member carries nothing
------------------------------------------------------------------------------------------------
SELECT outbox_emit('ts.two', '{}', traceparent => :'tp', tracestate => 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
-- optional white space and empty members, tenant@system keys, keys starting with a digit,
-- values with inner and leading spaces and every other printable character
SELECT outbox_emit('ts.forms', '{}', traceparent => :'tp',
                   tracestate => E' acme@rojo=1 ,\t, 0x/a_b-c*d@e= a b~!"#$%&''()*+-./:;<>?[\\]^_`{|}~ ,') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
SELECT outbox_emit('ts.empty', '{}', traceparent => :'tp', tracestate => E' , \t,') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
SELECT outbox_emit('ts.nothing', '{}', tracestate => '') IS NOT NULL AS ok;  -- nothing, so no traceparent needed
SELECT * FROM pg_temp.last_trace();
-- the limits: 32 members, 512 characters, keys and values of 256
SELECT outbox_emit('ts.32', '{}', traceparent => :'tp',
                   tracestate => (SELECT string_agg('k' || n || '=v', ',') FROM generate_series(1, 32) n)) IS NOT NULL AS ok;
SELECT outbox_emit('ts.512', '{}', traceparent => :'tp',
                   tracestate => 'a=' || repeat('v', 256) || ',' || 'b=' || repeat('w', 251)) IS NOT NULL AS ok;
SELECT length(tracestate) FROM outbox.events WHERE event_type = 'ts.512';
SELECT outbox_emit('ts.key256', '{}', traceparent => :'tp', tracestate => repeat('k', 256) || '=v') IS NOT NULL AS ok;

------------------------------------------------------------------------------------------------
-- tracestate: each malformed one is refused
------------------------------------------------------------------------------------------------
SELECT outbox_emit('e', '{}', traceparent => :'tp',
                   tracestate => (SELECT string_agg('k' || n || '=v', ',') FROM generate_series(1, 33) n));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'a=' || repeat('v', 256) || ',' || 'b=' || repeat('w', 252));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'rojo=1,congo');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => '=1');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'Rojo=1');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => '_rojo=1');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'ro jo=1');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => repeat('k', 257) || '=v');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'rojo=');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'rojo=a=b');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => E'rojo=a\tb');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'rojo=café');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'rojo=' || repeat('v', 257));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'rojo=1,congo=2,rojo=3');
\echo :LAST_ERROR_SQLSTATE
-- a tracestate belongs to a traceparent
SELECT outbox_emit('e', '{}', tracestate => 'rojo=1');
\echo :LAST_ERROR_SQLSTATE

------------------------------------------------------------------------------------------------
-- SET LOCAL outbox.traceparent/outbox.tracestate: the transaction's trace context
------------------------------------------------------------------------------------------------
BEGIN;
SET LOCAL outbox.traceparent = :'tp';
SET LOCAL outbox.tracestate = 'rojo=00f067aa0ba902b7';
SELECT outbox_emit('set.both', '{}') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
-- a traceparent passed in is another trace: the session's tracestate does not go with it
SELECT outbox_emit('set.arg.traceparent', '{}', traceparent => :'tp2') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
-- a tracestate passed in goes with the session's traceparent
SELECT outbox_emit('set.arg.tracestate', '{}', tracestate => 'congo=t61rcWkgMzE') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
COMMIT;
-- SET LOCAL ended with the transaction
SHOW outbox.traceparent;
SELECT outbox_emit('set.after', '{}') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
-- an empty setting is unset (a tracestate alone then is refused, see below)
SET outbox.traceparent = '';
SELECT outbox_emit('set.empty', '{}') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
-- a malformed setting is refused at the emit, naming the setting
BEGIN;
SET LOCAL outbox.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7';
SELECT outbox_emit('e', '{}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SET LOCAL outbox.traceparent = :'tp';
SET LOCAL outbox.tracestate = 'rojo=1,rojo=2';
SELECT outbox_emit('e', '{}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SET LOCAL outbox.tracestate = 'rojo=1';
SELECT outbox_emit('e', '{}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- ... unless the traceparent is passed: the setting is not used then
BEGIN;
SET LOCAL outbox.traceparent = 'bogus';
SELECT outbox_emit('set.bogus.overridden', '{}', traceparent => :'tp') IS NOT NULL AS ok;
SELECT * FROM pg_temp.last_trace();
COMMIT;
RESET outbox.traceparent;
-- set before the module is loaded in a session (middleware's first statement): taken all the same
\c
SET client_min_messages = warning;
BEGIN;
SET LOCAL outbox.traceparent = :'tp2';
SELECT outbox_emit('set.before.load', '{}') IS NOT NULL AS ok;
COMMIT;
SELECT event_type, traceparent FROM outbox.events ORDER BY id DESC LIMIT 1;

------------------------------------------------------------------------------------------------
-- Capture triggers pass no trace context: they take the transaction's
------------------------------------------------------------------------------------------------
CREATE TABLE tc_orders (id int PRIMARY KEY, note text);
SELECT outbox.capture('tc_orders');
CREATE ROLE outbox_tc_app LOGIN;
SELECT outbox.grant_app('outbox_tc_app');
GRANT SELECT, INSERT, UPDATE ON tc_orders TO outbox_tc_app;
SET ROLE outbox_tc_app;
BEGIN;
SET LOCAL outbox.traceparent = :'tp';
SET LOCAL outbox.tracestate = 'rojo=00f067aa0ba902b7';
INSERT INTO tc_orders VALUES (1, 'traced');
UPDATE tc_orders SET note = 'traced again' WHERE id = 1;
COMMIT;
INSERT INTO tc_orders VALUES (2, 'untraced');
-- a malformed setting fails the write, as outbox_emit would
BEGIN;
SET LOCAL outbox.traceparent = 'not-a-traceparent';
INSERT INTO tc_orders VALUES (3, 'refused');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET ROLE;
SELECT event_type, aggregate_id, traceparent, tracestate FROM outbox.events WHERE aggregate_type = 'tc_orders' ORDER BY id;

------------------------------------------------------------------------------------------------
-- The header table the event controls counts traceparent and tracestate (names and values):
-- an event that passes outbox_emit never fails the relay's frame check
------------------------------------------------------------------------------------------------
-- 61440 bytes: h's entry (1 + 1 + 1 + 4 + n) and traceparent's (1 + 11 + 1 + 4 + 55 = 72)
SELECT outbox_emit('e', '{}', traceparent => :'tp', headers => jsonb_build_object('h', repeat('v', 61433 - 72))) IS NOT NULL AS at_limit_ok;
SELECT outbox_emit('e', '{}', traceparent => :'tp', headers => jsonb_build_object('h', repeat('v', 61433 - 71)));
\echo :LAST_ERROR_SQLSTATE
-- tracestate 'a=1': 1 + 10 + 1 + 4 + 3 = 19 more
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'a=1', headers => jsonb_build_object('h', repeat('v', 61433 - 72 - 19))) IS NOT NULL AS at_limit_ok;
SELECT outbox_emit('e', '{}', traceparent => :'tp', tracestate => 'a=1', headers => jsonb_build_object('h', repeat('v', 61433 - 72 - 18)));
\echo :LAST_ERROR_SQLSTATE

------------------------------------------------------------------------------------------------
-- Both storage modes, as the relay reads them: table rows (every column, through the decoder)
-- and wal messages (the members only when set)
------------------------------------------------------------------------------------------------
TRUNCATE outbox.events;
CREATE FUNCTION pg_temp.mask(t text) RETURNS text LANGUAGE sql AS $$
  SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(t,
    '[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}', '<uuidv7>', 'g'),
    '("txid","value":")\d+"', '\1<txid>"', 'g'),
    '\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(\+\d\d(:\d\d)?|Z)', '<time>', 'g'),
    '("mac"\s*:\s*")[0-9a-f]{64}(",\s*"kid"\s*:\s*)[0-9]+', '\1<mac>\2<kid>', 'g')
$$;
SELECT 'init' FROM pg_create_logical_replication_slot('outbox_trace', 'outbox_decoder');
BEGIN;
SELECT outbox_emit('table.traced', '{}', traceparent => :'tp', tracestate => 'rojo=1') IS NOT NULL AS ok;
SELECT outbox_emit('table.plain', '{}') IS NOT NULL AS ok;
SET LOCAL outbox.storage = wal;
SELECT outbox_emit('wal.traced', '{}', traceparent => :'tp', tracestate => 'rojo=1') IS NOT NULL AS ok;
SELECT outbox_emit('wal.plain', '{}') IS NOT NULL AS ok;
COMMIT;
SELECT CASE WHEN data::jsonb ->> 'action' = 'M' THEN pg_temp.mask(data::jsonb ->> 'content')
            ELSE (SELECT string_agg(c ->> 'name' || '=' || coalesce(c ->> 'value', 'null'), ' ')
                    FROM jsonb_array_elements(data::jsonb -> 'columns') c
                   WHERE c ->> 'name' IN ('event_type', 'traceparent', 'tracestate', 'priority', 'schema_version')) END AS line
  FROM pg_logical_slot_get_changes('outbox_trace', NULL, NULL, 'outbox', '1')
 WHERE data::jsonb ->> 'action' IN ('I', 'M');
SELECT pg_drop_replication_slot('outbox_trace');

------------------------------------------------------------------------------------------------
-- Copies carry the original's trace context, never the session's
------------------------------------------------------------------------------------------------
TRUNCATE outbox.events;
SELECT outbox_emit('copy.traced', '{}', traceparent => :'tp', tracestate => 'rojo=1') IS NOT NULL AS ok;
SELECT outbox_emit('copy.plain', '{}') IS NOT NULL AS ok;
BEGIN;
SET LOCAL outbox.traceparent = :'tp2';
SELECT outbox.republish(now() - interval '1 hour');
SELECT event_type, headers ? 'outbox-original-id' AS copy, traceparent, tracestate FROM outbox.events ORDER BY id;
-- the session's setting is back after republish
SHOW outbox.traceparent;
COMMIT;
-- a dead letter's event, as the relay writes it
INSERT INTO outbox.dead_letters (event_id, event, reason, slot_name) VALUES
  ('01900000-0000-7000-8000-000000000001', jsonb_build_object('id', '01900000-0000-7000-8000-000000000001', 'event_type', 'dl.traced',
     'payload', '{}'::jsonb, 'headers', '{}'::jsonb, 'traceparent', :'tp', 'tracestate', 'rojo=1'), 'nacked', 'tc'),
  ('01900000-0000-7000-8000-000000000002', jsonb_build_object('id', '01900000-0000-7000-8000-000000000002', 'event_type', 'dl.plain',
     'payload', '{}'::jsonb, 'headers', '{}'::jsonb), 'nacked', 'tc');
BEGIN;
SET LOCAL outbox.traceparent = :'tp2';
SELECT outbox.replay_dead_letter(id) IS NOT NULL AS replayed FROM outbox.dead_letters ORDER BY id;
COMMIT;
SELECT event_type, traceparent, tracestate FROM outbox.events WHERE event_type LIKE 'dl.%' ORDER BY id;
-- a slot recovery's lines: as the decoder writes the row, every column
SELECT outbox.record_checkpoint('tc', pg_current_wal_insert_lsn(), now());
SELECT outbox.begin_slot_recovery('tc') IS NOT NULL AS began;
SELECT outbox.slot_recovery_upper('tc');
SELECT (SELECT string_agg(c ->> 'name' || '=' || coalesce(c ->> 'value', 'null'), ' ')
          FROM json_array_elements(line::json -> 'columns') WITH ORDINALITY AS x(c, n) WHERE n = 4 OR n > 11) AS line
  FROM outbox.slot_recovery_events('tc', NULL, 10);
SELECT outbox.finish_slot_recovery('tc');

------------------------------------------------------------------------------------------------
-- Update from 0.3: outbox_emit replaced with its grants, the capture trigger re-pointed; the
-- new module with the 0.3 objects still emits (as 0.3 did) until the update
------------------------------------------------------------------------------------------------
\set regress_db :DBNAME
DROP DATABASE IF EXISTS outbox_tc_upgrade;
CREATE DATABASE outbox_tc_upgrade;
\c outbox_tc_upgrade
SET client_min_messages = warning;
\set VERBOSITY default
\set SHOW_CONTEXT never
\pset null '(null)'
CREATE EXTENSION outbox VERSION '0.3';
CREATE ROLE outbox_tc_granter LOGIN;
GRANT EXECUTE ON FUNCTION outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text) TO outbox_tc_granter WITH GRANT OPTION;
CREATE TABLE up_orders (id int PRIMARY KEY);
SELECT outbox.capture('up_orders');
GRANT INSERT ON up_orders TO outbox_tc_app;
SELECT outbox.grant_app('outbox_tc_app');
BEGIN;
SET LOCAL outbox.traceparent = :'tp';
SELECT outbox_emit('before.update', '{}') IS NOT NULL AS table_storage_ok;
SET LOCAL outbox.storage = wal;
SELECT outbox_emit('before.update', '{}') IS NOT NULL AS wal_storage_ok;
COMMIT;
SELECT event_type FROM outbox.events;
ALTER EXTENSION outbox UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'outbox';
SELECT p.oid::regprocedure AS emit_function,
       array(SELECT x::text FROM unnest(p.proacl) x ORDER BY 1) AS acl
  FROM pg_proc p WHERE p.proname = 'outbox_emit';
SELECT count(*) AS functions_naming_the_old_one FROM pg_proc WHERE prosrc LIKE '%outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text)%';
SET ROLE outbox_tc_app;
BEGIN;
SET LOCAL outbox.traceparent = :'tp';
INSERT INTO up_orders VALUES (1);
SELECT outbox_emit('after.update', '{}', tracestate => 'rojo=1') IS NOT NULL AS ok;
COMMIT;
RESET ROLE;
SELECT event_type, traceparent, tracestate, priority, schema_version FROM outbox.events ORDER BY id;
-- the same functions and columns as a fresh install (outbox_upgrade compares everything, from 0.1)
CREATE FUNCTION pg_temp.shape() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT format('%s %s %s', p.oid::regprocedure, md5(pg_get_functiondef(p.oid)),
                array(SELECT x::text FROM unnest(p.proacl) x WHERE x::text NOT LIKE 'outbox_tc%' ORDER BY 1))
    FROM pg_proc p WHERE p.pronamespace = 'outbox'::regnamespace OR p.proname = 'outbox_emit'
  UNION ALL
  SELECT format('%s %s %s', a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum))
    FROM pg_attribute a WHERE a.attrelid = 'outbox.events'::regclass AND a.attnum > 0 AND NOT a.attisdropped
$$;
CREATE EXTENSION dblink;
SELECT dblink_connect('fresh', format('dbname=%s port=%s host=%s', :'regress_db', current_setting('port'),
                      split_part(current_setting('unix_socket_directories'), ',', 1)));
CREATE TEMP TABLE fresh AS
SELECT line FROM dblink('fresh', (SELECT prosrc FROM pg_proc WHERE oid = 'pg_temp.shape'::regproc)) AS t(line text);
SELECT dblink_disconnect('fresh');
SELECT count(*) > 40 AS compared_enough FROM fresh;
(SELECT 'only after the update' AS side, s FROM pg_temp.shape() s EXCEPT SELECT 'only after the update', line FROM fresh)
UNION ALL
(SELECT 'only in a fresh install', line FROM fresh EXCEPT SELECT 'only in a fresh install', s FROM pg_temp.shape() s);
DROP OWNED BY outbox_tc_app, outbox_tc_granter;
\c :regress_db
DROP DATABASE outbox_tc_upgrade;
DROP TABLE tc_orders;
DROP OWNED BY outbox_tc_app;
DROP ROLE outbox_tc_app, outbox_tc_granter;
TRUNCATE outbox.events, outbox.dead_letters, outbox.relay_checkpoints;
