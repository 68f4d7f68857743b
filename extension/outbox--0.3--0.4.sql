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
AS 'MODULE_PATHNAME', 'outbox_emit' LANGUAGE C VOLATILE SECURITY DEFINER;
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


------------------------------------------------------------------------------------------------
-- Inbox
------------------------------------------------------------------------------------------------

