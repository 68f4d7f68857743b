-- outbox_emit by a role without the grant: PostgreSQL's refusal, with the fix the capture path
-- gives (outbox.grant_app), in a session that never loaded the module; and nothing widened.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\set regress_db :DBNAME
\set regress_user :USER
CREATE ROLE outbox_eg_app LOGIN;
CREATE ROLE "Outbox EG Nobody" LOGIN;
SELECT outbox.grant_app('outbox_eg_app');
-- a function that emits as its owner, the granted role: callers without the grant may use it
CREATE FUNCTION eg_emit_as_app() RETURNS boolean LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT outbox_emit('eg.definer', '{}') IS NOT NULL $$;
ALTER FUNCTION eg_emit_as_app() OWNER TO outbox_eg_app;
-- one that emits as its caller
CREATE FUNCTION eg_emit_as_caller() RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN PERFORM outbox_emit('eg.invoker', '{}'); END $$;

-- A new session (the module is not loaded yet) of a role without the grant: the hint names the
-- call that fixes it, with the role quoted as grant_app takes it.
\c :regress_db "Outbox EG Nobody"
\set SHOW_CONTEXT never
SELECT outbox_emit('eg.nobody', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('eg.nobody', '{}', aggregate_type => 'x', priority => 1);
SELECT eg_emit_as_caller();
-- the function of the granted role works: nothing refused at planning that runs as another role
SELECT eg_emit_as_app() AS definer_emits;

\c :regress_db outbox_eg_app
\set SHOW_CONTEXT never
SELECT outbox_emit('eg.app', '{"ok": true}') IS NOT NULL AS app_emits;
SELECT eg_emit_as_caller();

\c :regress_db :regress_user
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT event_type FROM outbox.events WHERE event_type LIKE 'eg.%' ORDER BY id;
-- nothing widened: EXECUTE on outbox_emit is the owner's and the app's; the support function is
-- nobody's (its argument is internal: no SQL call can reach it anyway)
SELECT a.grantee::regrole, a.privilege_type
  FROM pg_proc p, aclexplode(p.proacl) a
 WHERE p.oid = 'public.outbox_emit'::regproc AND a.grantee <> p.proowner;
SELECT p.prosupport, has_function_privilege('public', 'outbox.emit_support(internal)', 'EXECUTE') AS public_runs_support,
       has_function_privilege('Outbox EG Nobody', 'outbox.emit_support(internal)', 'EXECUTE') AS nobody_runs_support
  FROM pg_proc p WHERE p.oid = 'public.outbox_emit'::regproc;
SELECT * FROM outbox.unintended_privileges();
SET ROLE "Outbox EG Nobody";
SELECT outbox.emit_support(NULL);
RESET ROLE;

DELETE FROM outbox.events WHERE event_type LIKE 'eg.%';
DROP FUNCTION eg_emit_as_app(), eg_emit_as_caller();
DROP OWNED BY outbox_eg_app;
DROP ROLE outbox_eg_app, "Outbox EG Nobody";
