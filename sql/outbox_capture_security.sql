-- The capture trigger runs with the rights of the role that writes the table, never with the
-- extension owner's: to_jsonb(NEW) calls the casts to json of user-defined types, and a table
-- owner must not get a superuser to run a cast of theirs. Writers therefore need EXECUTE on
-- outbox_emit (outbox.grant_app), the one privileged function, which runs no user code.
\set SHOW_CONTEXT never
\pset null '(null)'
SET client_min_messages = warning;
CREATE ROLE outbox_cap_owner LOGIN;
CREATE ROLE outbox_cap_writer LOGIN;
GRANT CREATE ON SCHEMA public TO outbox_cap_owner;
SELECT outbox.grant_app('outbox_cap_owner');

-- an ordinary table owner's type, with a cast to json that tries to escalate and records who
-- ran it
SET ROLE outbox_cap_owner;
CREATE TYPE cap_mood AS ENUM ('calm', 'angry');
CREATE TABLE cap_seen (who text, is_superuser boolean);
CREATE FUNCTION cap_mood_json(m cap_mood) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.cap_seen VALUES (current_user, (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user));
    BEGIN
        ALTER ROLE outbox_cap_owner SUPERUSER;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    RETURN pg_catalog.to_json(m::text);
END
$$;
CREATE CAST (cap_mood AS json) WITH FUNCTION cap_mood_json(cap_mood);
CREATE TABLE cap_orders (id int PRIMARY KEY, mood cap_mood);
GRANT SELECT, INSERT, UPDATE ON cap_orders TO outbox_cap_writer;
GRANT INSERT ON cap_seen TO outbox_cap_writer;
RESET ROLE;

-- a superuser captures the table; the owner writes it
SELECT outbox.capture('cap_orders');
SET ROLE outbox_cap_owner;
INSERT INTO cap_orders VALUES (1, 'calm');
RESET ROLE;
SELECT who, is_superuser FROM cap_seen;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'outbox_cap_owner';
SELECT event_type, payload FROM outbox.events WHERE aggregate_type = 'cap_orders' ORDER BY id;
SELECT p.prosecdef AS trigger_is_security_definer FROM pg_proc p WHERE p.oid = 'outbox.capture_trigger'::regproc;

-- a writer without EXECUTE on outbox_emit is told what to grant, before any cast runs
TRUNCATE cap_seen;
SET ROLE outbox_cap_writer;
INSERT INTO cap_orders VALUES (2, 'angry');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) AS casts_run FROM cap_seen;
SELECT outbox.grant_app('outbox_cap_writer');
SET ROLE outbox_cap_writer;
UPDATE cap_orders SET mood = 'angry' WHERE id = 1;
RESET ROLE;
SELECT who, is_superuser FROM cap_seen;
SELECT event_type, payload FROM outbox.events WHERE aggregate_type = 'cap_orders' ORDER BY id;

DROP TABLE cap_orders, cap_seen;
DROP CAST (cap_mood AS json);
DROP FUNCTION cap_mood_json(cap_mood);
DROP TYPE cap_mood;
REVOKE CREATE ON SCHEMA public FROM outbox_cap_owner;
DROP OWNED BY outbox_cap_owner, outbox_cap_writer;
DROP ROLE outbox_cap_owner, outbox_cap_writer;
TRUNCATE outbox.events;
