-- outbox 0.2 -> 0.3. CREATE EXTENSION outbox runs the chain outbox--0.1.sql,
-- outbox--0.1--0.2.sql and this script (contrib's convention: one base script and a chain of
-- upgrades), so everything a version adds is written once, in its upgrade script.
\echo Use "ALTER EXTENSION outbox UPDATE TO '0.3'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- Message keys with ids: rotation without losing events
------------------------------------------------------------------------------------------------
-- Several keys, each with an id that every signed message names. The newest key not yet
-- superseded signs; a superseded one stays until nothing can still need it
-- (outbox.retire_message_keys), so a transaction that signed with it and commits after the
-- rotation is still verified. Rotating is one call: SELECT outbox.rotate_message_key();

-- Random ids: they stay distinct across DROP and CREATE EXTENSION, so a relay that still holds a
-- key of the dropped extension never takes it for the new one. Id 1 is the key of 0.2, whose
-- messages name no id.
CREATE FUNCTION outbox.new_message_key_id() RETURNS integer
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT 2 + floor(random() * 2147483645)::integer $$;

-- A relay of 0.2 reads the messages 0.3 writes as forged (their key id looks like part of the
-- body to it) and would acknowledge past them: it must be stopped before the update and the 0.3
-- relay started after (it refuses 0.2 objects). Only an update can meet a running relay: a key
-- made by this very transaction means CREATE EXTENSION.
DO $$
BEGIN
    IF (SELECT min(created_at) FROM outbox.message_key_store) < now()
       AND EXISTS (SELECT 1 FROM pg_replication_slots s
                    WHERE s.database = current_database() AND s.active
                      AND s.plugin IN ('wal2json', 'outbox_decoder')) THEN
        RAISE EXCEPTION 'outbox 0.3 cannot be installed while outbox-relay streams this database'
            USING ERRCODE = 'object_in_use',
                  DETAIL = 'A relay of 0.2 takes the messages 0.3 signs for forgeries and skips them.',
                  HINT = 'Stop outbox-relay, run ALTER EXTENSION outbox UPDATE, then start outbox-relay 0.3.';
    END IF;
END
$$;

ALTER TABLE outbox.message_key_store
    DROP CONSTRAINT message_key_store_pkey,
    DROP COLUMN singleton,
    ADD COLUMN key_id integer,
    ADD COLUMN superseded_at timestamptz,
    ADD COLUMN drain_from timestamptz,
    ADD COLUMN retire_lsn pg_lsn;
-- An upgraded database keeps its key as id 1 (its messages in the WAL name no id); a key made by
-- this very CREATE EXTENSION gets a random one.
UPDATE outbox.message_key_store
   SET key_id = CASE WHEN created_at = now() THEN outbox.new_message_key_id() ELSE 1 END;
ALTER TABLE outbox.message_key_store
    ALTER COLUMN key_id SET NOT NULL,
    ALTER COLUMN key_id SET DEFAULT outbox.new_message_key_id(),
    ADD CONSTRAINT message_key_store_key_id_check CHECK (key_id > 0),
    ADD PRIMARY KEY (key_id);
CREATE UNIQUE INDEX message_key_store_one_current ON outbox.message_key_store ((true)) WHERE superseded_at IS NULL;
COMMENT ON TABLE outbox.message_key_store IS
    'The keys that authenticate wal-storage events: the current one (superseded_at NULL) signs, superseded ones are kept until outbox.retire_message_keys() retires them (readable by the owner only)';
COMMENT ON COLUMN outbox.message_key_store.drain_from IS
    'Set by outbox.retire_message_keys once the rotation committed: transactions begun before it may still sign with this key';
COMMENT ON COLUMN outbox.message_key_store.retire_lsn IS
    'Set once those transactions ended: the key is deleted when every registered relay acknowledged past this position';

-- A key is never changed in place: a relay holding the old bytes under the same id would take
-- every event signed with the new ones for a forgery (0.2 documented UPDATE ... SET key = ...).
CREATE FUNCTION outbox.message_key_unchanged() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.key IS DISTINCT FROM OLD.key OR NEW.key_id IS DISTINCT FROM OLD.key_id THEN
        RAISE EXCEPTION 'a message key is never changed in place'
            USING ERRCODE = 'OB010',
                  DETAIL = 'Relays hold the keys by id; events signed with the changed bytes would not verify, and transactions that signed with the old ones would be lost.',
                  HINT = 'Rotate instead: SELECT outbox.rotate_message_key();';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER message_key_unchanged BEFORE UPDATE ON outbox.message_key_store
    FOR EACH ROW EXECUTE FUNCTION outbox.message_key_unchanged();

