-- outbox.storage set before the module is loaded (SET in a fresh session, ALTER ROLE/DATABASE,
-- postgresql.conf) is a placeholder nobody checked. An invalid value fails the first emit (and
-- every later one until it is corrected) instead of falling back to table storage.
\set SHOW_CONTEXT never
\pset null '(null)'
TRUNCATE outbox.events;

-- a fresh session: the module is not loaded yet, so SET accepts anything
\c
SELECT count(*) AS outbox_module_loaded FROM pg_settings WHERE name = 'outbox.max_payload_bytes';
SET outbox.storage = 'bogus';
SELECT outbox_emit('after.bogus', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('after.bogus.again', '{}');
\echo :LAST_ERROR_SQLSTATE
SHOW outbox.storage;
-- loaded now: an invalid value is refused at SET
SET outbox.storage = 'disk';
\echo :LAST_ERROR_SQLSTATE
-- a valid SET LOCAL works for its transaction; the rollback brings the session's bad value back
BEGIN;
SET LOCAL outbox.storage = wal;
SELECT outbox_emit('in.wal.transaction', '{}') IS NOT NULL AS ok;
ROLLBACK;
SHOW outbox.storage;
SELECT outbox_emit('after.local.rollback', '{}');
\echo :LAST_ERROR_SQLSTATE
-- RESET (or a valid SET) cures the session
RESET outbox.storage;
SHOW outbox.storage;
SELECT outbox_emit('after.reset', '{}') IS NOT NULL AS ok;

-- SET LOCAL of an invalid value in a fresh session: the transaction fails, the session's own
-- value (the default) holds afterwards
\c
BEGIN;
SET LOCAL outbox.storage = 'bogus';
SELECT outbox_emit('in.transaction', '{}');
ROLLBACK;
SHOW outbox.storage;
SELECT outbox_emit('after.rollback', '{}') IS NOT NULL AS ok;

-- a session value under a bad SET LOCAL: the error in the transaction, the session value after it
\c
SET outbox.storage = wal;
BEGIN;
SET LOCAL outbox.storage = 'tabel';
SELECT outbox_emit('in.transaction', '{}');
ROLLBACK;
SHOW outbox.storage;
SELECT outbox_emit('wal.after.rollback', '{}') IS NOT NULL AS ok;

-- a bad role setting fails the role's first emit
\c
CREATE ROLE outbox_setting_app LOGIN;
SELECT outbox.grant_app('outbox_setting_app');
ALTER ROLE outbox_setting_app SET outbox.storage = 'wall';
\c - outbox_setting_app
SELECT outbox_emit('role.setting', '{}');
\echo :LAST_ERROR_SQLSTATE
\c - postgres
ALTER ROLE outbox_setting_app RESET outbox.storage;

-- valid values in any case are taken, shown in lower case
\c
SET outbox.storage = 'WAL';
SELECT outbox_emit('upper.case', '{}') IS NOT NULL AS ok;
SHOW outbox.storage;

\c
SELECT event_type FROM outbox.events ORDER BY id;
REVOKE ALL ON FUNCTION outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text, text, text, integer) FROM outbox_setting_app;
DROP ROLE outbox_setting_app;
TRUNCATE outbox.events;
