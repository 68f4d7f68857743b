-- ALTER EXTENSION outbox UPDATE from 0.1: the result equals a fresh install of the current
-- version (compared object by object with this regression database, where pg_regress created
-- it), and what 0.1 left in existing databases is repaired.
\set SHOW_CONTEXT never
\pset null '(null)'
SET client_min_messages = warning;
\set regress_db :DBNAME
DROP DATABASE IF EXISTS outbox_upgrade;
CREATE DATABASE outbox_upgrade;
\c outbox_upgrade
SET client_min_messages = warning;
\pset null '(null)'
CREATE EXTENSION outbox VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'outbox';

-- what a 0.1 database holds: roles given their grants
CREATE ROLE outbox_upgrade_relay LOGIN REPLICATION;
CREATE ROLE outbox_upgrade_app LOGIN;
SELECT outbox.grant_relay('outbox_upgrade_relay');
SELECT outbox.grant_app('outbox_upgrade_app');
-- a captured table, written by the app and by a role that was never given grant_app
CREATE ROLE outbox_upgrade_writer LOGIN;
CREATE TABLE up_orders (id int PRIMARY KEY, note text);
GRANT INSERT ON up_orders TO outbox_upgrade_app, outbox_upgrade_writer;
SELECT outbox.capture('up_orders');
SET ROLE outbox_upgrade_writer;
INSERT INTO up_orders VALUES (1, 'by a writer without grant_app, under 0.1');
RESET ROLE;
-- 0.1 stored a missing exchange as the string 'null' (events went to an exchange "null")
CREATE TABLE up_billing (id int PRIMARY KEY);
SELECT outbox.capture('up_billing', exchange => 'billing');
CREATE TABLE up_quiet (id int PRIMARY KEY);
SELECT outbox.capture('up_quiet');
ALTER TABLE up_quiet DISABLE TRIGGER outbox_capture;
SELECT tgrelid::regclass, tgnargs, tgenabled FROM pg_trigger WHERE tgname = 'outbox_capture' ORDER BY tgrelid::regclass::text;
SELECT exchange FROM outbox.events WHERE aggregate_type = 'up_orders';

-- the new module with the 0.1 objects: table storage works, wal storage asks for the update
SELECT outbox_emit('before.update', '{}') IS NOT NULL AS table_storage_ok;
SET outbox.storage = wal;
SELECT outbox_emit('before.update', '{}');
\echo :LAST_ERROR_SQLSTATE
RESET outbox.storage;

ALTER EXTENSION outbox UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'outbox';

-- the message key: made by the update, and the relay role of 0.1 may read it (the app may not)
SELECT count(*) AS key_rows, min(octet_length(key)) AS key_bytes FROM outbox.message_key_store;
SELECT has_function_privilege('outbox_upgrade_relay', 'outbox.message_key()', 'EXECUTE') AS relay_reads_key,
       has_function_privilege('outbox_upgrade_app', 'outbox.message_key()', 'EXECUTE') AS app_reads_key;
-- and may count the events older than its slot (outbox.events_before_slot), as grant_relay
-- gives now; republish is the owner's
SELECT has_function_privilege('outbox_upgrade_relay', 'outbox.events_before_slot(text)', 'EXECUTE') AS relay_counts,
       has_function_privilege('outbox_upgrade_app', 'outbox.events_before_slot(text)', 'EXECUTE') AS app_counts,
       has_function_privilege('outbox_upgrade_relay', 'outbox.republish(timestamptz, timestamptz)', 'EXECUTE') AS relay_republishes;
-- the status view keeps its grants and shows relays without a slot
SELECT outbox.record_checkpoint('up_gone', '0/1', NULL);
SET ROLE outbox_upgrade_relay;
SELECT slot_name, slot_exists FROM outbox.status;
RESET ROLE;
SELECT outbox.unregister_relay('up_gone');
SET outbox.storage = wal;
SELECT outbox_emit('after.update', '{}') IS NOT NULL AS wal_storage_ok;
RESET outbox.storage;

-- the capture trigger runs with the writer's rights (the update warned about the writer who
-- lacks grant_app)
SELECT prosecdef AS capture_trigger_is_security_definer FROM pg_proc WHERE oid = 'outbox.capture_trigger'::regproc;
SET ROLE outbox_upgrade_writer;
INSERT INTO up_orders VALUES (2, 'by a writer without grant_app, under 0.2');
RESET ROLE;
SET ROLE outbox_upgrade_app;
INSERT INTO up_orders VALUES (3, 'by the app');
RESET ROLE;
SELECT aggregate_id, event_type, payload ->> 'note' AS note FROM outbox.events WHERE aggregate_type = 'up_orders' ORDER BY id;