-- The relay's view of the keys: every key still kept, derived for this database as
-- outbox.message_key() derives the current one (message_key.c).
CREATE FUNCTION outbox.derive_message_key(key bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'outbox_derive_message_key' LANGUAGE C STRICT STABLE;
CREATE FUNCTION outbox.message_keys() RETURNS TABLE (key_id integer, key bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.key_id, outbox.derive_message_key(s.key) FROM outbox.message_key_store s ORDER BY s.key_id
$$;
COMMENT ON FUNCTION outbox.message_keys() IS
    'Every kept key of the wal-storage MACs by id (derived per database), for outbox-relay (EXECUTE given by outbox.grant_relay)';

-- Written into the stream by a rotation: relays reload their keys when they read it.
CREATE FUNCTION outbox.emit_keys_changed(key_id integer) RETURNS void
    AS 'MODULE_PATHNAME', 'outbox_emit_keys_changed' LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION outbox.rotate_message_key() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_id integer;
BEGIN
    -- One rotation at a time: two would each supersede the key the other just made.
    LOCK TABLE outbox.message_key_store IN SHARE ROW EXCLUSIVE MODE;
    LOOP
        new_id := outbox.new_message_key_id();
        EXIT WHEN NOT EXISTS (SELECT 1 FROM outbox.message_key_store s WHERE s.key_id = new_id);
    END LOOP;
    -- Before the new key exists, so it is signed with the key every relay already holds.
    PERFORM outbox.emit_keys_changed(new_id);
    UPDATE outbox.message_key_store SET superseded_at = clock_timestamp() WHERE superseded_at IS NULL;
    INSERT INTO outbox.message_key_store (key_id) VALUES (new_id);
    PERFORM outbox.retire_message_keys();
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION outbox.rotate_message_key() IS
    'Make a new current message key; the old one stays valid until outbox.retire_message_keys() can retire it';

-- A superseded key is deleted only when no event signed with it can still reach a relay:
--  1. drain_from: set once the rotation committed (this call sees it from another transaction),
--     a second later, since backends take the new key at their next transaction;
--  2. retire_lsn: set once no session of this database has a transaction begun before
--     drain_from and no transaction is prepared (each may still sign with the old key, and
--     commit later): every commit that used the key lies before this WAL position;
--  3. deleted once every relay registered in outbox.relay_checkpoints (of this cluster), and
--     every logical slot of this database with a plugin a relay reads, acknowledged past
--     retire_lsn.
-- Each step needs a later call than the one before: rotate_message_key() calls it, and so should
-- whatever runs outbox.purge(). It says for each superseded key what it waits for.
CREATE FUNCTION outbox.retire_message_keys()
RETURNS TABLE (key_id integer, state text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k      record;
    sysid  bigint := (SELECT s.system_identifier FROM pg_control_system() s);
    behind text;
BEGIN
    FOR k IN SELECT s.key_id, s.superseded_at, s.drain_from, s.retire_lsn FROM outbox.message_key_store s
              WHERE s.superseded_at IS NOT NULL ORDER BY s.superseded_at FOR UPDATE LOOP
        key_id := k.key_id;
        IF k.drain_from IS NULL THEN
            IF k.superseded_at >= now() THEN
                state := 'superseded in this transaction: call again after it committed';
            ELSE
                UPDATE outbox.message_key_store s SET drain_from = clock_timestamp() + interval '1 second'
                 WHERE s.key_id = k.key_id;
                state := 'waiting for transactions that began before the rotation: call again later';
            END IF;
        ELSIF k.retire_lsn IS NULL THEN
            -- now() > drain_from: drain_from was set by an earlier transaction, not this one.
            -- Key 1 is 0.2's: a session that loaded the 0.2 module before the update signs with
            -- whatever single key it reads, in the unbound form only key 1 verifies, for as long
            -- as it lives, so for key 1 every session older than drain_from counts, idle or not.
            IF now() <= k.drain_from
               OR EXISTS (SELECT 1 FROM pg_stat_activity a
                           WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
                             AND (a.xact_start < k.drain_from
                                  OR (a.backend_type = 'client backend'
                                      AND (a.state IS NULL  -- a session this role cannot see
                                           OR (k.key_id = 1 AND a.backend_start < k.drain_from)))))
               OR EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.database = current_database()) THEN
                state := 'waiting for transactions that began before the rotation (or prepared ones): call again later';
            ELSE
                UPDATE outbox.message_key_store s SET retire_lsn = pg_current_wal_insert_lsn() WHERE s.key_id = k.key_id;
                state := 'waiting for every registered relay to acknowledge the rotation: call again later';
            END IF;
        ELSE
            -- Registered relays, and every slot that could feed one (a relay made with
            -- --create-slot that has not checkpointed yet, or one unregistered by mistake).
            SELECT string_agg(w, ', ') INTO behind
              FROM (SELECT format('relay %s at %s', quote_literal(c.slot_name), c.acknowledged_lsn) AS w
                      FROM outbox.relay_checkpoints c
                     WHERE c.acknowledged_lsn < k.retire_lsn AND c.system_identifier IS NOT DISTINCT FROM sysid
                    UNION ALL
                    SELECT format('slot %s at %s', quote_literal(r.slot_name), r.confirmed_flush_lsn)
                      FROM pg_replication_slots r
                     WHERE r.database = current_database() AND r.slot_type = 'logical'
                       AND r.plugin IN ('wal2json', 'outbox_decoder')
                       AND r.confirmed_flush_lsn < k.retire_lsn) b;
            IF behind IS NULL THEN
                DELETE FROM outbox.message_key_store s WHERE s.key_id = k.key_id;
                state := 'retired';
            ELSE
                state := format('waiting for relays to acknowledge %s: %s (gone for good: outbox.unregister_relay, pg_drop_replication_slot)',
                                k.retire_lsn, behind);
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION outbox.retire_message_keys() IS
    'Delete the superseded message keys no event can still need; says what each remaining one waits for (call it periodically, e.g. with outbox.purge)';

-- What the relay could not verify or parse, for operators: where it was and why, never its
-- content, so nothing here can be replayed as an event. Written by the relay.
CREATE TABLE outbox.rejected_messages (
    slot_name text        NOT NULL,
    lsn       pg_lsn      NOT NULL,
    xid       bigint,
    key_id    integer,
    bytes     integer     NOT NULL,
    reason    text        NOT NULL,
    seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (slot_name, lsn)
);
COMMENT ON TABLE outbox.rejected_messages IS
    'Lines of the slot outbox-relay did not publish because they are not genuine outbox events (forged, replayed, unparseable): position and reason only';
SELECT pg_catalog.pg_extension_config_dump('outbox.rejected_messages', '');

REVOKE ALL ON FUNCTION outbox.new_message_key_id(), outbox.message_key_unchanged(), outbox.derive_message_key(bytea),
    outbox.message_keys(), outbox.emit_keys_changed(integer), outbox.rotate_message_key(),
    outbox.retire_message_keys() FROM PUBLIC;
REVOKE ALL ON outbox.rejected_messages FROM PUBLIC;

-- grant_relay gives both (it is redefined once, with everything 0.3 adds, under "Large transactions").
-- Relay roles of 0.2 (those that may read the key) get what 0.3 adds to grant_relay.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole AS role
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = 'outbox.message_key()'::regprocedure AND a.privilege_type = 'EXECUTE'
                AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
        EXECUTE format('GRANT INSERT ON outbox.rejected_messages TO %s', r.role);
        EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.message_keys() TO %s', r.role);
    END LOOP;
END
$$;

------------------------------------------------------------------------------------------------
-- Encodings
------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------
-- Dead letters written once; slot recovery bounded
------------------------------------------------------------------------------------------------
-- A relay restarted before the slot acknowledged an event's transaction gets the event again and
-- wrote its dead letter a second time (outbox.release_parked then emitted it twice). One row per
-- slot and event now: the relay inserts with ON CONFLICT DO NOTHING. The key is the event id; an
-- event without a (uuid) id, which outbox_emit never writes, is keyed by where the relay read it
-- (the event's "lsn", unique per line of a slot's stream).
--
-- Rows written twice before 0.3: the oldest row of each (slot, event) is kept, the later ones
-- removed; if only a later one was replayed, the kept row takes over its replay, so the event is
-- not emitted again. A partial index (new rows only) would leave the duplicates there, for
-- release_parked to emit twice, and would not stop a new row repeating an old one.
UPDATE outbox.dead_letters k
   SET replayed_at = r.replayed_at, replayed_event_id = r.replayed_event_id
  FROM (SELECT DISTINCT ON (d.slot_name, d.event_id) d.slot_name, d.event_id, d.replayed_at, d.replayed_event_id
          FROM outbox.dead_letters d
         WHERE d.replayed_at IS NOT NULL AND d.event_id IS NOT NULL
         ORDER BY d.slot_name, d.event_id, d.id) r
 WHERE k.slot_name = r.slot_name AND k.event_id = r.event_id AND k.replayed_at IS NULL
   AND k.id = (SELECT min(o.id) FROM outbox.dead_letters o WHERE o.slot_name = k.slot_name AND o.event_id = k.event_id);
DELETE FROM outbox.dead_letters d
 USING outbox.dead_letters o
 WHERE o.slot_name = d.slot_name AND o.event_id = d.event_id AND o.id < d.id;
DELETE FROM outbox.dead_letters d
 USING outbox.dead_letters o
 WHERE d.event_id IS NULL AND o.event_id IS NULL
   AND o.slot_name = d.slot_name AND o.event ->> 'lsn' = d.event ->> 'lsn' AND o.id < d.id;
CREATE UNIQUE INDEX dead_letters_once ON outbox.dead_letters (slot_name, event_id);
CREATE UNIQUE INDEX dead_letters_once_without_id ON outbox.dead_letters (slot_name, (event ->> 'lsn'))
    WHERE event_id IS NULL;
COMMENT ON INDEX outbox.dead_letters_once IS
    'One dead letter per slot and event: the relay writes it again after a restart before acknowledging';

-- A slot recovery read its first page by walking every row of outbox.events in id order until it
-- found an event to republish: with millions of rows kept (no outbox.purge), more than the
-- relay's --pg-timeout-ms, and then retried without end. Every event to republish has a txid at
-- least the lower snapshot's xmin (anything older is visible in it) and below the upper
-- snapshot's xmax, so an index on txid bounds each page by the events to republish and the
-- transactions running at either snapshot, whatever the table holds.
--
-- txid is set by its default on every insert since 0.2; rows from 0.1 get the value the
-- functions computed for them until now (outbox.full_xid(xmin)), so the index sees every row.
UPDATE outbox.events SET txid = outbox.full_xid(xmin) WHERE txid IS NULL;
ALTER TABLE outbox.events ALTER COLUMN txid SET NOT NULL;
CREATE INDEX events_txid ON outbox.events (txid);

-- Pages follow (txid, id): transaction order, then emit order within a transaction. For the
-- events of one aggregate written one transaction after another this is commit order (a
-- transaction that starts after another committed gets a larger txid), as id order was, and it
-- no longer depends on the ids being UUIDv7. after_id names the page's last event (its txid is
-- looked up), so the relay pages as before.
CREATE OR REPLACE FUNCTION outbox.slot_recovery_events(slot_name text, after_id uuid, max_rows int)
RETURNS TABLE (id uuid, xid xid, created_at text, line text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lower_snap pg_snapshot;
    upper_snap pg_snapshot;
    after_txid xid8;
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
    IF slot_recovery_events.after_id IS NOT NULL THEN
        SELECT e.txid INTO after_txid FROM outbox.events e WHERE e.id = slot_recovery_events.after_id;
        -- (purge keeps every event a recovery under way still needs)
        IF after_txid IS NULL THEN
            RAISE EXCEPTION 'outbox.slot_recovery_events: event % of the previous page is gone', slot_recovery_events.after_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'outbox-relay starts the recovery again when this happens.';
        END IF;
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
     WHERE e.txid >= pg_snapshot_xmin(lower_snap)
       AND e.txid < pg_snapshot_xmax(upper_snap)
       AND (after_txid IS NULL OR (e.txid, e.id) > (after_txid, slot_recovery_events.after_id))
       AND pg_visible_in_snapshot(e.txid, upper_snap)
       AND NOT pg_visible_in_snapshot(e.txid, lower_snap)
     ORDER BY e.txid, e.id
     LIMIT slot_recovery_events.max_rows;
END
$$;


------------------------------------------------------------------------------------------------
-- Large transactions: how far into its oldest unacknowledged transaction the relay got
------------------------------------------------------------------------------------------------
-- The slot is acknowledged only at commit boundaries: a relay killed in the middle of a
-- transaction of 20,000 events had the next one send all of it again. With each checkpoint the
-- relay now also records how far into its oldest unacknowledged transaction every event is
-- settled (confirmed by the broker or written here as a dead letter), and a relay that receives
-- that transaction again does not publish those events (docs/design.md 6.1). The transaction is
-- named by what the slot sends again unchanged: its xid and its first WAL record (begin_lsn);
-- the events are those whose lines start below settled_before_lsn, settled_events of them. They
-- were counted on one cluster, timeline and --shard: the relay uses them only on the same.
ALTER TABLE outbox.relay_checkpoints ADD COLUMN txn_progress jsonb
    CONSTRAINT relay_checkpoints_txn_progress_object CHECK (jsonb_typeof(txn_progress) = 'object');
COMMENT ON COLUMN outbox.relay_checkpoints.txn_progress IS
    'Written by outbox-relay: {xid, begin_lsn, settled_before_lsn, settled_events, timeline, shard, system_identifier} '
    'of its oldest unacknowledged transaction; NULL when there is none or nothing of it is settled';

-- The 0.2 function does the checkpoint (its check that the caller streams the slot, the fences);
-- this one adds the progress, stamped with the cluster it was counted on: the row's own
-- system_identifier is rewritten by every checkpoint, also by relays older than 0.3 that leave
-- txn_progress as it is, so it cannot vouch for it.
CREATE FUNCTION outbox.record_checkpoint(slot_name text, acknowledged_lsn pg_lsn, last_commit_time timestamptz,
                                         txn_progress jsonb)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF txn_progress IS NOT NULL AND jsonb_typeof(txn_progress) <> 'object' THEN
        RAISE EXCEPTION 'outbox.record_checkpoint: txn_progress must be a JSON object or NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM outbox.record_checkpoint(record_checkpoint.slot_name, record_checkpoint.acknowledged_lsn,
                                     record_checkpoint.last_commit_time);
    UPDATE outbox.relay_checkpoints c
       SET txn_progress = record_checkpoint.txn_progress
                          || jsonb_build_object('system_identifier', (SELECT s.system_identifier::text
                                                                         FROM pg_control_system() s))
     WHERE c.slot_name = record_checkpoint.slot_name;
END
$$;
COMMENT ON FUNCTION outbox.record_checkpoint(text, pg_lsn, timestamptz, jsonb) IS
    'outbox-relay''s checkpoint with its progress into the oldest unacknowledged transaction (EXECUTE given by outbox.grant_relay)';
REVOKE ALL ON FUNCTION outbox.record_checkpoint(text, pg_lsn, timestamptz, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION outbox.grant_relay(relay_role regrole) RETURNS void
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
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.record_checkpoint(text, pg_lsn, timestamptz), '
                   'outbox.record_checkpoint(text, pg_lsn, timestamptz, jsonb) TO %s', relay_role);
    EXECUTE format('GRANT INSERT ON outbox.rejected_messages TO %s', relay_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.message_key(), outbox.message_keys() TO %s', relay_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.events_before_slot(text) TO %s', relay_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.begin_slot_recovery(text), outbox.slot_recovery_upper(text), '
                   'outbox.slot_recovery_events(text, uuid, int), outbox.finish_slot_recovery(text) TO %s', relay_role);
    IF NOT (SELECT rolreplication OR rolsuper FROM pg_roles WHERE oid = relay_role) THEN
        RAISE NOTICE 'role % has no REPLICATION attribute, which outbox-relay needs to stream the slot', relay_role
            USING HINT = format('ALTER ROLE %s REPLICATION;', relay_role);
    END IF;
END
$$;

-- The relay roles of 0.2 (those grant_relay gave record_checkpoint) get the new one here; a relay
-- without it goes on recording checkpoints without the progress.
DO $$
DECLARE
    relay regrole;
BEGIN
    FOR relay IN SELECT a.grantee::regrole
                   FROM pg_proc p, aclexplode(p.proacl) a
                  WHERE p.oid = 'outbox.record_checkpoint(text, pg_lsn, timestamptz)'::regprocedure
                    AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION outbox.record_checkpoint(text, pg_lsn, timestamptz, jsonb) TO %s',
                       relay);
    END LOOP;
