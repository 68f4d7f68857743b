-- outbox 0.3 -> 0.4: event contracts for the teams that emit and consume. CREATE EXTENSION
-- outbox runs the whole chain (outbox--0.1.sql, then each upgrade), so what 0.4 adds is written
-- once, here.
\echo Use "ALTER EXTENSION outbox UPDATE TO '0.4'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- Trace context and priority
------------------------------------------------------------------------------------------------
-- An event carries the W3C trace context of the request that wrote it, so that a consumer's
-- trace continues the request's (traceparent, tracestate: outbox_emit's arguments, or what
-- tracing middleware set with SET LOCAL outbox.traceparent/outbox.tracestate, which capture
-- triggers pick up too), and a priority 0..9, the AMQP priority (the relay does not reorder by
-- it). outbox_emit checks them (trace_context.c, validate.c). schema_version: the version of the
-- event type's schema the payload was checked against (see "Schemas"). The relay sends
-- traceparent and tracestate as headers of those names (common/outbox_wire.h).
ALTER TABLE outbox.events
    ADD COLUMN traceparent    text,
    ADD COLUMN tracestate     text,
    ADD COLUMN priority       smallint,
    ADD COLUMN schema_version integer;
COMMENT ON COLUMN outbox.events.traceparent IS 'W3C traceparent (sent as the header traceparent); NULL: none';
COMMENT ON COLUMN outbox.events.tracestate IS 'W3C tracestate (sent as the header tracestate); only with a traceparent';
COMMENT ON COLUMN outbox.events.priority IS 'AMQP priority 0..9 (a header or field on other brokers); NULL: none';
COMMENT ON COLUMN outbox.events.schema_version IS
    'The version of the event type''s schema the payload was checked against (header x-outbox-schema-version); NULL: none';

-- outbox_emit takes three more parameters, appended with defaults, so every call of 0.3 means
-- what it meant. The function is replaced, not overloaded: next to a second outbox_emit a call
-- with the leading arguments alone would be ambiguous. The old one steps aside into the schema
-- outbox until its grants (outbox.grant_app's, and any by hand) are given to the new one.
ALTER FUNCTION public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text) SET SCHEMA outbox;

CREATE FUNCTION public.outbox_emit(
    -- those of 0.1 to 0.3 (outbox--0.1.sql), unchanged
    event_type text, payload jsonb, aggregate_type text DEFAULT NULL, aggregate_id text DEFAULT NULL,
    routing_key text DEFAULT NULL, exchange text DEFAULT NULL, headers jsonb DEFAULT '{}',
    correlation_id text DEFAULT NULL, causation_id text DEFAULT NULL,
    -- 0.4
    traceparent    text    DEFAULT NULL,
    tracestate     text    DEFAULT NULL,
    priority       integer DEFAULT NULL)
RETURNS uuid
-- SECURITY DEFINER: applications may emit without any right on outbox.events. The C code names
-- every object schema-qualified and by type OID, so the caller's search_path cannot redirect it.
-- A symbol of its own: a session that loaded the 0.3 module before the package was upgraded
-- keeps it mapped, and its outbox_emit would take these 12 arguments as 9, storing events without
-- their schema check, trace context or priority. With a new name such a session fails visibly
-- ("could not find function") until it reconnects.
AS 'MODULE_PATHNAME', 'outbox_emit_v04' LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text, text, text, integer) IS
    'Emit an event in the current transaction: published by outbox-relay if and only if the transaction commits (trace context from outbox.traceparent/outbox.tracestate when none is passed)';
REVOKE ALL ON FUNCTION public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text, text, text, integer) FROM PUBLIC;

