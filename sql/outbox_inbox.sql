-- The inbox: outbox.inbox_accept() is true the first time a consumer sees a message id and false
-- after; rows belong to the role that wrote them, and no other role can read them, mark an id as
-- seen for it (it would skip that event) or delete its ids (it would apply one twice).
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = notice;
TRUNCATE outbox.inbox;   -- only roles that bypass row-level security may (the owner here)
CREATE ROLE outbox_inbox_a LOGIN;              -- the consumers of application a
CREATE ROLE outbox_inbox_b LOGIN;              -- ... and of application b
CREATE ROLE "OUTBOX_INBOX_A" LOGIN;            -- a name that case-folds to a's
CREATE ROLE outbox_inbox_app LOGIN;            -- an application role: emits, no inbox
CREATE ROLE outbox_inbox_member LOGIN IN ROLE outbox_inbox_a;
CREATE ROLE outbox_inbox_writer LOGIN IN ROLE pg_write_all_data;
CREATE ROLE outbox_inbox_reader LOGIN IN ROLE pg_read_all_data;
CREATE ROLE outbox_inbox_monitor LOGIN;
SELECT outbox.grant_app('outbox_inbox_app');

------------------------------------------------------------------------------------------------
-- grant_consumer: the owner's only, a clear error for no role
------------------------------------------------------------------------------------------------
SELECT outbox.grant_consumer('outbox_inbox_a'), outbox.grant_consumer('outbox_inbox_b'),
       outbox.grant_consumer('"OUTBOX_INBOX_A"');
SELECT outbox.grant_consumer(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.grant_consumer(0);
\echo :LAST_ERROR_SQLSTATE
-- a superuser can read every role's ids: said when it is given the inbox
CREATE ROLE outbox_inbox_super SUPERUSER;
SELECT outbox.grant_consumer('outbox_inbox_super');
DROP OWNED BY outbox_inbox_super;
DROP ROLE outbox_inbox_super;
SET ROLE outbox_inbox_a;
SELECT outbox.grant_consumer('outbox_inbox_app');
RESET ROLE;
-- what a consumer holds: the inbox and the schema, nothing else of the extension
SELECT p.oid::regprocedure AS executable
  FROM pg_proc p WHERE p.pronamespace = 'outbox'::regnamespace AND has_function_privilege('outbox_inbox_a', p.oid, 'EXECUTE')
 ORDER BY 1;
SELECT c.oid::regclass AS tbl, string_agg(priv, ',' ORDER BY priv) AS privileges
  FROM pg_class c, unnest('{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}'::text[]) priv
 WHERE c.relnamespace = 'outbox'::regnamespace AND c.relkind IN ('r', 'v', 'S')
   AND has_table_privilege('outbox_inbox_a', c.oid, priv)
 GROUP BY 1 ORDER BY 1;

------------------------------------------------------------------------------------------------
-- An application role without the grant has no inbox (it could not record its own ids either)
------------------------------------------------------------------------------------------------
SET ROLE outbox_inbox_app;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000001');
SELECT count(*) FROM outbox.inbox;
RESET ROLE;
SET ROLE outbox_inbox_monitor;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000001');
RESET ROLE;

------------------------------------------------------------------------------------------------
-- First time true, then false; per consumer; bad arguments
------------------------------------------------------------------------------------------------
SET ROLE outbox_inbox_a;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000001') AS first,
       outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000001') AS again;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000001') AS next_transaction;
