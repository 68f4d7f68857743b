-- A database in an encoding other than UTF-8 (WIN1252 here) accepts bytes that have no character
-- in UTF-8 (0x81, 0x8d, 0x8f, 0x90, 0x9d in WIN1252: PostgreSQL checks only the form of text on
-- input). The relay could not read an event holding them, so outbox_emit refuses it in both
-- storage modes, in the payload as in the other fields; events with WIN1252 characters that do
-- convert are accepted.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\set regress_db :DBNAME
DROP DATABASE IF EXISTS outbox_encoding;
CREATE DATABASE outbox_encoding ENCODING 'WIN1252' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c outbox_encoding
SET client_min_messages = warning;
SET client_encoding = 'UTF8';
CREATE EXTENSION outbox;
-- text with the byte 0x81, which the database stores as it is
CREATE FUNCTION pg_temp.odd() RETURNS text LANGUAGE sql AS $$ SELECT convert_from('\x6181'::bytea, 'WIN1252') $$;
SELECT length(pg_temp.odd()) AS stored_length;

SELECT outbox_emit('t', jsonb_build_object('text', pg_temp.odd()));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('t', jsonb_build_object(pg_temp.odd(), 1));
SELECT outbox_emit('t', '{}', aggregate_id => pg_temp.odd());
SELECT outbox_emit('t', '{}', headers => jsonb_build_object('h', pg_temp.odd()));
SET outbox.storage = 'wal';
SELECT outbox_emit('t', jsonb_build_object('text', pg_temp.odd()));
\echo :LAST_ERROR_SQLSTATE
-- characters of WIN1252 that UTF-8 has are accepted, in both modes
SELECT outbox_emit('t', '{"text": "café € „quoted“"}', aggregate_id => 'ü') IS NOT NULL AS accepted;
RESET outbox.storage;
SELECT outbox_emit('t', '{"text": "café € „quoted“"}', aggregate_id => 'ü') IS NOT NULL AS accepted;
SELECT payload->>'text' AS text, aggregate_id FROM outbox.events;

\c :regress_db
DROP DATABASE outbox_encoding;