-- the 'null' exchanges are gone (the update said so), explicit ones and the enabled state kept,
-- and so are the event types 0.1 chose (<table>.created)
SELECT tgrelid::regclass, tgnargs, tgenabled FROM pg_trigger WHERE tgname = 'outbox_capture' ORDER BY tgrelid::regclass::text;
INSERT INTO up_billing VALUES (1);
INSERT INTO up_quiet VALUES (1);
SELECT aggregate_type, event_type, exchange FROM outbox.events WHERE aggregate_id IN ('1', '3') ORDER BY id;

-- Everything that makes up the extension, one line per fact. Privileges of this test's roles
-- are left out (the two databases have different grants), and a NULL ACL is shown as the
-- default it stands for (a grant and its revoke leave the default written out).
CREATE FUNCTION pg_temp.outbox_shape() RETURNS SETOF text LANGUAGE sql AS $$
  WITH ext AS (SELECT oid, extconfig, extcondition FROM pg_extension WHERE extname = 'outbox'),
  members AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e')
  SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
  UNION ALL
  SELECT format('function %s: %s acl=%s comment=%s', p.oid::regprocedure, pg_get_functiondef(p.oid),
                array(SELECT x::text FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) x WHERE x::text NOT LIKE 'outbox_upgrade%' ORDER BY 1),
                obj_description(p.oid, 'pg_proc'))
    FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
  UNION ALL
  SELECT format('relation %s kind=%s rls=%s/%s acl=%s comment=%s view=%s', c.oid::regclass, c.relkind,
                c.relrowsecurity, c.relforcerowsecurity,
                array(SELECT x::text FROM unnest(coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) x WHERE x::text NOT LIKE 'outbox_upgrade%' ORDER BY 1),
                obj_description(c.oid, 'pg_class'),
                CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END)
    FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
  UNION ALL
  SELECT format('column %s.%s %s notnull=%s default=%s comment=%s', c.oid::regclass, a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                col_description(c.oid, a.attnum))
    FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
  UNION ALL
  SELECT format('constraint %s.%s %s', c.oid::regclass, k.conname, pg_get_constraintdef(k.oid))
    FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    JOIN pg_constraint k ON k.conrelid = c.oid
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    JOIN pg_index i ON i.indrelid = c.oid
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid)
    FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    JOIN pg_trigger t ON t.tgrelid = c.oid
  UNION ALL
  SELECT format('dumped %s where %L', cfg.rel::regclass, cfg.cond)
    FROM ext, unnest(ext.extconfig, ext.extcondition) AS cfg(rel, cond)
  UNION ALL
  SELECT format('schema outbox acl=%s', array(SELECT x::text FROM unnest(coalesce(n.nspacl, acldefault('n', n.nspowner))) x
                                              WHERE x::text NOT LIKE 'outbox_upgrade%' ORDER BY 1))
    FROM pg_namespace n WHERE n.nspname = 'outbox'
$$;
CREATE EXTENSION dblink;
SELECT dblink_connect('fresh', format('dbname=%s port=%s host=%s', :'regress_db', current_setting('port'),
                      split_part(current_setting('unix_socket_directories'), ',', 1)));
-- the same query (the function's body) in the fresh database
CREATE TEMP TABLE fresh AS
SELECT line FROM dblink('fresh', (SELECT prosrc FROM pg_proc WHERE oid = 'pg_temp.outbox_shape'::regproc)) AS t(line text);
-- every database has a key of its own
SELECT NOT EXISTS (SELECT 1 FROM dblink('fresh', 'SELECT key FROM outbox.message_key_store') AS t(k bytea)
                    WHERE k IN (SELECT key FROM outbox.message_key_store)) AS own_key,
       (SELECT count(*) FROM outbox.message_key_store WHERE key_id > 1) AS keys_of_random_id;  -- 0.1 signed nothing: no key 1
SELECT dblink_disconnect('fresh');
SELECT count(*) > 50 AS compared_enough FROM fresh;
SELECT side, line FROM (
  SELECT 'only after the update' AS side, line FROM (SELECT s AS line FROM pg_temp.outbox_shape() s EXCEPT SELECT line FROM fresh) a
  UNION ALL
  SELECT 'only in a fresh install', line FROM (SELECT line FROM fresh EXCEPT SELECT s FROM pg_temp.outbox_shape() s) b
) d ORDER BY side, line;

DROP OWNED BY outbox_upgrade_relay, outbox_upgrade_app, outbox_upgrade_writer;
\c :regress_db
DROP DATABASE outbox_upgrade;
DROP ROLE outbox_upgrade_relay, outbox_upgrade_app, outbox_upgrade_writer;
