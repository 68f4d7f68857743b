-- wal storage authenticates its messages: pg_logical_emit_message() is PUBLIC, so the content
-- carries HMAC-SHA256(key, xid ':' body) under a per-database key that only the owner can read,
-- and names the key's id (common/outbox_wire.h). The relay gets the keys through
-- outbox.message_keys() (grant_relay).
\set SHOW_CONTEXT never
\pset null '(null)'
SET client_min_messages = warning;

-- one key of 32 random bytes, readable by the owner only, not dumped (a restore makes a new one)
SELECT count(*) AS rows, min(octet_length(key)) AS key_bytes FROM outbox.message_key_store;
SELECT count(*) AS grants_to_others
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.oid = 'outbox.message_key_store'::regclass AND a.grantee <> c.relowner;
SELECT has_function_privilege('public', 'outbox.message_key()', 'EXECUTE') AS public_may_read_key,
       has_function_privilege('public', 'outbox.new_message_key()', 'EXECUTE') AS public_may_make_keys;
SELECT 'outbox.message_key_store'::regclass = ANY (extconfig) AS key_dumped FROM pg_extension WHERE extname = 'outbox';
SELECT octet_length(outbox.new_message_key()) AS new_key_bytes, outbox.new_message_key() <> outbox.new_message_key() AS random;

