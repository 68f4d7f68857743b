-- outbox 0.2: the transactional outbox. Complain if sourced in psql rather than via CREATE EXTENSION.
\echo Use "CREATE EXTENSION outbox" to load this file. \quit

-- The schema outbox (from the control file) holds the internals. Nothing here is granted to
-- PUBLIC: outbox.grant_app() and outbox.grant_relay() hand out exactly what each role needs.

------------------------------------------------------------------------------------------------
-- Ids
------------------------------------------------------------------------------------------------
CREATE FUNCTION outbox.uuidv7() RETURNS uuid
    AS 'MODULE_PATHNAME', 'outbox_uuidv7' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION outbox.uuidv7() IS 'A time-ordered UUID (RFC 9562 version 7), increasing within a session';

CREATE FUNCTION outbox.uuidv7_time(uuid) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'outbox_uuidv7_time' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION outbox.uuidv7_time(uuid) IS 'The millisecond timestamp inside a UUIDv7 (NULL for other versions)';

------------------------------------------------------------------------------------------------
-- Events
------------------------------------------------------------------------------------------------
CREATE TABLE outbox.events (
    id             uuid        PRIMARY KEY DEFAULT outbox.uuidv7(),
    aggregate_type text,
    aggregate_id   text,
    event_type     text        NOT NULL,
    payload        jsonb       NOT NULL,
    headers        jsonb       NOT NULL DEFAULT '{}',
    exchange       text,
    routing_key    text,
    correlation_id text,
    causation_id   text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    txid           xid8        DEFAULT pg_current_xact_id()
);
COMMENT ON TABLE outbox.events IS 'Events written by outbox_emit(); outbox-relay streams their inserts from the WAL';
COMMENT ON COLUMN outbox.events.exchange IS 'NULL: the relay''s default exchange';
COMMENT ON COLUMN outbox.events.routing_key IS 'NULL: <aggregate_type>.<event_type>';
COMMENT ON COLUMN outbox.events.headers IS 'A flat object of scalars, sent as AMQP headers';
COMMENT ON COLUMN outbox.events.txid IS
    'The top-level transaction that wrote the event: inside a savepoint xmin is a subtransaction''s, which snapshots (purge fences, slot recovery) cannot judge';

CREATE FUNCTION public.outbox_emit(
    event_type     text,
    payload        jsonb,
    aggregate_type text  DEFAULT NULL,
    aggregate_id   text  DEFAULT NULL,
    routing_key    text  DEFAULT NULL,
    exchange       text  DEFAULT NULL,
    headers        jsonb DEFAULT '{}',
    correlation_id text  DEFAULT NULL,
    causation_id   text  DEFAULT NULL)
RETURNS uuid
-- SECURITY DEFINER: applications may emit without any right on outbox.events. The C code names
-- every object schema-qualified and by type OID, so the caller's search_path cannot redirect it.
AS 'MODULE_PATHNAME', 'outbox_emit' LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text) IS
    'Emit an event in the current transaction: published by outbox-relay if and only if the transaction commits';

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

-- SECURITY DEFINER: the relay verifies the MACs without any right on the table. It returns the
-- key derived for this database (message_key.c), not the stored one: CREATE DATABASE ... TEMPLATE
-- copies the table, and the copy's relay role must not get the key of the original.
CREATE FUNCTION outbox.message_key() RETURNS bytea
    AS 'MODULE_PATHNAME', 'outbox_message_key'
    LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION outbox.message_key() IS
    'The key of the wal-storage MACs (derived per database from outbox.message_key_store), for outbox-relay (EXECUTE given by outbox.grant_relay)';

------------------------------------------------------------------------------------------------
-- Capture triggers: INSERT/UPDATE/DELETE on an application table emit events
------------------------------------------------------------------------------------------------
-- SECURITY INVOKER: to_jsonb() runs the casts to json of user-defined types, which must not run
-- with the owner's rights. The writer needs EXECUTE on outbox_emit, the one privileged function.
CREATE FUNCTION outbox.capture_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
-- TG_ARGV, as outbox.capture writes it: aggregate_type, key columns (a text[] literal), event
-- types for insert, update and delete, then the exchange only when there is one. Trigger
-- arguments are strings and none of them may be empty, so a NULL exchange is an argument left
-- out: TG_ARGV[5] is NULL then.
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
    -- A key column dropped or renamed after capture would make every aggregate id NULL unnoticed.
    IF NOT row_json ?& keys THEN
        RAISE EXCEPTION 'outbox capture on table %: key column(s) % no longer exist',
                        format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME),
                        (SELECT string_agg(quote_ident(k), ', ') FROM unnest(keys) AS k WHERE NOT row_json ? k)
            USING ERRCODE = 'OB012',
                  DETAIL = 'The aggregate id of each event comes from the key columns named when the table was captured.',
                  HINT = format('Capture the table again with its current key: SELECT outbox.uncapture(%1$L); SELECT outbox.capture(%1$L, ...);',
                                format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME));
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

