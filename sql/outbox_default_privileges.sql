-- The message key and the internals belong to the roles the docs name, whatever default
-- privileges and predefined roles exist: row-level security on outbox.message_key_store, and the
-- install and upgrade scripts revoke what the extension's objects received without the
-- extension granting it (default privileges, PUBLIC). Default privileges must exist before
-- CREATE EXTENSION, so those cases run in databases of their own, made here.
\set SHOW_CONTEXT never
\pset null '(null)'
SET client_min_messages = notice;
\set regress_db :DBNAME
CREATE ROLE outbox_dp_reader LOGIN IN ROLE pg_read_all_data;
CREATE ROLE outbox_dp_writer LOGIN IN ROLE pg_write_all_data;
CREATE ROLE outbox_dp_app LOGIN;
CREATE ROLE outbox_dp_relay LOGIN REPLICATION;
CREATE ROLE outbox_dp_emitter LOGIN;
CREATE ROLE outbox_dp_monitor LOGIN;

-- Helpers, defined again in each database of this test: what a role may do with the
-- internals, by privilege (schema USAGE aside, which the relay has); every ACL of the extension,
-- its members and its schema, one line each (NULL shown as the default it stands for); and
-- every ACL item of the objects in schema outbox and of outbox_emit.
SELECT $def$
CREATE FUNCTION pg_temp.rights(r name) RETURNS TABLE (object text, allowed text) LANGUAGE sql AS $$
  SELECT o, string_agg(p, ',' ORDER BY p)
    FROM (VALUES ('outbox.message_key_store'), ('outbox.events'), ('outbox.relay_checkpoints'),
                 ('outbox.dead_letters'), ('outbox.purge_fences'), ('outbox.status')) t(o),
         unnest('{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}'::text[]) p
   WHERE has_table_privilege(r, o, p)
   GROUP BY o
  UNION ALL
  SELECT 'outbox.dead_letters_id_seq', string_agg(p, ',' ORDER BY p)
    FROM unnest('{USAGE,SELECT,UPDATE}'::text[]) p
   WHERE has_sequence_privilege(r, 'outbox.dead_letters_id_seq', p)
  HAVING count(*) > 0
  UNION ALL
  SELECT 'schema outbox', string_agg(p, ',' ORDER BY p)
    FROM unnest('{USAGE,CREATE}'::text[]) p WHERE has_schema_privilege(r, 'outbox', p)
  HAVING count(*) > 0
  UNION ALL
  SELECT 'functions', string_agg(f.oid::regprocedure::text, ', ' ORDER BY f.oid::regprocedure::text)
    FROM pg_proc f
   WHERE (f.pronamespace = 'outbox'::regnamespace OR f.oid = 'public.outbox_emit'::regproc)
     AND has_function_privilege(r, f.oid, 'EXECUTE')
  HAVING count(*) > 0
  ORDER BY 1
$$
$def$ AS rights_fn,
$def$
CREATE FUNCTION pg_temp.acls() RETURNS TABLE (object text, acl text) LANGUAGE sql AS $$
  WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'outbox' AND d.deptype = 'e')
  SELECT format('%s %s', CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' ELSE 'table' END, c.oid::regclass),
         coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))::text
    FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
  UNION ALL
  SELECT format('column %s.%s', c.oid::regclass, a.attname), a.attacl::text
    FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attacl IS NOT NULL
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure, coalesce(p.proacl, acldefault('f', p.proowner))::text
    FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
  UNION ALL
  SELECT 'type ' || t.oid::regtype, coalesce(t.typacl, acldefault('T', t.typowner))::text
    FROM pg_type t WHERE t.typnamespace = 'outbox'::regnamespace AND t.typacl IS NOT NULL
  UNION ALL
  SELECT 'schema outbox', coalesce(n.nspacl, acldefault('n', n.nspowner))::text
    FROM pg_namespace n WHERE n.nspname = 'outbox'
  ORDER BY 1