-- HMAC-SHA256 (RFC 2104) from sha256(), which is all PostgreSQL 15 has; checked with RFC 4231
CREATE FUNCTION pg_temp.xor_pad(key bytea, pad int) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT decode(string_agg(lpad(to_hex(get_byte(k, i) # pad), 2, '0'), '' ORDER BY i), 'hex')
    FROM (SELECT CASE WHEN octet_length(key) > 64 THEN sha256(key) ELSE key END AS k0) s,
         LATERAL (SELECT k0 || decode(repeat('00', 64 - octet_length(k0)), 'hex') AS k) p,
         generate_series(0, 63) i
$$;
CREATE FUNCTION pg_temp.hmac_sha256(key bytea, msg bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(pg_temp.xor_pad(key, 92) || sha256(pg_temp.xor_pad(key, 54) || msg)), 'hex')
$$;
SELECT pg_temp.hmac_sha256('Jefe', 'what do ya want for nothing?')
       = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' AS rfc4231_case_2;
SELECT pg_temp.hmac_sha256(decode(repeat('aa', 131), 'hex'), 'Test Using Larger Than Block-Size Key - Hash Key First')
       = '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54' AS rfc4231_case_6;

-- The key in use is derived per database (message_key.c): HMAC-SHA256(stored key,
-- 'outbox-db:' || system identifier || ':' || database oid); outbox.message_key() returns it.
CREATE FUNCTION pg_temp.db_key(stored bytea, db oid) RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT decode(pg_temp.hmac_sha256(stored, convert_to(format('outbox-db:%s:%s',
                  (SELECT system_identifier FROM pg_control_system()), db), 'UTF8')), 'hex')
$$;
CREATE FUNCTION pg_temp.db_key(key_id int) RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT pg_temp.db_key((SELECT s.key FROM outbox.message_key_store s WHERE s.key_id = db_key.key_id),
                        (SELECT oid FROM pg_database WHERE datname = current_database()))
$$;
CREATE FUNCTION pg_temp.db_key() RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT pg_temp.db_key(s.key_id) FROM outbox.message_key_store s WHERE s.superseded_at IS NULL
$$;
SELECT outbox.message_key() = pg_temp.db_key() AS function_gives_the_derived_key,
       outbox.message_key() <> (SELECT key FROM outbox.message_key_store) AS not_the_stored_key,
       octet_length(outbox.message_key()) AS derived_key_bytes,
       (SELECT array_agg(k.key = pg_temp.db_key(k.key_id)) FROM outbox.message_keys() k) AS message_keys_derived;

-- Messages as test_decoding shows them, as bytes, with the transaction that wrote them:
-- content = '{"mac":"' hex '","kid":' id ',' body-without-'{', the MAC over xid ':' body
CREATE FUNCTION pg_temp.messages(slot text) RETURNS TABLE (xid xid, content bytea) LANGUAGE sql AS $$
  SELECT xid, substring(data FROM position('content:'::bytea IN data) + 8)
    FROM pg_logical_slot_get_binary_changes(slot, NULL, NULL)
   WHERE position('message: transactional: 1 prefix: outbox,'::bytea IN data) = 1
$$;
CREATE FUNCTION pg_temp.check(xid xid, content bytea) RETURNS TABLE (opens_with_mac boolean, hex_ok boolean, mac_verifies boolean,
                                                             one_object boolean, event_type text) LANGUAGE sql AS $$
  SELECT substring(content FROM 1 FOR 8) = '{"mac":"'::bytea,
         m IS NOT NULL,
         m[1] = pg_temp.hmac_sha256(pg_temp.db_key(m[2]::int),
                                    convert_to(xid::text || ':', 'UTF8') || '{'::bytea || substring(content FROM 82 + length(m[2]))),
         convert_from(content, 'UTF8')::jsonb - 'mac' - 'kid'
           = convert_from('{'::bytea || substring(content FROM 82 + length(m[2])), 'UTF8')::jsonb,
         convert_from(content, 'UTF8')::jsonb ->> 'event_type'
    FROM (SELECT regexp_match(convert_from(substring(content FROM 1 FOR 100), 'UTF8'),
                              '^\{"mac":"([0-9a-f]{64})","kid":([0-9]+),') AS m) r
$$;
SELECT 'init' FROM pg_create_logical_replication_slot('outbox_mac', 'test_decoding');

SET outbox.storage = wal;
SELECT outbox_emit('mac.first', '{"s": "quote\" é \u00e9 \\ /"}', aggregate_type => 'order', aggregate_id => '7',
                   headers => '{"tenant": "ä"}', causation_id => 'k') IS NOT NULL AS ok;
SELECT outbox_emit('mac.second', '[]') IS NOT NULL AS ok;
RESET outbox.storage;
-- what a role without any grant can do (pg_logical_emit_message is PUBLIC): its MAC cannot verify
CREATE ROLE outbox_key_forger LOGIN;
SET ROLE outbox_key_forger;
SELECT pg_logical_emit_message(true, 'outbox',
  '{"mac":"' || repeat('0', 64) || '","id":"0190b3f0-0000-7000-8000-000000000000","event_type":"forged","payload":{}}') IS NOT NULL AS forged;
RESET ROLE;
SELECT c.* FROM pg_temp.messages('outbox_mac') m, LATERAL pg_temp.check(m.xid, m.content) c;
SELECT pg_drop_replication_slot('outbox_mac');

-- Roles: without grants nothing in outbox is reachable; an application role can emit but not
-- read the key; a relay role reads the key through outbox.message_key() only.
CREATE ROLE outbox_key_app LOGIN;
CREATE ROLE outbox_key_relay LOGIN REPLICATION;
SELECT outbox.grant_app('outbox_key_app');
SELECT outbox.grant_relay('outbox_key_relay');
SET ROLE outbox_key_forger;
INSERT INTO outbox.events (event_type, payload) VALUES ('forged', '{}');
SELECT outbox.message_key();
SELECT key FROM outbox.message_key_store;
SELECT outbox.new_message_key();
RESET ROLE;
SET ROLE outbox_key_app;
SELECT outbox_emit('app.ok', '{}') IS NOT NULL AS app_can_emit;
INSERT INTO outbox.events (event_type, payload) VALUES ('forged', '{}');
SELECT outbox.message_key();
SELECT key FROM outbox.message_key_store;
RESET ROLE;
SELECT has_function_privilege('outbox_key_relay', 'outbox.message_key()', 'EXECUTE') AS relay_may_read_key,
       has_table_privilege('outbox_key_relay', 'outbox.message_key_store', 'SELECT') AS relay_may_read_table,
       has_table_privilege('outbox_key_relay', 'outbox.events', 'INSERT') AS relay_may_insert_events;
SET ROLE outbox_key_relay;
SELECT octet_length(outbox.message_key()) AS relay_key_bytes;
SELECT key FROM outbox.message_key_store;
INSERT INTO outbox.events (event_type, payload) VALUES ('forged', '{}');
RESET ROLE;
SELECT event_type FROM outbox.events ORDER BY id;

-- A key is never changed in place (relays hold keys by id): it is rotated. The new key reaches
-- sessions that already hold the old one from their next event on; the rotation writes a signed
-- notice (control "keys") first; both keys verify their own events, and the old one stays.
SELECT 'init' FROM pg_create_logical_replication_slot('outbox_mac', 'test_decoding');
SET outbox.storage = wal;
SELECT outbox_emit('old.key', '{}') IS NOT NULL AS ok;
UPDATE outbox.message_key_store SET key = outbox.new_message_key();
CREATE TEMP TABLE rotated AS SELECT outbox.rotate_message_key() AS new_id;
SELECT outbox_emit('new.key', '{}') IS NOT NULL AS ok;
RESET outbox.storage;
SELECT coalesce(c.event_type, convert_from(m.content, 'UTF8')::jsonb ->> 'control') AS what, c.mac_verifies,
       substring(convert_from(m.content, 'UTF8') FROM '"kid":([0-9]+)')::int = (SELECT new_id FROM rotated) AS new_key
  FROM pg_temp.messages('outbox_mac') m, LATERAL pg_temp.check(m.xid, m.content) c;
SELECT count(*) AS keys_kept, count(*) FILTER (WHERE superseded_at IS NULL) AS current FROM outbox.message_key_store;

SELECT pg_drop_replication_slot('outbox_mac');

-- CREATE DATABASE ... TEMPLATE copies the stored key, but not the key in use: a relay role of the
-- copy (which may call outbox.message_key() there) cannot sign events for the original's relay.
DROP DATABASE IF EXISTS outbox_key_copy;
DROP DATABASE IF EXISTS outbox_key_original;
CREATE DATABASE outbox_key_original;
CREATE EXTENSION dblink;
SELECT dblink_connect('original', format('dbname=outbox_key_original port=%s host=%s', current_setting('port'),
                      split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT dblink_exec('original', 'CREATE EXTENSION outbox');
CREATE TEMP TABLE original_keys AS
SELECT * FROM dblink('original', 'SELECT (SELECT key FROM outbox.message_key_store), outbox.message_key()')
           AS t(stored bytea, in_use bytea);
SELECT dblink_disconnect('original');
CREATE DATABASE outbox_key_copy TEMPLATE outbox_key_original;
SELECT dblink_connect('copy', format('dbname=outbox_key_copy port=%s host=%s', current_setting('port'),
                      split_part(current_setting('unix_socket_directories'), ',', 1)));
CREATE TEMP TABLE copy_keys AS
SELECT * FROM dblink('copy', 'SELECT (SELECT key FROM outbox.message_key_store), outbox.message_key()')
           AS t(stored bytea, in_use bytea);
SELECT dblink_disconnect('copy');
SELECT o.stored = c.stored AS stored_key_copied,
       o.in_use <> c.in_use AS keys_in_use_differ,
       o.in_use = pg_temp.db_key(o.stored, (SELECT oid FROM pg_database WHERE datname = 'outbox_key_original'))
         AS original_key_derived,
       c.in_use = pg_temp.db_key(c.stored, (SELECT oid FROM pg_database WHERE datname = 'outbox_key_copy'))
         AS copy_key_derived
  FROM original_keys o, copy_keys c;
DROP EXTENSION dblink;
DROP DATABASE outbox_key_copy;
DROP DATABASE outbox_key_original;

-- The key is read once per session: many wal-storage events cost no query on the key table
\c
SET client_min_messages = warning;
BEGIN;
SET LOCAL outbox.storage = wal;
SELECT count(outbox_emit('cheap', jsonb_build_object('n', g))) FROM generate_series(1, 200) g;
SELECT seq_scan + coalesce(idx_scan, 0) AS key_reads_first_transaction
  FROM pg_stat_xact_all_tables WHERE relid = 'outbox.message_key_store'::regclass;
COMMIT;
-- the counts above stay pending until flushed, and would show in the next transaction too
SELECT pg_stat_force_next_flush();
BEGIN;
SET LOCAL outbox.storage = wal;
SELECT count(outbox_emit('cheap', jsonb_build_object('n', g))) FROM generate_series(1, 200) g;
SELECT seq_scan + coalesce(idx_scan, 0) AS key_reads_second_transaction
  FROM pg_stat_xact_all_tables WHERE relid = 'outbox.message_key_store'::regclass;
COMMIT;

DROP OWNED BY outbox_key_app, outbox_key_relay;
DROP ROLE outbox_key_app, outbox_key_relay, outbox_key_forger;
TRUNCATE outbox.events;