-- The new function starts from its owner's rights alone (the default privileges of the role
-- running this script gave more, to roles that never held the old one: taken back here, without
-- outbox.restrict_privileges' warnings about grants that existed before), then gets every EXECUTE
-- grant of the old one, with its grant option (recorded as the owner's).
DO $$
DECLARE
    new_fn regprocedure := 'public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text, text, text, integer)';
    old_fn regprocedure := 'outbox.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text)';
    item   record;
BEGIN
    FOR item IN SELECT DISTINCT a.grantee FROM pg_proc p, aclexplode(p.proacl) a
                 WHERE p.oid = new_fn AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %s CASCADE', new_fn,
                       CASE item.grantee WHEN 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END);
    END LOOP;
    FOR item IN SELECT a.grantee, bool_or(a.is_grantable) AS grantable
                  FROM pg_proc p, aclexplode(p.proacl) a
                 WHERE p.oid = old_fn AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner
                 GROUP BY a.grantee
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s%s', new_fn,
                       CASE item.grantee WHEN 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END,
                       CASE WHEN item.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;
DROP FUNCTION outbox.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text);

-- Functions of the chain are changed here in place, not written out again: each change names
-- the text it replaces in the current definition (an error if it is not there exactly once), so
-- what changes is what one reads, and no second copy of a body has to be kept in step.
--  - Those that name the old signature (outbox.grant_app, the capture trigger's privilege check)
--    name the new one; none may be left pointing at the dropped function.
--  - Copies of an event carry its trace context and priority: outbox.republish (its rows),
--    outbox.replay_dead_letter (a dead letter's event as the relay wrote it; release_parked
--    calls it) and the lines of a slot recovery (as the decoder writes a row, every column).
DO $$
DECLARE
    old_sig text := 'public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text)';
    new_sig text := 'public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text, text, text, integer)';
    change  record;
    def     text;
BEGIN
    FOR change IN
        SELECT p.oid::regprocedure AS fn, old_sig AS old, new_sig AS new
          FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
          JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
         WHERE e.extname = 'outbox' AND strpos(p.prosrc, old_sig) > 0
        UNION ALL
        SELECT f::regprocedure, o, n FROM (VALUES
            ('outbox.republish(timestamptz, timestamptz)',
             'causation_id   => ev.causation_id);',
             'causation_id   => ev.causation_id,
                                   traceparent    => ev.traceparent,
                                   tracestate     => ev.tracestate,
                                   priority       => ev.priority);'),
            ('outbox.replay_dead_letter(bigint)',
             'causation_id   => dl.event ->> ''causation_id'');',
             'causation_id   => dl.event ->> ''causation_id'',
                                 traceparent    => dl.event ->> ''traceparent'',
                                 tracestate     => dl.event ->> ''tracestate'',
                                 priority       => (dl.event ->> ''priority'')::integer);'),
            ('outbox.slot_recovery_events(text, uuid, int)',
             'json_build_object(''name'', ''created_at'', ''value'', e.created_at::text)))::text',
             'json_build_object(''name'', ''created_at'', ''value'', e.created_at::text),
               json_build_object(''name'', ''traceparent'', ''value'', e.traceparent),
               json_build_object(''name'', ''tracestate'', ''value'', e.tracestate),
               json_build_object(''name'', ''priority'', ''value'', e.priority),
               json_build_object(''name'', ''schema_version'', ''value'', e.schema_version)))::text')
        ) c(f, o, n)
    LOOP
        def := pg_get_functiondef(change.fn);
        IF (length(def) - length(replace(def, change.old, ''))) / length(change.old) <> 1 THEN
            RAISE EXCEPTION 'outbox 0.4: % does not hold exactly once the text it changes: %', change.fn, change.old;
        END IF;
        EXECUTE replace(def, change.old, change.new);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                 JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                WHERE e.extname = 'outbox' AND strpos(p.prosrc, old_sig) > 0) THEN
        RAISE EXCEPTION 'outbox 0.4: a function of the extension still names %', old_sig;
    END IF;
END
$$;

-- A copy carries the original's trace context, or none: never the session's, which belongs to
-- whatever request runs the copy (outbox_emit falls back to these settings).
ALTER FUNCTION outbox.republish(timestamptz, timestamptz) SET outbox.traceparent = '' SET outbox.tracestate = '';
ALTER FUNCTION outbox.replay_dead_letter(bigint) SET outbox.traceparent = '' SET outbox.tracestate = '';