-- What outbox_emit would refuse at every write, refused once at capture time (validate.c).
CREATE FUNCTION outbox.check_capture(aggregate_type text, created_type text, updated_type text,
                                     deleted_type text, exchange text) RETURNS void
    AS 'MODULE_PATHNAME', 'outbox_check_capture' LANGUAGE C STABLE;

CREATE FUNCTION outbox.capture(
    target         regclass,
    aggregate_type text   DEFAULT NULL,
    key_columns    text[] DEFAULT NULL,
    created_type   text   DEFAULT NULL,
    updated_type   text   DEFAULT NULL,
    deleted_type   text   DEFAULT NULL,
    exchange       text   DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel_name text;
    keys     text[] := key_columns;
    missing  text;
    agg_type text;
    created  text := coalesce(created_type, 'created');
    updated  text := coalesce(updated_type, 'updated');
    deleted  text := coalesce(deleted_type, 'deleted');
BEGIN
    SELECT c.relname INTO rel_name FROM pg_class c WHERE c.oid = target AND c.relkind IN ('r', 'p');
    IF rel_name IS NULL THEN
        RAISE EXCEPTION 'outbox.capture: % is not a table', target
            USING ERRCODE = 'wrong_object_type', HINT = 'Capture a plain or partitioned table.';
    END IF;
    -- outbox.events captured would emit an event for each event, without end.
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = target AND c.relnamespace = 'outbox'::regnamespace)
       OR EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = target AND d.objsubid = 0
                     AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'outbox') THEN
        RAISE EXCEPTION 'outbox.capture: table % belongs to the outbox extension and cannot be captured', target
            USING ERRCODE = 'OB011',
                  DETAIL = 'The outbox writes its tables itself; outbox.events captured would emit an event for every event, without end.',
                  HINT = 'Capture application tables; the events in outbox.events are published already.';
    END IF;
    agg_type := coalesce(aggregate_type, rel_name);
    PERFORM outbox.check_capture(agg_type, created, updated, deleted, exchange);
    IF keys IS NULL THEN
        SELECT array_agg(a.attname::text ORDER BY k.ord) INTO keys
          FROM pg_index i
          CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = target AND i.indisprimary;
        IF keys IS NULL THEN
            RAISE EXCEPTION 'outbox.capture: table % has no primary key to take the aggregate id from', target
                USING ERRCODE = 'invalid_table_definition',
                      HINT = 'Add a primary key, or name the columns: outbox.capture(''tbl'', key_columns => ''{col}'').';
        END IF;
    END IF;
    SELECT string_agg(k, ', ') INTO missing
      FROM unnest(keys) AS k
     WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = target AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL OR cardinality(keys) = 0 THEN
        RAISE EXCEPTION 'outbox.capture: table % has no column(s) %', target, coalesce(missing, '(none given)')
            USING ERRCODE = 'undefined_column', HINT = 'key_columns takes column names as they are stored (case-sensitive).';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = target AND tgname = 'outbox_capture') THEN
        RAISE EXCEPTION 'outbox.capture: table % is already captured', target
            USING ERRCODE = 'duplicate_object', HINT = 'Call outbox.uncapture() first to change its settings.';
    END IF;
    -- The trigger's arguments: see outbox.capture_trigger (no exchange argument for NULL).
    EXECUTE format('CREATE TRIGGER outbox_capture AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION outbox.capture_trigger(%L, %L, %L, %L, %L%s)',
                   target, agg_type, keys::text, created, updated, deleted,
                   CASE WHEN exchange IS NOT NULL THEN format(', %L', exchange) ELSE '' END);
END
$$;
COMMENT ON FUNCTION outbox.capture(regclass, text, text[], text, text, text, text) IS
    'Emit an event for every INSERT/UPDATE/DELETE on a table (row as payload; aggregate id from the primary key; routing key <table>.created/updated/deleted)';

CREATE FUNCTION outbox.uncapture(target regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = target AND tgname = 'outbox_capture') THEN
        RAISE EXCEPTION 'outbox.uncapture: table % is not captured', target
            USING ERRCODE = 'undefined_object', HINT = 'See which tables are captured: SELECT * FROM outbox.captured_tables.';
    END IF;
    EXECUTE format('DROP TRIGGER outbox_capture ON %s', target);
END
$$;

CREATE VIEW outbox.captured_tables AS
SELECT t.tgrelid::regclass AS table_name, t.tgenabled <> 'D' AS enabled
  FROM pg_trigger t
 WHERE t.tgname = 'outbox_capture' AND NOT t.tgisinternal;

------------------------------------------------------------------------------------------------
-- Dead letters: events the relay could not deliver after its retries
------------------------------------------------------------------------------------------------
CREATE TABLE outbox.dead_letters (
    id                bigserial   PRIMARY KEY,
    event_id          uuid,
    event             jsonb       NOT NULL,
    reason            text        NOT NULL,
    attempts          integer     NOT NULL DEFAULT 1,
    first_failed_at   timestamptz NOT NULL DEFAULT now(),
    last_failed_at    timestamptz NOT NULL DEFAULT now(),
    broker_reply      text,
    slot_name         text,
    replayed_at       timestamptz,
    replayed_event_id uuid
);
COMMENT ON TABLE outbox.dead_letters IS 'Events outbox-relay gave up on; outbox.replay_dead_letter(id) emits one again';