SELECT outbox.inbox_accept('shipping', '01900000-0000-7000-8000-000000000001') AS other_consumer;
-- a rolled-back transaction recorded nothing: the message is applied when it comes again
BEGIN;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000002') AS in_rolled_back;
ROLLBACK;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000002') AS after_rollback;
-- ... and so did a savepoint rolled back inside a transaction that commits
BEGIN;
SAVEPOINT s;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000003') AS in_savepoint;
ROLLBACK TO SAVEPOINT s;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000003') AS after_savepoint;
COMMIT;
SELECT owner, consumer, message_id FROM outbox.inbox ORDER BY consumer, message_id;
SELECT outbox.inbox_accept(NULL, '01900000-0000-7000-8000-000000000001');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.inbox_accept('', '01900000-0000-7000-8000-000000000001');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.inbox_accept('billing', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.inbox_accept(repeat('é', 128), '01900000-0000-7000-8000-000000000001');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.inbox_accept(repeat('x', 255), '01900000-0000-7000-8000-000000000001') AS longest_name;
DELETE FROM outbox.inbox WHERE consumer = repeat('x', 255);
-- not a uuid: the cast refuses it before the function runs
SELECT outbox.inbox_accept('billing', 'not-a-uuid');
RESET ROLE;

------------------------------------------------------------------------------------------------
-- Two applications: the same consumer name and ids, apart
------------------------------------------------------------------------------------------------
SET ROLE outbox_inbox_b;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000001') AS b_first;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000001') AS b_again;
-- b sees its own row only
SELECT owner, consumer, message_id FROM outbox.inbox ORDER BY consumer, message_id;
-- b cannot mark an id as seen for a's consumer (a would skip that event) ...
INSERT INTO outbox.inbox (owner, consumer, message_id)
VALUES ('outbox_inbox_a', 'billing', '01900000-0000-7000-8000-000000000009');
-- ... not by leaving the owner out either: the default is b
INSERT INTO outbox.inbox (consumer, message_id) VALUES ('billing', '01900000-0000-7000-8000-00000000000a')
RETURNING owner;
-- ... nor move its own rows to a, nor delete a's (a would apply them again)
UPDATE outbox.inbox SET owner = 'outbox_inbox_a';
DELETE FROM outbox.inbox WHERE owner = 'outbox_inbox_a'::regrole;
TRUNCATE outbox.inbox;
SELECT outbox.inbox_purge('0') AS b_purged_its_two;
-- ... nor become a
SET ROLE outbox_inbox_a;
RESET ROLE;
-- a role whose name folds to a's is another role: its ids are its own
SET ROLE "OUTBOX_INBOX_A";
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000009') AS folded_first;
SELECT count(*) AS folded_sees FROM outbox.inbox;
RESET ROLE;
SET ROLE outbox_inbox_a;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000009') AS a_still_first;
RESET ROLE;
-- a member of a uses a's grant as itself: its ids are its own; after SET ROLE it acts as a
SET ROLE outbox_inbox_member;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000001') AS member_first;
SET ROLE outbox_inbox_a;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000001') AS as_a;
RESET ROLE;
-- a SECURITY DEFINER function is its owner's code: ids it records are its owner's, whoever calls
CREATE FUNCTION public.inbox_b_accepts(id uuid) RETURNS boolean LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$ SELECT outbox.inbox_accept('billing', id) $$;
ALTER FUNCTION public.inbox_b_accepts(uuid) OWNER TO outbox_inbox_b;
SET ROLE outbox_inbox_a;
SELECT public.inbox_b_accepts('01900000-0000-7000-8000-00000000000b') AS through_b;
SELECT count(*) AS a_got_it FROM outbox.inbox WHERE message_id = '01900000-0000-7000-8000-00000000000b';
RESET ROLE;
DROP FUNCTION public.inbox_b_accepts(uuid);
-- a hostile search_path changes nothing (everything inside is schema-qualified and pinned)
CREATE SCHEMA inbox_evil;
CREATE TABLE inbox_evil.inbox (LIKE outbox.inbox);
GRANT USAGE ON SCHEMA inbox_evil TO PUBLIC;
GRANT ALL ON inbox_evil.inbox TO PUBLIC;
SET ROLE outbox_inbox_a;
SET search_path = inbox_evil, public;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-00000000000c') AS with_evil_path;
RESET search_path;
RESET ROLE;
SELECT count(*) AS in_evil FROM inbox_evil.inbox;
DROP SCHEMA inbox_evil CASCADE;
-- every row, as the owner sees them
SELECT owner, consumer, message_id FROM outbox.inbox ORDER BY owner::text, consumer, message_id;