END
$$;

------------------------------------------------------------------------------------------------
-- Privileges: nothing but what the extension granted itself (runs last)
------------------------------------------------------------------------------------------------
-- CREATE EXTENSION and ALTER EXTENSION UPDATE run as a superuser, and every object they create
-- gets that role's default privileges (ALTER DEFAULT PRIVILEGES ... ON TABLES, SEQUENCES,
-- FUNCTIONS, TYPES, and ON SCHEMAS for the schema outbox, which CREATE EXTENSION makes from the
-- control file), and a new function is executable by PUBLIC until revoked. Nothing in these
-- scripts grants anything to anyone: the only privileges on the extension's objects are the
-- owner's and those outbox.grant_app() and outbox.grant_relay() (or the owner, by hand) give.
-- The key table is guarded twice: row-level security, and no privilege on it for anyone.

-- Row-level security with no policy: every role but the owner, superusers and BYPASSRLS roles
-- sees no row and can write none, whatever privileges it holds (pg_read_all_data,
-- pg_write_all_data, a GRANT made later). Not FORCE: outbox_emit and outbox.message_key() read
-- the table as its owner (SECURITY DEFINER); FORCE would take nothing from the owner, who may
-- ALTER the table anyway, but would make a non-superuser owner need a policy of its own and fail
-- every wal-storage event of a session with row_security = off. Independent of the columns.
ALTER TABLE outbox.message_key_store ENABLE ROW LEVEL SECURITY;

