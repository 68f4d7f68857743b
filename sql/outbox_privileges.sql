-- An application role can emit and do nothing else; a relay role gets what the relay writes.
\set SHOW_CONTEXT never
SET client_min_messages = notice;
CREATE ROLE outbox_test_app LOGIN;
CREATE ROLE outbox_test_relay LOGIN;
CREATE ROLE outbox_test_nobody LOGIN;

SELECT outbox.grant_app('outbox_test_app');
SELECT outbox.grant_relay('outbox_test_relay');   -- notices the missing REPLICATION attribute
-- no role: a clear error, not a syntax error of the GRANT it would have built
SELECT outbox.grant_app(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.grant_relay(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.grant_app(0);
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE outbox_test_relay REPLICATION;
SELECT outbox.grant_relay('outbox_test_relay');

SET ROLE outbox_test_app;
SELECT outbox_emit('app.did', '{"ok": true}') IS NOT NULL AS app_can_emit;
SELECT * FROM outbox.events;
INSERT INTO outbox.events (event_type, payload) VALUES ('forged', '{}');
DELETE FROM outbox.events;
SELECT outbox.purge('0');
SELECT * FROM outbox.dead_letters;
RESET ROLE;

SET ROLE outbox_test_nobody;
SELECT outbox_emit('nobody.did', '{}');
SELECT outbox.grant_app('outbox_test_nobody');
RESET ROLE;

SET ROLE outbox_test_relay;
SELECT outbox.record_checkpoint('relay_priv', '0/10', now());
INSERT INTO outbox.dead_letters (event, reason) VALUES ('{"event_type": "x"}', 'test') RETURNING attempts;
SELECT count(*) FROM outbox.dead_letters;
SELECT slot_name, acknowledged_lsn FROM outbox.relay_checkpoints;
UPDATE outbox.relay_checkpoints SET acknowledged_lsn = '0/0';
SELECT outbox_emit('relay.did', '{}');
RESET ROLE;

SELECT event_type FROM outbox.events ORDER BY id;
-- a hostile search_path does not redirect outbox_emit's insert
CREATE SCHEMA evil;
CREATE TABLE evil.events (LIKE outbox.events);
SET search_path = evil, public;
SELECT outbox_emit('still.safe', '{}') IS NOT NULL AS ok;
RESET search_path;
SELECT count(*) AS in_evil FROM evil.events;
SELECT count(*) AS in_outbox FROM outbox.events WHERE event_type = 'still.safe';
DROP SCHEMA evil CASCADE;

TRUNCATE outbox.events, outbox.dead_letters, outbox.relay_checkpoints;
REVOKE ALL ON FUNCTION outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text, text, text, integer) FROM outbox_test_app;
DROP OWNED BY outbox_test_relay;
DROP ROLE outbox_test_app, outbox_test_relay, outbox_test_nobody;
