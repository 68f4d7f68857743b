-- A SQL_ASCII database gives bytes above 0x7F no character: outbox_emit refuses them (OB013), in
-- every field, the payload and the headers, in both storage modes and through capture triggers,
-- so that nothing is accepted that could not reach the broker with the same characters. ASCII
-- events are accepted. pg_regress's own database is UTF-8, so the test makes one.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\set regress_db :DBNAME
DROP DATABASE IF EXISTS outbox_sql_ascii;
CREATE DATABASE outbox_sql_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c outbox_sql_ascii
SET client_min_messages = warning;
SET client_encoding = 'UTF8';
CREATE EXTENSION outbox;

SELECT outbox_emit('order.created', '{"text": "café"}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('commande.créée', '{}');
SELECT outbox_emit('t', '{"clé": 1}');
SELECT outbox_emit('t', '["a", {"b": ["日本"]}]');
SELECT outbox_emit('t', '{}', aggregate_type => 'order', aggregate_id => 'ü-1');
SELECT outbox_emit('t', '{}', headers => '{"note": "€"}');
SELECT outbox_emit('t', '{}', routing_key => 'r.é');
SELECT outbox_emit('t', '{}', correlation_id => 'é', causation_id => 'c');
-- the same in wal storage
SET outbox.storage = 'wal';
SELECT outbox_emit('order.created', '{"text": "café"}');
\echo :LAST_ERROR_SQLSTATE
-- ASCII events are accepted, in both modes
SELECT outbox_emit('order.created', '{"text": "cafe", "n": 1.5}', aggregate_id => 'a-1', headers => '{"h": "v"}') IS NOT NULL AS accepted;
RESET outbox.storage;
SELECT outbox_emit('order.created', '{"text": "cafe", "n": 1.5}', aggregate_id => 'a-1', headers => '{"h": "v"}') IS NOT NULL AS accepted;
SELECT count(*) AS table_rows FROM outbox.events;

-- a capture trigger goes through outbox_emit: a row with such bytes is refused with the write
CREATE TABLE notes (id int PRIMARY KEY, body text);
SELECT outbox.capture('notes');
INSERT INTO notes VALUES (1, 'plain');
INSERT INTO notes VALUES (2, 'naïve');
\echo :LAST_ERROR_SQLSTATE
SELECT id FROM notes ORDER BY id;
SELECT payload->>'body' AS body FROM outbox.events WHERE aggregate_type = 'notes';

\c :regress_db
DROP DATABASE outbox_sql_ascii;