------------------------------------------------------------------------------------------------
-- Predefined roles and grants by hand: row-level security holds them to their own rows
------------------------------------------------------------------------------------------------
SET ROLE outbox_inbox_writer;
INSERT INTO outbox.inbox (owner, consumer, message_id)
VALUES ('outbox_inbox_a', 'billing', '01900000-0000-7000-8000-00000000000d');
UPDATE outbox.inbox SET accepted_at = now() + interval '100 years';
DELETE FROM outbox.inbox;
RESET ROLE;
SELECT count(*) AS rows_written_by_writer FROM outbox.inbox
 WHERE accepted_at > now() OR message_id = '01900000-0000-7000-8000-00000000000d';
-- pg_read_all_data reads every row (as it reads outbox.events), and writes none
SET ROLE outbox_inbox_reader;
SELECT count(*) AS reader_sees FROM outbox.inbox;
INSERT INTO outbox.inbox (consumer, message_id) VALUES ('billing', '01900000-0000-7000-8000-00000000000e');
RESET ROLE;
-- and so its pg_dump keeps working: pg_dump copies no table of the extension that has row-level
-- security (it would refuse to without --enable-row-security)
SELECT c.oid::regclass AS dumped_with_row_security FROM pg_extension e, unnest(e.extconfig) t(oid) JOIN pg_class c ON c.oid = t.oid
 WHERE e.extname = 'outbox' AND c.relrowsecurity;
-- a monitoring role given everything in the schema by hand still sees no one's ids
GRANT USAGE ON SCHEMA outbox TO outbox_inbox_monitor;
GRANT ALL ON ALL TABLES IN SCHEMA outbox TO outbox_inbox_monitor;
SET ROLE outbox_inbox_monitor;
SELECT count(*) AS monitor_sees FROM outbox.inbox;
INSERT INTO outbox.inbox (owner, consumer, message_id)
VALUES ('outbox_inbox_a', 'billing', '01900000-0000-7000-8000-00000000000f');
DELETE FROM outbox.inbox;
TRUNCATE outbox.inbox;
RESET ROLE;
REVOKE ALL ON ALL TABLES IN SCHEMA outbox FROM outbox_inbox_monitor;
REVOKE USAGE ON SCHEMA outbox FROM outbox_inbox_monitor;
SELECT owner, count(*) FROM outbox.inbox GROUP BY owner ORDER BY owner::text;

