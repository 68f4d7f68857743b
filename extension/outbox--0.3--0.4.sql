-- outbox 0.3 -> 0.4: event contracts for the teams that emit and consume. CREATE EXTENSION
-- outbox runs the whole chain (outbox--0.1.sql, then each upgrade), so what 0.4 adds is written
-- once, here.
\echo Use "ALTER EXTENSION outbox UPDATE TO '0.4'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- Trace context and priority
------------------------------------------------------------------------------------------------


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

-- Raises OB021, naming where and why, unless the schema is valid JSON Schema draft 7 that the
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

-- What default privileges gave the objects above (0.3's last step ran before they existed).
-- Idempotent: one call at the very end of this file would cover every section at once.
SELECT outbox.restrict_privileges();



------------------------------------------------------------------------------------------------
-- Inbox
------------------------------------------------------------------------------------------------