CREATE FUNCTION outbox.replay_dead_letter(dead_letter_id bigint) RETURNS uuid
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dl outbox.dead_letters;
    new_id uuid;
BEGIN
    SELECT * INTO dl FROM outbox.dead_letters WHERE id = dead_letter_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox.replay_dead_letter: no dead letter with id %', dead_letter_id
            USING ERRCODE = 'no_data_found', HINT = 'List them with: SELECT id, reason FROM outbox.dead_letters;';
    END IF;
    IF dl.replayed_at IS NOT NULL THEN
        RAISE EXCEPTION 'outbox.replay_dead_letter: dead letter % was already replayed', dead_letter_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Replayed at %s as event %s.', dl.replayed_at, dl.replayed_event_id),
                  HINT = 'Emit it again yourself with outbox_emit() if you really want a second copy.';
    END IF;
    -- A new event (new id): the old one may still be in outbox.events, and it was never delivered.
    new_id := public.outbox_emit(dl.event ->> 'event_type',
                                 coalesce(dl.event -> 'payload', 'null'::jsonb),
                                 aggregate_type => dl.event ->> 'aggregate_type',
                                 aggregate_id   => dl.event ->> 'aggregate_id',
                                 routing_key    => dl.event ->> 'routing_key',
                                 exchange       => dl.event ->> 'exchange',
                                 headers        => coalesce(dl.event -> 'headers', '{}'::jsonb),
                                 correlation_id => dl.event ->> 'correlation_id',
                                 causation_id   => dl.event ->> 'causation_id');
    UPDATE outbox.dead_letters SET replayed_at = now(), replayed_event_id = new_id WHERE id = dead_letter_id;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION outbox.replay_dead_letter(bigint) IS
    'Emit a dead-lettered event again (new id) in the current transaction and mark it replayed';

