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

SELECT pg_drop_replication_slot('dec_enc_d');
SELECT pg_drop_replication_slot('dec_enc_w');
\c :regress_db
DROP DATABASE decoder_encoding;