$$
$def$ AS acls_fn,
$def$
CREATE FUNCTION pg_temp.acl_items() RETURNS TABLE (object text, grantee text, privilege_type text) LANGUAGE sql AS $$
  SELECT x.object, CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, a.privilege_type
    FROM (SELECT 'table ' || c.oid::regclass AS object, coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl
            FROM pg_class c WHERE c.relnamespace = 'outbox'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          UNION ALL
          SELECT 'function ' || p.oid::regprocedure, coalesce(p.proacl, acldefault('f', p.proowner)) FROM pg_proc p
           WHERE p.pronamespace = 'outbox'::regnamespace OR p.oid = 'public.outbox_emit'::regproc
          UNION ALL
          SELECT 'schema outbox', coalesce(n.nspacl, acldefault('n', n.nspowner)) FROM pg_namespace n WHERE n.nspname = 'outbox') x,
         aclexplode(x.acl) a
$$
$def$ AS items_fn \gset
:rights_fn;
:acls_fn;
:items_fn;

------------------------------------------------------------------------------------------------
-- 1. pg_read_all_data reads no key, pg_write_all_data writes none (this database: a plain install)
------------------------------------------------------------------------------------------------
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'outbox.message_key_store'::regclass;
SET ROLE outbox_dp_reader;
SELECT count(*) AS keys_seen FROM outbox.message_key_store;
SELECT outbox.message_key();
RESET ROLE;
-- (statements that name no column: the key table's columns are not what this is about)
SELECT string_agg(k::text, ',' ORDER BY k::text) AS key_before FROM outbox.message_key_store k \gset
SET ROLE outbox_dp_writer;
SELECT format('UPDATE outbox.message_key_store SET %I = DEFAULT', attname) FROM pg_attribute
 WHERE attrelid = 'outbox.message_key_store'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 1 \gexec
DELETE FROM outbox.message_key_store;
TRUNCATE outbox.message_key_store;
RESET ROLE;
SELECT count(*) > 0 AS key_kept, string_agg(k::text, ',' ORDER BY k::text) = :'key_before' AS key_unchanged
  FROM outbox.message_key_store k;
-- What a plain install grants: nothing but the owner's rights (one line per object)
SELECT * FROM pg_temp.acls();

------------------------------------------------------------------------------------------------
-- 2. Default privileges given before CREATE EXTENSION do not reach the extension's objects
------------------------------------------------------------------------------------------------
DROP DATABASE IF EXISTS outbox_dp_install;
CREATE DATABASE outbox_dp_install;
\c outbox_dp_install
SET client_min_messages = notice;
\pset null '(null)'
ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO outbox_dp_app;
ALTER DEFAULT PRIVILEGES GRANT USAGE, CREATE ON SCHEMAS TO outbox_dp_app;
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO outbox_dp_app;
ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO outbox_dp_app;
ALTER DEFAULT PRIVILEGES GRANT USAGE ON TYPES TO outbox_dp_app;
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO outbox_dp_app;
CREATE EXTENSION outbox;
:rights_fn;
:acls_fn;
:items_fn;
-- app holds nothing on the internals (an empty result)
SELECT * FROM pg_temp.rights('outbox_dp_app');
SELECT * FROM pg_temp.rights('public');
-- even with USAGE on the schema, as a relay role has it
GRANT USAGE ON SCHEMA outbox TO outbox_dp_app;
SET ROLE outbox_dp_app;
SELECT count(*) FROM outbox.message_key_store;
SELECT format('UPDATE outbox.message_key_store SET %I = DEFAULT', attname) FROM pg_attribute
 WHERE attrelid = 'outbox.message_key_store'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 1 \gexec
DELETE FROM outbox.message_key_store;
INSERT INTO outbox.events (id, event_type, payload) VALUES ('01900000-0000-7000-8000-000000000001', 'payment.approved', '{}');
UPDATE outbox.relay_checkpoints SET acknowledged_lsn = 'FFFFFFFF/0';
SELECT outbox.message_key();
SELECT outbox.record_checkpoint('dp', '0/1', NULL);
SELECT outbox.new_message_key();
SELECT outbox.emit_release('t', '1', NULL);
SELECT setval('outbox.dead_letters_id_seq', 1000);
CREATE TABLE outbox.planted (x int);
SELECT outbox_emit('not.granted', '{}');
RESET ROLE;
REVOKE USAGE ON SCHEMA outbox FROM outbox_dp_app;
-- the ACLs are exactly those of a plain install (the test database: no default privileges there)
CREATE EXTENSION dblink;
SELECT dblink_connect('plain', format('dbname=%s port=%s host=%s', :'regress_db', current_setting('port'),
                      split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT side, object, grantee, privilege_type FROM (
  SELECT 'only with default privileges' AS side, * FROM (
    SELECT * FROM pg_temp.acl_items()
    EXCEPT SELECT * FROM dblink('plain', (SELECT prosrc FROM pg_proc WHERE oid = 'pg_temp.acl_items'::regproc)) AS t(object text, grantee text, privilege_type text)) a
  UNION ALL
  SELECT 'only in a plain install', * FROM (
    SELECT * FROM dblink('plain', (SELECT prosrc FROM pg_proc WHERE oid = 'pg_temp.acl_items'::regproc)) AS t(object text, grantee text, privilege_type text)
    EXCEPT SELECT * FROM pg_temp.acl_items()) b) d ORDER BY 1, 2, 3, 4;
SELECT count(*) > 30 AS compared_enough FROM pg_temp.acl_items();
SELECT dblink_disconnect('plain');
DROP EXTENSION dblink;
-- nothing left to revoke, and the grant functions still work
SELECT * FROM outbox.unintended_privileges();
SELECT outbox.grant_relay('outbox_dp_relay');
SELECT * FROM pg_temp.rights('outbox_dp_relay');

------------------------------------------------------------------------------------------------
-- 3. A monitoring role given SELECT on every table sees the internals but not the key
------------------------------------------------------------------------------------------------
GRANT USAGE ON SCHEMA outbox TO outbox_dp_monitor;
GRANT SELECT ON ALL TABLES IN SCHEMA outbox TO outbox_dp_monitor;
SELECT outbox.record_checkpoint('dp_monitored', '0/1', NULL);
SET ROLE outbox_dp_monitor;
SELECT count(*) AS keys_seen FROM outbox.message_key_store;
SELECT slot_name FROM outbox.relay_checkpoints;
SELECT slot_name, slot_exists FROM outbox.status;
SELECT outbox.message_key();
RESET ROLE;

\c :regress_db
DROP DATABASE outbox_dp_install;

------------------------------------------------------------------------------------------------
-- 4. Installed as 0.2 with those default privileges, then updated: the same; the roles given
--    grant_relay/grant_app keep exactly what they had, a monitor keeps its SELECT but the key's
------------------------------------------------------------------------------------------------
DROP DATABASE IF EXISTS outbox_dp_upgrade;
CREATE DATABASE outbox_dp_upgrade;
\c outbox_dp_upgrade
SET client_min_messages = notice;
\pset null '(null)'
ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO outbox_dp_app;
ALTER DEFAULT PRIVILEGES GRANT USAGE, CREATE ON SCHEMAS TO outbox_dp_app;
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO outbox_dp_app;
ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO outbox_dp_app;
CREATE EXTENSION outbox VERSION '0.2';
:rights_fn;
:acls_fn;
:items_fn;
SELECT outbox.grant_relay('outbox_dp_relay');
SELECT outbox.grant_app('outbox_dp_emitter');
GRANT USAGE ON SCHEMA outbox TO outbox_dp_monitor;
GRANT SELECT ON ALL TABLES IN SCHEMA outbox TO outbox_dp_monitor;
-- what 0.2 let app do
SET ROLE outbox_dp_app;
SELECT count(*) AS app_reads_keys FROM outbox.message_key_store;
RESET ROLE;
CREATE TEMP TABLE kept_before AS SELECT * FROM pg_temp.acl_items() WHERE grantee IN ('outbox_dp_relay', 'outbox_dp_emitter', 'outbox_dp_monitor');
ALTER EXTENSION outbox UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'outbox';
SELECT relrowsecurity FROM pg_class WHERE oid = 'outbox.message_key_store'::regclass;
-- app holds nothing, neither does PUBLIC
SELECT 'app' AS who, * FROM pg_temp.rights('outbox_dp_app') UNION ALL SELECT 'public', * FROM pg_temp.rights('public');
-- the relay, the emitter and the monitor: exactly as before the update, but the key
CREATE TEMP TABLE kept_after AS SELECT * FROM pg_temp.acl_items() WHERE grantee IN ('outbox_dp_relay', 'outbox_dp_emitter', 'outbox_dp_monitor');
SELECT 'lost' AS change, * FROM (SELECT * FROM kept_before EXCEPT SELECT * FROM kept_after) l
UNION ALL
SELECT 'gained', * FROM (SELECT * FROM kept_after EXCEPT SELECT * FROM kept_before) g
ORDER BY 1, 2, 3, 4;
SELECT count(*) > 10 AS relay_kept_many FROM kept_after WHERE grantee = 'outbox_dp_relay';
SELECT * FROM pg_temp.rights('outbox_dp_relay');
SELECT * FROM pg_temp.rights('outbox_dp_emitter');
SET ROLE outbox_dp_relay;
SELECT octet_length(outbox.message_key()) AS relay_key_bytes;
RESET ROLE;
SET ROLE outbox_dp_emitter;
SELECT outbox_emit('emitter.did', '{}') IS NOT NULL AS emitter_emits;
RESET ROLE;
SET ROLE outbox_dp_monitor;
SELECT count(*) AS monitor_sees_events FROM outbox.events;
SELECT count(*) AS monitor_keys_seen FROM outbox.message_key_store;
RESET ROLE;
GRANT USAGE ON SCHEMA outbox TO outbox_dp_app;
SET ROLE outbox_dp_app;
SELECT count(*) AS app_keys_seen FROM outbox.message_key_store;
INSERT INTO outbox.events (id, event_type, payload) VALUES ('01900000-0000-7000-8000-000000000002', 'payment.approved', '{}');
UPDATE outbox.relay_checkpoints SET acknowledged_lsn = 'FFFFFFFF/0';
SELECT outbox.message_key();
SELECT outbox.record_checkpoint('dp', '0/1', NULL);
RESET ROLE;
REVOKE USAGE ON SCHEMA outbox FROM outbox_dp_app;
SELECT * FROM outbox.unintended_privileges();
-- the same ACLs as a plain install (the test database), the grants of the roles above aside
CREATE EXTENSION dblink;
SELECT dblink_connect('plain', format('dbname=%s port=%s host=%s', :'regress_db', current_setting('port'),
                      split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT side, object, grantee, privilege_type FROM (
  SELECT 'only after the update' AS side, * FROM (
    SELECT * FROM pg_temp.acl_items() WHERE grantee NOT IN ('outbox_dp_relay', 'outbox_dp_emitter', 'outbox_dp_monitor')
    EXCEPT SELECT * FROM dblink('plain', (SELECT prosrc FROM pg_proc WHERE oid = 'pg_temp.acl_items'::regproc)) AS t(object text, grantee text, privilege_type text)) a
  UNION ALL
  SELECT 'only in a plain install', * FROM (
    SELECT * FROM dblink('plain', (SELECT prosrc FROM pg_proc WHERE oid = 'pg_temp.acl_items'::regproc)) AS t(object text, grantee text, privilege_type text)
    EXCEPT SELECT * FROM pg_temp.acl_items()) b) d ORDER BY 1, 2, 3, 4;
SELECT dblink_disconnect('plain');
DROP EXTENSION dblink;

\c :regress_db
DROP DATABASE outbox_dp_upgrade;
DROP ROLE outbox_dp_reader, outbox_dp_writer, outbox_dp_app, outbox_dp_relay, outbox_dp_emitter, outbox_dp_monitor;