------------------------------------------------------------------------------------------------
-- Schemas
------------------------------------------------------------------------------------------------
-- A JSON Schema (draft 7) per event type, enforced by outbox_emit, and so by capture triggers, in
-- the emitting transaction (extension/schemas.c). Versions are kept; the newest one is enforced
-- unless drop_schema dropped the type. Writes go through register_schema and drop_schema
-- (SECURITY DEFINER): the roles outbox.grant_schema_admin names, and the owner.
CREATE TABLE outbox.event_schemas (
    event_type    text        NOT NULL,
    version       integer     NOT NULL CHECK (version > 0),
    schema        jsonb       NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by name        NOT NULL,
    dropped_at    timestamptz,
    PRIMARY KEY (event_type, version)
);
COMMENT ON TABLE outbox.event_schemas IS
    'JSON Schemas of event types by version (outbox.register_schema); outbox_emit enforces the newest one unless dropped';
COMMENT ON COLUMN outbox.event_schemas.registered_by IS 'The role that registered it (SET ROLE counts; SECURITY DEFINER does not)';
COMMENT ON COLUMN outbox.event_schemas.dropped_at IS 'Set by outbox.drop_schema on every version of the type: none is enforced';

-- Every backend keeps its compiled schemas until this table changes, in whatever way (the
-- functions below, the owner by hand, a restore): the statement sends a relcache invalidation,
-- which reaches every backend when the transaction commits. The same C function as
-- outbox.message_key_changed: it invalidates the table it is a trigger of.
CREATE FUNCTION outbox.event_schemas_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'outbox_message_key_changed' LANGUAGE C;
CREATE TRIGGER event_schemas_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON outbox.event_schemas
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.event_schemas_changed();

-- Raises OB031, naming where and why, unless the schema is valid JSON Schema draft 7 that the
-- validator can compile (the meta-schema, patterns that PCRE2 compiles, no remote $ref).
CREATE FUNCTION outbox.check_schema(event_type text, schema jsonb) RETURNS void
    AS 'MODULE_PATHNAME', 'outbox_check_schema' LANGUAGE C STRICT;