-- What the extension's objects (its members, everything in schema outbox, and the schema) carry
-- that the extension did not grant itself: one row per ACL item and privilege.
--   - anything on the key table for a role other than its owner;
--   - anything granted to PUBLIC (types aside: USAGE on a type is PostgreSQL's default for all);
--   - any privilege the owner's default privileges (pg_default_acl: global, or for the object's
--     schema) give that grantee on that kind of object. On an object this script run created
--     they are where the item came from; on an older one (an upgrade) the item cannot be told
--     apart from a grant made by hand, and is taken away too: grant_app/grant_relay give it back.
-- Grants by hand and those of grant_app/grant_relay are kept otherwise.
CREATE FUNCTION outbox.unintended_privileges()
RETURNS TABLE (object_kind text, object_name text, grantee oid, privilege_type text, grantor oid, reason text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH ext AS (SELECT e.oid, e.extnamespace FROM pg_extension e WHERE e.extname = 'outbox'),
    members AS (
        SELECT d.classid, d.objid FROM pg_depend d, ext
         WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
    objects AS (
        SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind, c.oid::regclass::text AS name,
               CASE c.relkind WHEN 'S' THEN 'S' ELSE 'r' END::"char" AS defacl_kind,
               CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char" AS acl_kind,
               c.relowner AS owner, c.relnamespace AS nsp, c.relacl AS acl,
               c.oid = to_regclass('outbox.message_key_store') AS secret
          FROM pg_class c, ext
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND (c.relnamespace = ext.extnamespace
                OR c.oid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass))
        UNION ALL
        SELECT 'ROUTINE', p.oid::regprocedure::text, 'f', 'f', p.proowner, p.pronamespace, p.proacl, false
          FROM pg_proc p, ext
         WHERE p.pronamespace = ext.extnamespace
            OR p.oid IN (SELECT objid FROM members WHERE classid = 'pg_proc'::regclass)
        UNION ALL
        -- array types take their element type's privileges and cannot be granted themselves
        SELECT 'TYPE', t.oid::regtype::text, 'T', 'T', t.typowner, t.typnamespace, t.typacl, false
          FROM pg_type t, ext
         WHERE NOT (t.typelem <> 0 AND t.typsubscript = 'array_subscript_handler'::regproc)
           AND (t.typnamespace = ext.extnamespace
                OR t.oid IN (SELECT objid FROM members WHERE classid = 'pg_type'::regclass))
        UNION ALL
        SELECT 'SCHEMA', quote_ident(n.nspname), 'n', 'n', n.nspowner, 0, n.nspacl, false
          FROM pg_namespace n, ext
         WHERE n.oid = ext.extnamespace),
    items AS (
        SELECT o.kind, o.name, o.defacl_kind, o.owner, o.nsp, o.secret, a.grantee, a.privilege_type, a.grantor
          FROM objects o, aclexplode(coalesce(o.acl, acldefault(o.acl_kind, o.owner))) a
        UNION ALL
        -- column grants on the key table (a REVOKE on the table takes them too)
        SELECT 'TABLE', c.oid::regclass::text, 'r', c.relowner, c.relnamespace, true, a.grantee, a.privilege_type, a.grantor
          FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid, aclexplode(att.attacl) a
         WHERE c.oid = to_regclass('outbox.message_key_store') AND att.attacl IS NOT NULL)
    SELECT DISTINCT i.kind, i.name, i.grantee, i.privilege_type, i.grantor,
           CASE WHEN i.secret THEN 'the message key is its owner''s only'
                WHEN i.grantee = 0 AND i.kind <> 'TYPE' THEN 'nothing of the extension is granted to PUBLIC'
                ELSE 'given by default privileges' END
      FROM items i
     WHERE i.grantee <> i.owner
       AND (i.secret
            OR (i.grantee = 0 AND i.kind <> 'TYPE')
            OR EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) da
                        WHERE d.defaclrole = i.owner AND d.defaclobjtype = i.defacl_kind
                          AND d.defaclnamespace IN (0, i.nsp)
                          AND da.grantee = i.grantee AND da.privilege_type = i.privilege_type
                          AND NOT (i.kind = 'TYPE' AND i.grantee = 0)));