-- Parked aggregates. With --on-dead-letter=park the relay makes every later event of an
-- aggregate (its ordering key: aggregate_type and aggregate_id, one key for all events without
-- an aggregate_id) whose event became a dead letter a dead letter too, "parked", until a
-- control message in the stream releases the aggregate (common/outbox_wire.h). The message is
-- signed like a wal-storage event and written whatever outbox.storage is. Owner only:
-- outbox.release_parked calls it.
CREATE FUNCTION outbox.emit_release(aggregate_type text, aggregate_id text, slot_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'outbox_emit_release' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION outbox.emit_release(text, text, text) IS
    'Write the signed control message that releases a parked aggregate for the relay on slot_name (NULL: every relay)';

-- SECURITY DEFINER: a role the owner gives EXECUTE releases aggregates without any right on
-- outbox.dead_letters or the message key.
CREATE FUNCTION outbox.release_parked(aggregate_type text, aggregate_id text, slot_name text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dl_id    bigint;
    released integer := 0;
BEGIN
    -- The release first: the relay stops parking the aggregate just before the events that follow.
    -- (Refuses a type with a NULL id: that would name no ordering key.) Nothing to release
    -- below raises an error, which takes the message back with the transaction.
    PERFORM outbox.emit_release(aggregate_type, aggregate_id, slot_name);
    -- The relay's ordering key: a NULL aggregate_type counts as ''; without an aggregate_id the
    -- type plays no part.
    FOR dl_id IN
        SELECT d.id FROM outbox.dead_letters d
         WHERE d.replayed_at IS NULL
           AND (release_parked.slot_name IS NULL OR d.slot_name = release_parked.slot_name)
           AND CASE WHEN release_parked.aggregate_id IS NULL THEN d.event ->> 'aggregate_id' IS NULL
                    ELSE d.event ->> 'aggregate_id' = release_parked.aggregate_id
                         AND coalesce(d.event ->> 'aggregate_type', '') = coalesce(release_parked.aggregate_type, '')
               END
         ORDER BY d.id
           FOR UPDATE
    LOOP
        -- One code path for every replay: a new event id, marked replayed.
        PERFORM outbox.replay_dead_letter(dl_id);
        released := released + 1;
    END LOOP;
    IF released = 0 THEN
        RAISE EXCEPTION 'outbox.release_parked: aggregate (%, %) has no dead letter waiting to be replayed%',
                        coalesce(quote_literal(aggregate_type), 'NULL'), coalesce(quote_literal(aggregate_id), 'NULL'),
                        CASE WHEN slot_name IS NOT NULL THEN format(' from slot %s', quote_literal(slot_name)) ELSE '' END
            USING ERRCODE = 'no_data_found',
                  HINT = 'List the dead letters not yet replayed with: SELECT id, event ->> ''aggregate_type'' AS aggregate_type, '
                         'event ->> ''aggregate_id'' AS aggregate_id, slot_name, reason FROM outbox.dead_letters '
                         'WHERE replayed_at IS NULL ORDER BY id;';
    END IF;
    RETURN released;
END
$$;
COMMENT ON FUNCTION outbox.release_parked(text, text, text) IS
    'Release an aggregate the relay parked (--on-dead-letter=park): the release message, then its dead letters emitted again in order; returns how many';

------------------------------------------------------------------------------------------------
-- Relay checkpoints, purge, status
------------------------------------------------------------------------------------------------
CREATE TABLE outbox.relay_checkpoints (
    slot_name        text        PRIMARY KEY,
    acknowledged_lsn pg_lsn      NOT NULL,
    last_commit_time timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- see record_checkpoint and the slot recovery section below
    system_identifier   bigint,
    fence_snapshot      pg_snapshot,
    fence_lsn           pg_lsn,
    acked_snapshot      pg_snapshot,
    recovery_snapshot   pg_snapshot,
    recovery_upper      pg_snapshot,
    recovery_started_at timestamptz,
    last_recovery_at    timestamptz
);
COMMENT ON TABLE outbox.relay_checkpoints IS
    'Written by outbox-relay: how far each slot is acknowledged (a registered relay holds back outbox.purge)';

-- SECURITY DEFINER: a relay role may move its checkpoint forward without any right on the table.
-- Only for the slot it streams: a relay role writing another slot's checkpoint (a future LSN)
-- would make that slot's relay skip events. An LSN beyond the server's WAL is cut to it.
-- Each call also carries a fence (as outbox.purge does): a snapshot and the WAL insert position
-- taken after it, so every transaction visible in the snapshot committed before that position.
-- Once the acknowledged LSN passes a fence's position its snapshot becomes acked_snapshot: every
-- event visible in it is known published. After a failover (PostgreSQL 15 has no failover
-- slots) the relay republishes the events of outbox.events not visible in acked_snapshot. A
-- row from another cluster (restored from a dump: its LSNs mean nothing here) starts over.
CREATE FUNCTION outbox.record_checkpoint(slot_name text, acknowledged_lsn pg_lsn, last_commit_time timestamptz)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user), false)
       AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication w ON w.pid = s.active_pid
                        WHERE s.slot_name::text = record_checkpoint.slot_name AND w.usename = session_user) THEN
        RAISE EXCEPTION 'outbox.record_checkpoint: role % does not stream slot %', session_user,
                        coalesce(quote_literal(record_checkpoint.slot_name), 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A relay records the checkpoint of the slot it streams, while it streams it.';
    END IF;
    INSERT INTO outbox.relay_checkpoints AS c
           (slot_name, acknowledged_lsn, last_commit_time, updated_at, system_identifier, fence_snapshot, fence_lsn)
    SELECT record_checkpoint.slot_name, least(record_checkpoint.acknowledged_lsn, pg_current_wal_insert_lsn()),
           record_checkpoint.last_commit_time, now(), s.system_identifier, pg_current_snapshot(),
           pg_current_wal_insert_lsn()
      FROM pg_control_system() s
    ON CONFLICT ON CONSTRAINT relay_checkpoints_pkey DO UPDATE
       SET acknowledged_lsn = CASE WHEN c.system_identifier IS DISTINCT FROM excluded.system_identifier
                                   THEN excluded.acknowledged_lsn
                                   ELSE greatest(c.acknowledged_lsn, excluded.acknowledged_lsn) END,
           last_commit_time = coalesce(excluded.last_commit_time, c.last_commit_time),
           updated_at = now(),
           system_identifier = excluded.system_identifier,
           acked_snapshot = CASE WHEN c.system_identifier IS DISTINCT FROM excluded.system_identifier THEN NULL
                                 WHEN c.fence_lsn <= excluded.acknowledged_lsn THEN c.fence_snapshot
                                 ELSE c.acked_snapshot END,
           fence_snapshot = CASE WHEN c.system_identifier IS DISTINCT FROM excluded.system_identifier
                                   OR c.fence_lsn IS NULL OR c.fence_lsn <= excluded.acknowledged_lsn
                                 THEN excluded.fence_snapshot ELSE c.fence_snapshot END,
           fence_lsn = CASE WHEN c.system_identifier IS DISTINCT FROM excluded.system_identifier
                              OR c.fence_lsn IS NULL OR c.fence_lsn <= excluded.acknowledged_lsn
                            THEN excluded.fence_lsn ELSE c.fence_lsn END;
END
$$;

CREATE FUNCTION outbox.unregister_relay(slot_name text) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH d AS (DELETE FROM outbox.relay_checkpoints c WHERE c.slot_name = $1 RETURNING 1)
    SELECT count(*) > 0 FROM d;
$$;
COMMENT ON FUNCTION outbox.unregister_relay(text) IS
    'Forget a relay that is gone for good, so that it no longer holds back outbox.purge';

-- A purge fence: a snapshot and the WAL insert position taken just after it. Every transaction
-- visible in the snapshot committed before that position, so once every registered relay has
-- acknowledged past it, the rows such transactions wrote are certainly published.
CREATE TABLE outbox.purge_fences (
    wal_lsn  pg_lsn      NOT NULL,
    snap     pg_snapshot NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A row's xmin as a full transaction id, for pg_visible_in_snapshot(). Valid for unfrozen rows
-- (within 2^31 transactions of the current one); frozen rows show xmin 2, which every snapshot sees.
CREATE FUNCTION outbox.full_xid(x xid) RETURNS xid8
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (CASE WHEN x::text::bigint <= (cur::text::bigint & 4294967295)
                 THEN ((cur::text::bigint >> 32) << 32) | x::text::bigint
                 ELSE greatest((cur::text::bigint >> 32) - 1, 0) << 32 | x::text::bigint
            END)::text::xid8
      FROM (SELECT pg_current_xact_id() AS cur) s;
$$;

CREATE FUNCTION outbox.purge(older_than interval) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    acked_lsn  pg_lsn;
    acked_time timestamptz;
    fence      outbox.purge_fences;
    fence_lsn  pg_lsn;
    snap       pg_snapshot;
    deleted    bigint := 0;
    kept_old   boolean;
    relay      record;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'outbox.purge: older_than must be a non-negative interval, not %', older_than
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: SELECT outbox.purge(''7 days'');';
    END IF;

    -- The snapshot first, the WAL position after it: see outbox.purge_fences.
    snap := pg_current_snapshot();
    fence_lsn := pg_current_wal_insert_lsn();
    INSERT INTO outbox.purge_fences (wal_lsn, snap) VALUES (fence_lsn, snap);

    SELECT min(c.acknowledged_lsn), min(c.last_commit_time) INTO acked_lsn, acked_time
      FROM outbox.relay_checkpoints c;
    IF acked_lsn IS NULL THEN
        RAISE NOTICE 'outbox.purge: no relay has recorded a checkpoint yet, so no event is known to be published'
            USING HINT = 'Start outbox-relay; it records its progress in outbox.relay_checkpoints.';
        RETURN 0;
    END IF;

    SELECT * INTO fence FROM outbox.purge_fences f
     WHERE f.wal_lsn <= acked_lsn ORDER BY f.wal_lsn DESC LIMIT 1;
    IF FOUND THEN
        DELETE FROM outbox.events e
         WHERE e.created_at < now() - older_than
           AND e.created_at <= acked_time
           AND pg_visible_in_snapshot(coalesce(e.txid, outbox.full_xid(e.xmin)), fence.snap)
           -- a slot recovery under way still needs what its lost slot had not delivered (its
           -- relay's acknowledged LSN is the new slot's, past every fence of the old primary)
           AND NOT EXISTS (SELECT 1 FROM outbox.relay_checkpoints r
                            WHERE r.recovery_snapshot IS NOT NULL
                              AND NOT pg_visible_in_snapshot(coalesce(e.txid, outbox.full_xid(e.xmin)),
                                                             r.recovery_snapshot));
        GET DIAGNOSTICS deleted = ROW_COUNT;
        DELETE FROM outbox.purge_fences f WHERE f.wal_lsn < fence.wal_lsn;
    END IF;

    -- Say which relays hold purge back, and how to let go of one that is gone: a checkpoint whose
    -- slot no longer exists never moves on, and a relay that has not acknowledged what was
    -- written before a purge call a minute ago or more keeps every event since.
    kept_old := EXISTS (SELECT 1 FROM outbox.events e WHERE e.created_at < now() - older_than);
    FOR relay IN
        SELECT c.slot_name, c.acknowledged_lsn, c.last_commit_time, c.updated_at,
               NOT EXISTS (SELECT 1 FROM pg_replication_slots s
                            WHERE s.slot_name::text = c.slot_name AND s.slot_type = 'logical'
                              AND s.database = current_database()) AS slot_missing
          FROM outbox.relay_checkpoints c
         ORDER BY c.slot_name
    LOOP
        IF relay.slot_missing THEN
            RAISE NOTICE 'outbox.purge: relay "%" holds back purge for good: its replication slot does not exist', relay.slot_name
                USING DETAIL = format('Its checkpoint (acknowledged up to %s, last acknowledged commit %s) can no longer move on, '
                                      'and purge deletes only events that every registered relay has acknowledged.',
                                      relay.acknowledged_lsn, coalesce(relay.last_commit_time::text, 'none')),
                      HINT = format('If that relay is gone for good, unregister it: SELECT outbox.unregister_relay(%L);', relay.slot_name);
        ELSIF kept_old AND EXISTS (SELECT 1 FROM outbox.purge_fences f
                                    WHERE f.wal_lsn > relay.acknowledged_lsn AND f.wal_lsn < fence_lsn
                                      AND f.taken_at < now() - interval '1 minute') THEN
            RAISE NOTICE 'outbox.purge: relay "%" holds back purge: it has not acknowledged what was written before an earlier purge call', relay.slot_name
                USING DETAIL = format('It has acknowledged up to %s, last acknowledged commit %s, checkpoint recorded at %s; '
                                      'events older than %s are kept until it acknowledges more.',
                                      relay.acknowledged_lsn, coalesce(relay.last_commit_time::text, 'none'), relay.updated_at, older_than),
                      HINT = format('See how it is doing: SELECT * FROM outbox.status WHERE slot_name = %1$L; if it is gone for good, unregister it: SELECT outbox.unregister_relay(%1$L);',
                                    relay.slot_name);
        END IF;
    END LOOP;
    RETURN deleted;
END
$$;
COMMENT ON FUNCTION outbox.purge(interval) IS
    'Delete events older than the interval that every registered relay has certainly published; returns the count (NOTICEs name the relays that hold it back)';

-- Every outbox slot of this database, and every registered relay (checkpoint) without a slot:
-- those hold back outbox.purge for good until outbox.unregister_relay(), so they are shown too,
-- with slot_exists false and the slot's columns NULL.
CREATE VIEW outbox.status AS
SELECT coalesce(s.slot_name, c.slot_name::name) AS slot_name,
       s.plugin,
       coalesce(s.active, false) AS active,
       s.active_pid,
       s.confirmed_flush_lsn,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint AS lag_bytes,
       c.acknowledged_lsn,
       c.last_commit_time,
       now() - c.updated_at AS checkpoint_age,
       (SELECT count(*) FROM outbox.dead_letters d
         WHERE d.replayed_at IS NULL AND (d.slot_name = coalesce(s.slot_name::text, c.slot_name) OR d.slot_name IS NULL)) AS dead_letters,
       s.wal_status,
       s.slot_name IS NOT NULL AS slot_exists
  FROM (SELECT * FROM pg_replication_slots
         WHERE slot_type = 'logical' AND database = current_database()) s
  FULL JOIN outbox.relay_checkpoints c ON c.slot_name = s.slot_name::text
 WHERE s.plugin IN ('outbox_decoder', 'wal2json') OR c.slot_name IS NOT NULL;
COMMENT ON VIEW outbox.status IS
    'One row per outbox slot and per registered relay without a slot (slot_exists false): is a relay attached, how far behind, how many dead letters';

------------------------------------------------------------------------------------------------
-- Slot recovery: the events a lost slot never delivered (failover on PostgreSQL 15)
------------------------------------------------------------------------------------------------
-- A logical slot does not survive a failover before PostgreSQL 17. outbox.events and
-- outbox.relay_checkpoints do (they are replicated), so when the relay finds its slot missing but
-- its checkpoint present, it (1) records the lower bound acked_snapshot as recovery_snapshot,
-- durably, before the new slot exists, (2) creates the slot, (3) records recovery_upper, a
-- snapshot taken after the slot exists (every transaction the slot will not decode is visible
-- in it), (4) publishes, before anything the slot decodes, every event visible in recovery_upper
-- and not in recovery_snapshot, with its original id, (5) clears both once the broker confirmed
-- them. A relay that dies in between finds recovery_snapshot set and publishes them again.
-- Events committed between the slot's creation and recovery_upper come twice (also from the
-- slot): consumers de-duplicate by id, as after any crash. All SECURITY DEFINER for the relay
-- role, reading fixed columns of outbox tables only; no user code runs.

CREATE FUNCTION outbox.begin_slot_recovery(slot_name text) RETURNS pg_lsn
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- With no acked_snapshot yet (a relay that never passed its first fence), nothing is known
    -- published: '1:1:' sees no transaction, so every event is republished. Once the slot exists
    -- again (a second relay created it first) nothing changes: that relay recovers.
    UPDATE outbox.relay_checkpoints c
       SET recovery_snapshot = coalesce(c.recovery_snapshot, c.acked_snapshot, '1:1:'::pg_snapshot),
           recovery_upper = NULL,
           recovery_started_at = now()
     WHERE c.slot_name = $1
       AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.slot_name::text = $1)
    RETURNING c.acknowledged_lsn;
