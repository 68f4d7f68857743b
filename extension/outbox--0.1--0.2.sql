-- outbox 0.1 -> 0.2: ALTER EXTENSION outbox UPDATE. The result must equal a fresh 0.2 install
-- (sql/outbox_upgrade.sql compares the two).
\echo Use "ALTER EXTENSION outbox UPDATE" to load this file. \quit

------------------------------------------------------------------------------------------------
-- The message key: authenticates wal-storage events
------------------------------------------------------------------------------------------------
-- pg_logical_emit_message() is executable by PUBLIC, so a logical message with the prefix outbox
-- proves nothing by itself. outbox_emit signs each one with HMAC-SHA256 under this database's
-- key (common/outbox_wire.h) and the relay publishes only messages whose MAC verifies. Only the
-- owner may read the table; the relay reads the key through outbox.message_key(). Deliberately
-- not in pg_extension_config_dump: a database restored from a dump gets a key of its own.
CREATE FUNCTION outbox.new_message_key() RETURNS bytea
    AS 'MODULE_PATHNAME', 'outbox_new_message_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION outbox.new_message_key() IS 'A new random message key (strong random bytes)';

CREATE TABLE outbox.message_key_store (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    key        bytea       NOT NULL DEFAULT outbox.new_message_key(),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE outbox.message_key_store IS
    'The key that authenticates wal-storage events (one row; readable by the owner only)';
INSERT INTO outbox.message_key_store DEFAULT VALUES;

-- Sessions keep the key in memory; a changed key must reach them before their next event.
CREATE FUNCTION outbox.message_key_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'outbox_message_key_changed' LANGUAGE C;
CREATE TRIGGER message_key_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON outbox.message_key_store
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.message_key_changed();

-- SECURITY DEFINER: the relay verifies the MACs without any right on the table.
CREATE FUNCTION outbox.message_key() RETURNS bytea
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.key FROM outbox.message_key_store k;
$$;
COMMENT ON FUNCTION outbox.message_key() IS
    'The key of the wal-storage MACs, for outbox-relay (EXECUTE given by outbox.grant_relay)';

REVOKE ALL ON TABLE outbox.message_key_store FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox.new_message_key(), outbox.message_key_changed(), outbox.message_key() FROM PUBLIC;

-- grant_relay also hands out the key now; relay roles of 0.1 get it here, or their relays could
-- not verify a single wal-storage event. They are the roles grant_relay gave record_checkpoint.
CREATE OR REPLACE FUNCTION outbox.grant_relay(relay_role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA outbox TO %s', relay_role);
    EXECUTE format('GRANT SELECT ON outbox.relay_checkpoints, outbox.status TO %s', relay_role);
    EXECUTE format('GRANT SELECT, INSERT ON outbox.dead_letters TO %s', relay_role);
    EXECUTE format('GRANT USAGE ON SEQUENCE outbox.dead_letters_id_seq TO %s', relay_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.record_checkpoint(text, pg_lsn, timestamptz) TO %s', relay_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.message_key() TO %s', relay_role);
    IF NOT (SELECT rolreplication OR rolsuper FROM pg_roles WHERE oid = relay_role) THEN
        RAISE NOTICE 'role % has no REPLICATION attribute, which outbox-relay needs to stream the slot', relay_role
            USING HINT = format('ALTER ROLE %s REPLICATION;', relay_role);
    END IF;
END
$$;
COMMENT ON FUNCTION outbox.grant_relay(regrole) IS
    'Give a role what outbox-relay writes and reads, and the message key (it also needs ALTER ROLE ... REPLICATION)';

DO $$
DECLARE
    relay regrole;
BEGIN
    FOR relay IN SELECT a.grantee::regrole
                   FROM pg_proc p, aclexplode(p.proacl) a
                  WHERE p.oid = 'outbox.record_checkpoint(text, pg_lsn, timestamptz)'::regprocedure
                    AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.message_key() TO %s', relay);
    END LOOP;
END
$$;

------------------------------------------------------------------------------------------------
-- Capture triggers
------------------------------------------------------------------------------------------------
-- 0.1 ran the trigger as SECURITY DEFINER: a table owner's cast to json ran as the extension's
-- owner. From 0.2 on writers of captured tables need EXECUTE on outbox_emit (outbox.grant_app).
-- SECURITY INVOKER: to_jsonb() runs the casts to json of user-defined types, which must not run
-- with the owner's rights. The writer needs EXECUTE on outbox_emit, the one privileged function.
CREATE OR REPLACE FUNCTION outbox.capture_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
-- TG_ARGV: aggregate_type, key columns (a text[] literal), event type for insert, update,
-- delete, exchange (NULL: relay default).
DECLARE
    row_json jsonb;
    keys     text[] := TG_ARGV[1]::text[];
    agg_id   text;
    ev_type  text;
BEGIN
    -- Checked first, so that nothing of the row is converted for a writer who cannot emit.
    IF NOT has_function_privilege('public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text)'::regprocedure,
                                  'EXECUTE') THEN
        RAISE EXCEPTION 'outbox capture on table %: role % may not emit events',
                        format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME), quote_ident(current_user)
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Writes to a captured table emit their events with the rights of the writing role, which needs EXECUTE on outbox_emit.',
                  HINT = format('Let the role emit: SELECT outbox.grant_app(%L);', quote_ident(current_user));
    END IF;
    IF TG_OP = 'DELETE' THEN
        row_json := to_jsonb(OLD);
        ev_type := TG_ARGV[4];
    ELSE
        row_json := to_jsonb(NEW);
        ev_type := CASE TG_OP WHEN 'INSERT' THEN TG_ARGV[2] ELSE TG_ARGV[3] END;
    END IF;
    IF cardinality(keys) = 1 THEN
        agg_id := row_json ->> keys[1];
    ELSE
        -- A composite key becomes a JSON array of its values, so no separator can collide.
        SELECT jsonb_agg(row_json -> k ORDER BY ord)::text INTO agg_id
          FROM unnest(keys) WITH ORDINALITY AS u(k, ord);
    END IF;
    PERFORM public.outbox_emit(ev_type, row_json,
                               aggregate_type => TG_ARGV[0],
                               aggregate_id => agg_id,
                               exchange => TG_ARGV[5]);
    RETURN NULL;
END
$$;

-- Writers that relied on the old rights would now fail at their next write: name them.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT tg.tgrelid::regclass AS tbl,
                    string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname) AS writers
               FROM pg_trigger tg
               JOIN pg_roles r ON NOT r.rolsuper AND r.rolname !~ '^pg_'
                              AND has_table_privilege(r.oid, tg.tgrelid, 'INSERT, UPDATE, DELETE')
                              AND NOT has_function_privilege(r.oid,
                                      'public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text)'::regprocedure,
                                      'EXECUTE')
              WHERE tg.tgname = 'outbox_capture' AND NOT tg.tgisinternal
              GROUP BY tg.tgrelid
    LOOP
        RAISE WARNING 'captured table % is written by roles without EXECUTE on outbox_emit: %', t.tbl, t.writers
            USING DETAIL = 'From outbox 0.2 on the capture trigger emits with the rights of the writing role, so their writes fail.',
                  HINT = 'Give each of them outbox.grant_app(role).';
    END LOOP;
END
$$;