$$;
COMMENT ON FUNCTION outbox.unintended_privileges() IS
    'Privileges on the extension''s objects that it did not grant itself (default privileges, PUBLIC, anything on the key table); outbox.restrict_privileges() revokes them';

-- Revokes what outbox.unintended_privileges() lists. Run last by every install and upgrade
-- script (so it covers whatever the sections above added); an owner may call it again, e.g.
-- after a function of the extension created objects.
CREATE FUNCTION outbox.restrict_privileges() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    item       record;
    -- An install (CREATE EXTENSION: every member joined the extension in this transaction)
    -- takes what default privileges gave silently: the objects are new, nobody held anything.
    installing boolean := NOT EXISTS (
        SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
         WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'outbox' AND d.deptype = 'e'
           AND d.xmin <> pg_current_xact_id()::xid);
    role_name  text;
    key_only   boolean;
BEGIN
    -- On an upgrade, who loses what, said once per role (PUBLIC silently: nothing here is meant
    -- for it).
    FOR role_name, key_only IN
        SELECT u.grantee::regrole::text, bool_and(u.reason LIKE 'the message key%')
          FROM outbox.unintended_privileges() u WHERE u.grantee <> 0 AND NOT installing
         GROUP BY 1 ORDER BY 1
    LOOP
        IF key_only THEN
            RAISE WARNING 'outbox: revoked the privileges of role % on outbox.message_key_store', role_name
                USING DETAIL = 'The message key is its owner''s only; the relay reads it through outbox.message_key() (outbox.grant_relay).';
        ELSE
            RAISE WARNING 'outbox: revoked the privileges of role % on the extension''s objects that default privileges give it', role_name
                USING DETAIL = 'Only the owner, outbox.grant_app() and outbox.grant_relay() give privileges on them; a grant that default privileges would also give cannot be told apart from theirs.',
                      HINT = format('If the role is a relay or an application whose grants these were, give them again: SELECT outbox.grant_relay(%1$L); or SELECT outbox.grant_app(%1$L);',
                                    role_name);
        END IF;
    END LOOP;
    FOR item IN SELECT DISTINCT u.object_kind, u.object_name, u.grantee, u.privilege_type
                  FROM outbox.unintended_privileges() u
    LOOP
        -- CASCADE: also what a grantee passed on with a grant option it got this way
        EXECUTE format('REVOKE %s ON %s %s FROM %s CASCADE', item.privilege_type, item.object_kind,
                       item.object_name, CASE item.grantee WHEN 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END);
    END LOOP;
    -- A REVOKE by the owner leaves an item another role granted (with a grant option the owner
    -- gave it by hand): say so rather than claim the objects are clean.
    FOR item IN SELECT * FROM outbox.unintended_privileges() LOOP
        RAISE WARNING 'outbox: could not revoke % on % % from % (granted by %)', item.privilege_type, item.object_kind,
                      item.object_name, CASE item.grantee WHEN 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END,
                      item.grantor::regrole
            USING DETAIL = item.reason,
                  HINT = format('As role %s: REVOKE %s ON %s %s FROM %s CASCADE;', item.grantor::regrole, item.privilege_type,
                                item.object_kind, item.object_name,
                                CASE item.grantee WHEN 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END);
    END LOOP;
END
$$;
COMMENT ON FUNCTION outbox.restrict_privileges() IS
    'Revoke from the extension''s objects every privilege it did not grant itself (run by the install and upgrade scripts; the owner''s only)';

SELECT outbox.restrict_privileges();