$$;
COMMENT ON FUNCTION outbox.begin_slot_recovery(text) IS
    'For the relay, before it creates a slot that was lost: remember which events are known published';

CREATE FUNCTION outbox.slot_recovery_upper(slot_name text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE outbox.relay_checkpoints c
       SET recovery_upper = coalesce(c.recovery_upper, pg_current_snapshot())
     WHERE c.slot_name = $1 AND c.recovery_snapshot IS NOT NULL
    RETURNING true;
$$;
COMMENT ON FUNCTION outbox.slot_recovery_upper(text) IS
    'For the relay, right after its new slot exists: bound the events to republish';

-- One page of the events to republish, in id order (outbox_emit's ids are UUIDv7: creation
-- order, which is commit order for the events of one aggregate written one transaction after
-- another). Each row is the line the outbox preset of the decoder writes for the insert.
CREATE FUNCTION outbox.slot_recovery_events(slot_name text, after_id uuid, max_rows int)
RETURNS TABLE (id uuid, xid xid, created_at text, line text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lower_snap pg_snapshot;
    upper_snap pg_snapshot;
BEGIN
    SELECT c.recovery_snapshot, c.recovery_upper INTO lower_snap, upper_snap
      FROM outbox.relay_checkpoints c WHERE c.slot_name = slot_recovery_events.slot_name;
    -- An empty page ends the recovery: it must never come from a state the relay did not set up.
    IF lower_snap IS NULL OR upper_snap IS NULL THEN
        RAISE EXCEPTION 'outbox.slot_recovery_events: slot % has no recovery under way',
                        coalesce(quote_literal(slot_recovery_events.slot_name), 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'outbox-relay calls outbox.begin_slot_recovery() and outbox.slot_recovery_upper() first; it starts again when this happens.';
    END IF;
    RETURN QUERY
    SELECT e.id, e.xmin,
           to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US"+00"'),
           json_build_object('action', 'I', 'schema', 'outbox', 'table', 'events', 'columns', json_build_array(
               json_build_object('name', 'id', 'value', e.id::text),
               json_build_object('name', 'aggregate_type', 'value', e.aggregate_type),
               json_build_object('name', 'aggregate_id', 'value', e.aggregate_id),
               json_build_object('name', 'event_type', 'value', e.event_type),
               json_build_object('name', 'payload', 'value', e.payload::text),
               json_build_object('name', 'headers', 'value', e.headers::text),
               json_build_object('name', 'exchange', 'value', e.exchange),
               json_build_object('name', 'routing_key', 'value', e.routing_key),
               json_build_object('name', 'correlation_id', 'value', e.correlation_id),
               json_build_object('name', 'causation_id', 'value', e.causation_id),
               json_build_object('name', 'created_at', 'value', e.created_at::text)))::text
      FROM outbox.events e
     WHERE (slot_recovery_events.after_id IS NULL OR e.id > slot_recovery_events.after_id)
       AND pg_visible_in_snapshot(coalesce(e.txid, outbox.full_xid(e.xmin)), upper_snap)
       AND NOT pg_visible_in_snapshot(coalesce(e.txid, outbox.full_xid(e.xmin)), lower_snap)
     ORDER BY e.id
     LIMIT slot_recovery_events.max_rows;
END
$$;
COMMENT ON FUNCTION outbox.slot_recovery_events(text, uuid, int) IS
    'For the relay recovering a lost slot: the next events to republish after after_id';

CREATE FUNCTION outbox.finish_slot_recovery(slot_name text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE outbox.relay_checkpoints c
       SET recovery_snapshot = NULL, recovery_upper = NULL, last_recovery_at = now()
     WHERE c.slot_name = $1;
$$;
COMMENT ON FUNCTION outbox.finish_slot_recovery(text) IS
    'For the relay, once the broker confirmed every republished event of a slot recovery';

REVOKE ALL ON FUNCTION outbox.begin_slot_recovery(text), outbox.slot_recovery_upper(text),
    outbox.slot_recovery_events(text, uuid, int), outbox.finish_slot_recovery(text) FROM PUBLIC;

------------------------------------------------------------------------------------------------
-- Events committed before the relay's slot existed
------------------------------------------------------------------------------------------------
-- A logical slot decodes only the transactions that commit after it was created, so events
-- committed earlier (a relay started after the application, a slot dropped and created again)
-- are never published. The relay calls outbox.events_before_slot() right after creating its
-- slot and logs what it returns; outbox.republish() emits such events again as new events that
-- carry the original id in the header outbox-original-id (not an x-outbox-* name, which
-- outbox_emit refuses), so consumers can drop the copies of events they did get.

-- SECURITY DEFINER: the relay counts the rows without any right on outbox.events. It counts the
-- rows its snapshot sees, i.e. the events committed before the call: called right after the
-- slot was created, those are the events the slot will not decode, plus the few that committed
-- between the slot's creation and the call (published, and counted too). In a transaction that
-- imported the snapshot CREATE_REPLICATION_SLOT exported, the count is exact.
CREATE FUNCTION outbox.events_before_slot(slot_name text)
RETURNS TABLE (count bigint, oldest timestamptz, newest timestamptz, republish text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_replication_slots s
                    WHERE s.slot_name::text = events_before_slot.slot_name AND s.slot_type = 'logical'
                      AND s.database = current_database()) THEN
        RAISE EXCEPTION 'outbox.events_before_slot: this database has no logical replication slot %',
                        coalesce(quote_literal(events_before_slot.slot_name), 'NULL')
            USING ERRCODE = 'undefined_object',
                  HINT = 'Call it right after creating the slot, with the slot''s name; the slots: SELECT slot_name, plugin, database FROM pg_replication_slots;';
    END IF;
    -- republish: the call that emits them again, times in UTC so that any session reads them alike;
    -- until is exclusive, so it lies just past the newest.
    RETURN QUERY
    SELECT n, lo, hi,
           CASE WHEN n > 0 THEN
               format('SELECT outbox.republish(%L, %L);',
                      to_char(lo AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US"+00"'),
                      to_char((hi + interval '1 microsecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US"+00"'))
           END
      FROM (SELECT count(*) AS n, min(e.created_at) AS lo, max(e.created_at) AS hi FROM outbox.events e) a;
END
$$;
COMMENT ON FUNCTION outbox.events_before_slot(text) IS
    'For the relay right after it created its slot: how many events of outbox.events committed before (the slot will not publish them), the oldest and newest created_at, and the outbox.republish call that publishes them';

-- SECURITY DEFINER: a role the owner gives EXECUTE republishes without any right on
-- outbox.events. Nothing is granted to PUBLIC, neither grant_app nor grant_relay gives it.
CREATE FUNCTION outbox.republish(since timestamptz, until timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ev outbox.events;
    n  bigint := 0;
BEGIN
    IF since IS NULL OR until IS NULL THEN
        RAISE EXCEPTION 'outbox.republish: since and until must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the range of created_at to emit again, e.g. the last hour: SELECT outbox.republish(now() - interval ''1 hour'');';
    END IF;
    IF since > until THEN
        RAISE EXCEPTION 'outbox.republish: since (%) is later than until (%)', since, until
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The range is since <= created_at < until: swap the arguments.';
    END IF;
    -- One query, so its snapshot does not see the events it emits. An event that was itself
    -- republished keeps the id of the first original.
    FOR ev IN
        SELECT * FROM outbox.events e
         WHERE e.created_at >= since AND e.created_at < until
         ORDER BY e.created_at, e.id
    LOOP
        PERFORM public.outbox_emit(ev.event_type, ev.payload,
                                   aggregate_type => ev.aggregate_type,
                                   aggregate_id   => ev.aggregate_id,
                                   routing_key    => ev.routing_key,
                                   exchange       => ev.exchange,
                                   headers        => jsonb_build_object('outbox-original-id', ev.id::text) || ev.headers,
                                   correlation_id => ev.correlation_id,
                                   causation_id   => ev.causation_id);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION outbox.republish(timestamptz, timestamptz) IS
    'Emit again, in the current transaction and in created_at, id order, every event of outbox.events created in [since, until), as new events with header outbox-original-id = the original id; returns how many';

------------------------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------------------------
REVOKE ALL ON SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON FUNCTION public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text) FROM PUBLIC;

CREATE FUNCTION outbox.grant_app(app_role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF app_role IS NULL OR app_role::oid = 0 THEN
        RAISE EXCEPTION 'outbox.grant_app: no role given'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name an existing role: SELECT outbox.grant_app(''app'');';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text) TO %s',
                   app_role);
END
$$;
COMMENT ON FUNCTION outbox.grant_app(regrole) IS 'Let a role emit events (EXECUTE on outbox_emit, nothing else)';

CREATE FUNCTION outbox.grant_relay(relay_role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF relay_role IS NULL OR relay_role::oid = 0 THEN
        RAISE EXCEPTION 'outbox.grant_relay: no role given'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name an existing role: SELECT outbox.grant_relay(''relay'');';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA outbox TO %s', relay_role);
    EXECUTE format('GRANT SELECT ON outbox.relay_checkpoints, outbox.status TO %s', relay_role);
    EXECUTE format('GRANT SELECT, INSERT ON outbox.dead_letters TO %s', relay_role);
    EXECUTE format('GRANT USAGE ON SEQUENCE outbox.dead_letters_id_seq TO %s', relay_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.record_checkpoint(text, pg_lsn, timestamptz) TO %s', relay_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.message_key() TO %s', relay_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.events_before_slot(text) TO %s', relay_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.begin_slot_recovery(text), outbox.slot_recovery_upper(text), '
                   'outbox.slot_recovery_events(text, uuid, int), outbox.finish_slot_recovery(text) TO %s', relay_role);
    IF NOT (SELECT rolreplication OR rolsuper FROM pg_roles WHERE oid = relay_role) THEN
        RAISE NOTICE 'role % has no REPLICATION attribute, which outbox-relay needs to stream the slot', relay_role
            USING HINT = format('ALTER ROLE %s REPLICATION;', relay_role);
    END IF;
END
$$;
COMMENT ON FUNCTION outbox.grant_relay(regrole) IS
    'Give a role what outbox-relay writes and reads, the message key and outbox.events_before_slot (it also needs ALTER ROLE ... REPLICATION)';

-- REVOKE ... ON ALL FUNCTIONS above ran before these two existed.
REVOKE ALL ON FUNCTION outbox.grant_app(regrole), outbox.grant_relay(regrole) FROM PUBLIC;

-- pg_dump keeps what applications and the relay wrote.
SELECT pg_catalog.pg_extension_config_dump('outbox.events', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.dead_letters_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.relay_checkpoints', '');