CREATE FUNCTION outbox.register_schema(event_type text, schema jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    newest outbox.event_schemas;
    caller name := CASE current_setting('role') WHEN 'none' THEN session_user ELSE current_setting('role') END;
BEGIN
    IF register_schema.event_type IS NULL OR register_schema.event_type = '' OR register_schema.schema IS NULL THEN
        RAISE EXCEPTION 'outbox.register_schema: % is %', CASE WHEN register_schema.schema IS NULL THEN 'schema' ELSE 'event_type' END,
                        CASE WHEN register_schema.event_type = '' THEN 'empty' ELSE 'NULL' END
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'For example: SELECT outbox.register_schema(''order.created'', ''{"type": "object", "required": ["order_id"]}'');';
    END IF;
    -- outbox_emit refuses longer event types (an AMQP short string), so no event could use it.
    IF octet_length(convert_to(register_schema.event_type, 'UTF8')) > 255 THEN
        RAISE EXCEPTION 'outbox.register_schema: event_type is % bytes long, more than the 255 bytes outbox_emit allows',
                        octet_length(convert_to(register_schema.event_type, 'UTF8'))
            USING ERRCODE = 'OB002';
    END IF;
    PERFORM outbox.check_schema(register_schema.event_type, register_schema.schema);
    -- One registration at a time: versions are numbered without gaps or clashes. Emits only read.
    LOCK TABLE outbox.event_schemas IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO newest FROM outbox.event_schemas s
     WHERE s.event_type = register_schema.event_type ORDER BY s.version DESC LIMIT 1;
    -- The schema in force registered again (a deployment that runs its migrations each time)
    -- is no new version.
    IF FOUND AND newest.dropped_at IS NULL AND newest.schema = register_schema.schema THEN
        RETURN newest.version;
    END IF;
    INSERT INTO outbox.event_schemas (event_type, version, schema, registered_at, registered_by)
    VALUES (register_schema.event_type, coalesce(newest.version, 0) + 1, register_schema.schema, now(), caller);
    RETURN coalesce(newest.version, 0) + 1;
END
$$;
COMMENT ON FUNCTION outbox.register_schema(text, jsonb) IS
    'Register a new version of an event type''s JSON Schema (draft 7), enforced by outbox_emit from the commit on; returns the version';

CREATE FUNCTION outbox.drop_schema(event_type text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    LOCK TABLE outbox.event_schemas IN SHARE ROW EXCLUSIVE MODE;
    -- Marked, not deleted: the versions stay listed, and a later registration goes on numbering
    -- after them, so a version number never means two schemas to a consumer.
    UPDATE outbox.event_schemas s SET dropped_at = now()
     WHERE s.event_type = drop_schema.event_type AND s.dropped_at IS NULL;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION outbox.drop_schema(text) IS
    'Stop enforcing a schema for the event type (its versions are kept, marked dropped); false if none was enforced';

-- SECURITY DEFINER: reads outbox.event_schemas for roles without any right on it. The C code
-- names the table schema-qualified; search_path pinned all the same.
CREATE FUNCTION outbox.check_payload(event_type text, payload jsonb) RETURNS text
    AS 'MODULE_PATHNAME', 'outbox_check_payload' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION outbox.check_payload(text, jsonb) IS
    'NULL if outbox_emit would accept the payload for the event type''s enforced schema (or it has none), otherwise the message it would raise';

-- For application roles (outbox.grant_app gives outbox_emit alone): check payloads, and read
-- the contracts they must meet.
CREATE FUNCTION outbox.grant_schema_check(app_role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF app_role IS NULL OR app_role::oid = 0 THEN
        RAISE EXCEPTION 'outbox: no role given to grant schema rights to'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name an existing role: SELECT outbox.grant_schema_admin(''schema_admin''); or SELECT outbox.grant_schema_check(''app'');';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA outbox TO %s', app_role);
    EXECUTE format('GRANT SELECT ON outbox.event_schemas TO %s', app_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.check_payload(text, jsonb) TO %s', app_role);
END
$$;
COMMENT ON FUNCTION outbox.grant_schema_check(regrole) IS
    'Let a role check payloads against the schemas (outbox.check_payload) and read outbox.event_schemas';

CREATE FUNCTION outbox.grant_schema_admin(admin_role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM outbox.grant_schema_check(admin_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.register_schema(text, jsonb), outbox.drop_schema(text) TO %s',
                   admin_role);
END
$$;
COMMENT ON FUNCTION outbox.grant_schema_admin(regrole) IS
    'Let a role register and drop event schemas, list them and check payloads';

REVOKE ALL ON TABLE outbox.event_schemas FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox.event_schemas_changed(), outbox.check_schema(text, jsonb),
    outbox.register_schema(text, jsonb), outbox.drop_schema(text), outbox.check_payload(text, jsonb),
    outbox.grant_schema_check(regrole), outbox.grant_schema_admin(regrole) FROM PUBLIC;

-- pg_dump keeps the registered schemas.
SELECT pg_catalog.pg_extension_config_dump('outbox.event_schemas', '');



------------------------------------------------------------------------------------------------
-- Inbox
------------------------------------------------------------------------------------------------

-- A consumer makes its processing of at-least-once deliveries effectively once by recording each
-- message id in the transaction that applies the message: outbox.inbox_accept() is true the first
-- time (apply it), false for a duplicate (skip it). See docs/design.md, "The inbox".
--
-- Rows belong to the role that wrote them (owner = current_user, the role whose privileges are in
-- effect: SET ROLE needs membership, a SECURITY DEFINER function is its owner's code), so
-- consumers of different applications share the table without seeing or touching each other's
-- ids: marking an id as seen for another role's consumer would make it skip that event (a loss).
-- The functions are SECURITY INVOKER (nothing privileged to abuse) and row-level security holds
-- every non-owner, whatever privileges it holds (grant_consumer's, pg_write_all_data, a grant by
-- hand or by default privileges), to its own rows. owner is a regrole: 4 bytes, it follows a
-- renamed role, and COPY writes it as the role's name, so ids copied into another cluster stay
-- with their role.
--
-- The role is looked up by its exact name: quote_ident(current_user)::regrole, never
-- current_user::regrole, which folds case ("Billing" would resolve to billing's rows).
CREATE TABLE outbox.inbox (
    accepted_at timestamptz NOT NULL DEFAULT now(),
    owner       regrole     NOT NULL DEFAULT quote_ident(current_user)::regrole,
    message_id  uuid        NOT NULL,
    consumer    text        NOT NULL,
    PRIMARY KEY (owner, consumer, message_id),
    CONSTRAINT inbox_consumer_named CHECK (consumer <> '' AND octet_length(consumer) <= 255)
);
COMMENT ON TABLE outbox.inbox IS
    'Message ids each consumer has processed (outbox.inbox_accept), one row per owner role, consumer and id; a role sees only its own rows';
-- outbox.inbox_purge deletes by age, for one role or for all: both are one range of this index
-- (the role is checked in the index, so other roles' rows cost no heap visit).
CREATE INDEX inbox_accepted_at ON outbox.inbox (accepted_at, owner);

-- Not FORCE: the owner purges every role's rows (inbox_purge(..., every_role => true)) and is a
-- superuser anyway. Members of pg_read_all_data read every row (their purpose, as they read
-- outbox.events); they write only their own, like everybody.
ALTER TABLE outbox.inbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY inbox_own_rows ON outbox.inbox
    USING (owner = quote_ident(current_user)::regrole)
    WITH CHECK (owner = quote_ident(current_user)::regrole);
CREATE POLICY inbox_read_all_data ON outbox.inbox FOR SELECT
    USING (pg_has_role('pg_read_all_data', 'USAGE'));

-- TRUNCATE ignores row-level security: whoever was granted it by hand (GRANT ALL ON ALL TABLES
-- IN SCHEMA outbox to a monitor) would wipe every role's ids. Only those RLS does not restrict.
CREATE FUNCTION outbox.inbox_truncate_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF row_security_active('outbox.inbox') THEN
        RAISE EXCEPTION 'outbox.inbox: only the extension''s owner may truncate the inbox, which holds every role''s ids'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Delete your own ids: SELECT outbox.inbox_purge(''0'');';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER inbox_truncate_guard BEFORE TRUNCATE ON outbox.inbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.inbox_truncate_guard();

CREATE FUNCTION outbox.inbox_accept(consumer text, message_id uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    inserted integer;
BEGIN
    IF consumer IS NULL OR consumer = '' THEN
        RAISE EXCEPTION 'outbox.inbox_accept: consumer must not be %', CASE WHEN consumer IS NULL THEN 'NULL' ELSE 'empty' END
            USING ERRCODE = 'OB001',
                  HINT = 'Name the consumer, the same name at every start: SELECT outbox.inbox_accept(''billing'', <message id>);';
    END IF;
    IF octet_length(consumer) > 255 THEN
        RAISE EXCEPTION 'outbox.inbox_accept: consumer is % bytes long, more than 255', octet_length(consumer)
            USING ERRCODE = 'OB002', HINT = 'Use a shorter consumer name; it is part of every row''s key.';
    END IF;
    IF message_id IS NULL THEN
        RAISE EXCEPTION 'outbox.inbox_accept: message_id must not be NULL'
            USING ERRCODE = 'OB001',
                  HINT = 'Pass the message''s id: AMQP message_id, the NATS header Nats-Msg-Id, or the Redis field id (the outbox event id).';
    END IF;
    -- One probe of the primary key, which also makes a concurrent transaction with the same id
    -- wait for this one: it gets false if this one commits, true if it rolls back.
    INSERT INTO outbox.inbox (owner, consumer, message_id)
    VALUES (quote_ident(current_user)::regrole, inbox_accept.consumer, inbox_accept.message_id)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted = 1;
END
$$;
COMMENT ON FUNCTION outbox.inbox_accept(text, uuid) IS
    'Record a message id for a consumer in the current transaction: true the first time (apply the message), false for a duplicate (skip it)';

CREATE FUNCTION outbox.inbox_purge(older_than interval, every_role boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deleted bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'outbox.inbox_purge: older_than must be a non-negative interval, not %', coalesce(older_than::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Keep ids longer than a message can be delivered again, e.g. SELECT outbox.inbox_purge(''7 days'');';
    END IF;
    IF every_role IS NULL THEN
        RAISE EXCEPTION 'outbox.inbox_purge: every_role must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Leave it out to purge your own rows.';
    END IF;
    IF every_role THEN
        -- Row-level security would quietly narrow the DELETE to the caller's rows: say so instead.
        IF row_security_active('outbox.inbox') THEN
            RAISE EXCEPTION 'outbox.inbox_purge: only the extension''s owner may purge every role''s ids'
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Purge your own: SELECT outbox.inbox_purge(''7 days'');';
        END IF;
        DELETE FROM outbox.inbox i WHERE i.accepted_at < now() - older_than;
    ELSE
        DELETE FROM outbox.inbox i
         WHERE i.accepted_at < now() - older_than AND i.owner = quote_ident(current_user)::regrole;
    END IF;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;
COMMENT ON FUNCTION outbox.inbox_purge(interval, boolean) IS
    'Delete the caller''s inbox ids accepted longer ago than the interval (every role''s with every_role => true, for the owner); returns the count';

-- Like grant_relay: SECURITY INVOKER and not executable by PUBLIC, so only the owner (who holds
-- the grant options) can hand these out.
CREATE FUNCTION outbox.grant_consumer(consumer_role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF consumer_role IS NULL OR consumer_role::oid = 0 THEN
        RAISE EXCEPTION 'outbox.grant_consumer: no role given'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name an existing role: SELECT outbox.grant_consumer(''billing'');';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA outbox TO %s', consumer_role);
    -- SELECT and DELETE for inbox_purge (its WHERE reads accepted_at), INSERT for inbox_accept;
    -- row-level security keeps all three to the role's own rows.
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON outbox.inbox TO %s', consumer_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.inbox_accept(text, uuid), outbox.inbox_purge(interval, boolean) TO %s',
                   consumer_role);
    IF (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.oid = consumer_role) THEN
        RAISE NOTICE 'role % bypasses row-level security: it can read and change every role''s inbox ids', consumer_role
            USING HINT = 'Run consumers as roles without SUPERUSER and BYPASSRLS.';
    END IF;
END
$$;
COMMENT ON FUNCTION outbox.grant_consumer(regrole) IS
    'Let a role use the inbox (outbox.inbox_accept, outbox.inbox_purge), on its own rows only';

REVOKE ALL ON outbox.inbox FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox.inbox_accept(text, uuid), outbox.inbox_purge(interval, boolean),
    outbox.grant_consumer(regrole), outbox.inbox_truncate_guard() FROM PUBLIC;

-- Not in pg_dump's list of the extension's data (pg_extension_config_dump): pg_dump refuses a
-- table with row-level security to a role that does not bypass it unless --enable-row-security,
-- which would then hide rows of every other table with policies. Backups by a pg_read_all_data
-- role keep working; the ids are in physical backups, and the owner can COPY them (README).

-- The last step of the script, after every section: revoke what default privileges gave the
-- objects this version added (outbox.restrict_privileges, "Default privileges" in 0.2--0.3).
SELECT outbox.restrict_privileges();