------------------------------------------------------------------------------------------------
-- Two transactions with the same id: the second waits for the first, then false (true if the
-- first rolled back); never both true
------------------------------------------------------------------------------------------------
CREATE EXTENSION dblink;
SELECT dblink_connect('first', format('dbname=%s port=%s host=%s', current_database(),
                      current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT dblink_connect('second', format('dbname=%s port=%s host=%s', current_database(),
                      current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT t.pid AS second_pid FROM dblink('second', 'SELECT pg_backend_pid()') AS t(pid int) \gset
CREATE FUNCTION pg_temp.waits_for_lock(pid int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..300 LOOP
        IF EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = waits_for_lock.pid AND a.wait_event_type = 'Lock') THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN false;
END
$$;
SELECT dblink_exec('first', 'BEGIN');
SELECT * FROM dblink('first', $$SELECT outbox.inbox_accept('race', '01900000-0000-7000-8000-000000000010')$$) AS t(first boolean);
SELECT dblink_exec('second', 'BEGIN');
SELECT dblink_send_query('second', $$SELECT outbox.inbox_accept('race', '01900000-0000-7000-8000-000000000010')$$);
SELECT pg_temp.waits_for_lock(:second_pid) AS second_waits;
SELECT dblink_exec('first', 'COMMIT');
SELECT * FROM dblink_get_result('second') AS t(second boolean);
SELECT count(*) AS end_of_results FROM dblink_get_result('second') AS t(second boolean);
SELECT dblink_exec('second', 'COMMIT');
-- the first rolls back: the second goes on with true
SELECT dblink_exec('first', 'BEGIN');
SELECT * FROM dblink('first', $$SELECT outbox.inbox_accept('race', '01900000-0000-7000-8000-000000000011')$$) AS t(first boolean);
SELECT dblink_exec('second', 'BEGIN');
SELECT dblink_send_query('second', $$SELECT outbox.inbox_accept('race', '01900000-0000-7000-8000-000000000011')$$);
SELECT pg_temp.waits_for_lock(:second_pid) AS second_waits;
SELECT dblink_exec('first', 'ROLLBACK');
SELECT * FROM dblink_get_result('second') AS t(second boolean);
SELECT count(*) AS end_of_results FROM dblink_get_result('second') AS t(second boolean);
SELECT dblink_exec('second', 'COMMIT');
SELECT consumer, message_id FROM outbox.inbox WHERE consumer = 'race' ORDER BY message_id;
-- REPEATABLE READ: the second cannot see the first's row in its snapshot, so it fails with a
-- serialization failure (retry the transaction: then false) instead of returning true
SELECT dblink_exec('second', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('second', 'SELECT 1') AS t(snapshot_taken int);
SELECT outbox.inbox_accept('race', '01900000-0000-7000-8000-000000000012') AS first;
SELECT * FROM dblink('second', $$SELECT outbox.inbox_accept('race', '01900000-0000-7000-8000-000000000012')$$, false) AS t(second boolean);
SELECT dblink_error_message('second') LIKE '%could not serialize access%' AS serialization_failure;
SELECT dblink_exec('second', 'ROLLBACK');
SELECT * FROM dblink('second', $$SELECT outbox.inbox_accept('race', '01900000-0000-7000-8000-000000000012')$$) AS t(retried boolean);
SELECT dblink_disconnect('first'), dblink_disconnect('second');
DROP EXTENSION dblink;

------------------------------------------------------------------------------------------------
-- Purge: by age, the caller's own rows; every role's only for the owner
------------------------------------------------------------------------------------------------
-- (ages set by hand: a's billing ids are two days old, the rest new)
UPDATE outbox.inbox SET accepted_at = now() - interval '2 days'
 WHERE owner = 'outbox_inbox_a'::regrole AND consumer = 'billing';
UPDATE outbox.inbox SET accepted_at = now() - interval '2 days' WHERE owner = 'outbox_inbox_b'::regrole;
SET ROLE outbox_inbox_a;
SELECT outbox.inbox_purge('3 days') AS a_none_that_old;
SELECT outbox.inbox_purge('1 day') AS a_purged;
SELECT outbox.inbox_purge('1 day') AS a_again;
SELECT consumer, count(*) FROM outbox.inbox GROUP BY consumer ORDER BY consumer;
SELECT outbox.inbox_purge('0', every_role => true);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.inbox_purge(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.inbox_purge('-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.inbox_purge('1 day', NULL);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- b's old ids are still there: a purged only its own
SELECT owner, count(*) FROM outbox.inbox GROUP BY owner ORDER BY owner::text;
-- the owner purges its own rows by default (the race ids are new: none) ...
SELECT outbox.inbox_purge('1 day') AS owner_own;
-- ... and everybody's with every_role
SELECT outbox.inbox_purge('1 day', every_role => true) AS everybody_old;
SELECT outbox.inbox_purge('0', every_role => true) AS everybody;
SELECT count(*) FROM outbox.inbox;
-- the purge and the accept are index scans
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) DELETE FROM outbox.inbox i WHERE i.accepted_at < now() - interval '1 day' AND i.owner = 10::oid::regrole;
EXPLAIN (COSTS OFF) SELECT 1 FROM outbox.inbox WHERE owner = 10::oid::regrole AND consumer = 'billing'
                                                  AND message_id = '01900000-0000-7000-8000-000000000001';
RESET enable_seqscan;
RESET enable_bitmapscan;

------------------------------------------------------------------------------------------------
-- Rows of a dropped role stay (only the owner sees them) until the owner purges every role's
------------------------------------------------------------------------------------------------
SET ROLE outbox_inbox_b;
SELECT outbox.inbox_accept('billing', '01900000-0000-7000-8000-000000000001');
RESET ROLE;
DROP OWNED BY outbox_inbox_a, outbox_inbox_b, "OUTBOX_INBOX_A", outbox_inbox_app;
DROP ROLE outbox_inbox_a, outbox_inbox_b, "OUTBOX_INBOX_A", outbox_inbox_app, outbox_inbox_member,
          outbox_inbox_writer, outbox_inbox_reader, outbox_inbox_monitor;
SELECT count(*) AS orphaned_rows_kept FROM outbox.inbox i WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = i.owner);
SELECT outbox.inbox_purge('0', every_role => true) AS purged_orphans;
