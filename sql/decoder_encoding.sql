-- outbox_decoder in a database not in UTF-8 (WIN1252 here): logical message content is the
-- database's text and is copied raw, as wal2json copies it, so both plugins write the same bytes
-- (a UTF-8 database would escape such bytes as \u00XX, which here would be other characters:
-- 0x80 is the euro sign in WIN1252, not U+0080). Column values are raw in both plugins too.
-- Only NUL differs on purpose: wal2json stops there, outbox_decoder writes \u0000.
SET client_min_messages = warning;
\set regress_db :DBNAME
DROP DATABASE IF EXISTS decoder_encoding;
CREATE DATABASE decoder_encoding ENCODING 'WIN1252' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c decoder_encoding
SET client_min_messages = warning;
SET client_encoding = 'UTF8';
CREATE TABLE t (id int PRIMARY KEY, s text);
SELECT 'init' FROM pg_create_logical_replication_slot('dec_enc_d', 'outbox_decoder');
SELECT 'init' FROM pg_create_logical_replication_slot('dec_enc_w', 'wal2json');
SELECT 'm' FROM pg_logical_emit_message(true, 'p', convert_to(E'café € "quoted"\ttab', 'WIN1252'));
SELECT 'm' FROM pg_logical_emit_message(false, 'p', '\x80ff81'::bytea);
INSERT INTO t VALUES (1, 'naïve €');

WITH d AS (SELECT row_number() OVER () n, data FROM pg_logical_slot_get_binary_changes('dec_enc_d', NULL, NULL, 'format-version', '2')),
     w AS (SELECT row_number() OVER () n, data FROM pg_logical_slot_get_binary_changes('dec_enc_w', NULL, NULL, 'format-version', '2'))
SELECT n, d.data = w.data AS same_bytes, encode(d.data, 'escape') AS outbox_decoder
FROM d FULL JOIN w USING (n) ORDER BY n;

-- shard=i/n hashes aggregate_id as UTF-8, as the relay does: 'café' is shard 2 of 3 and 'naïve'
-- shard 1 (hashed as their WIN1252 bytes they would be 0 and 2), rows and messages alike
CREATE EXTENSION outbox;
SELECT 'init' FROM generate_series(0, 2) i, pg_create_logical_replication_slot('dec_enc_s' || i, 'outbox_decoder');
SELECT outbox_emit('t', '{}', aggregate_id => 'café') IS NOT NULL AS emitted;
SELECT outbox_emit('t', '{}', aggregate_id => 'naïve') IS NOT NULL AS emitted;
SELECT 'm' FROM pg_logical_emit_message(true, 'outbox', '{"aggregate_id":"café"}');
SELECT 'm' FROM pg_logical_emit_message(true, 'outbox', '{"aggregate_id":"naïve"}');
SELECT i AS shard, c.data::jsonb->>'action' AS action,
       coalesce(jsonb_path_query_first(c.data::jsonb, '$.columns[*] ? (@.name == "aggregate_id").value') #>> '{}',
                (c.data::jsonb->>'content')::jsonb->>'aggregate_id') AS aggregate_id
FROM generate_series(0, 2) i,
     LATERAL pg_logical_slot_get_changes('dec_enc_s' || i, NULL, NULL, 'outbox', '1', 'shard', i || '/3') c
WHERE c.data::jsonb->>'action' IN ('I', 'M')
ORDER BY i, c.lsn;
SELECT pg_drop_replication_slot('dec_enc_s' || i) FROM generate_series(0, 2) i;

SELECT pg_drop_replication_slot('dec_enc_d');
SELECT pg_drop_replication_slot('dec_enc_w');
\c :regress_db
DROP DATABASE decoder_encoding;
