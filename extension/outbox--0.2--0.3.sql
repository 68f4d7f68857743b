-- outbox 0.2 -> 0.3. CREATE EXTENSION outbox runs outbox--0.2.sql and then this script (the
-- contrib convention: one base script and a chain of upgrades), so everything 0.3 adds is
-- written once, here.
\echo Use "ALTER EXTENSION outbox UPDATE TO '0.3'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- Message keys with ids: rotation without losing events
------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------
-- Encodings
------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------
-- Dead letters written once; slot recovery bounded
------------------------------------------------------------------------------------------------

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
