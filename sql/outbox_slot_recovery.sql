-- The relay's checkpoints carry fences, so that after a failover (the slot is lost on
-- PostgreSQL 15) it republishes exactly the events not known to be published: those not visible
-- in acked_snapshot. A fence counts only once the acknowledged LSN has passed it.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;
TRUNCATE outbox.events, outbox.relay_checkpoints;
CREATE ROLE outbox_rec_relay LOGIN REPLICATION;
CREATE ROLE outbox_rec_app LOGIN;
SELECT outbox.grant_relay('outbox_rec_relay');
SELECT outbox.grant_app('outbox_rec_app');

-- first checkpoint: a fence is taken, none has been passed yet
SELECT outbox.record_checkpoint('rec', pg_current_wal_insert_lsn(), now());
SELECT acked_snapshot IS NULL AS nothing_known, fence_snapshot IS NOT NULL AS fenced,
       system_identifier = (SELECT system_identifier FROM pg_control_system()) AS this_cluster
  FROM outbox.relay_checkpoints WHERE slot_name = 'rec';
SELECT outbox_emit('rec.a', '{"n": 1}', 'order', 'o1') IS NOT NULL AS ok;
-- acknowledged past the first fence (taken before rec.a): acked_snapshot does not see rec.a
SELECT outbox.record_checkpoint('rec', pg_current_wal_insert_lsn(), now());
SELECT outbox_emit('rec.b', '{"n": 2.50}', 'order', 'o1', headers => '{"h": 1}') IS NOT NULL AS ok;
SELECT outbox_emit('rolled.back', '{}') IS NOT NULL AS ok \g /dev/null
BEGIN;
SELECT outbox_emit('rec.never', '{}') IS NOT NULL AS ok;
ROLLBACK;

-- an acknowledgement behind the fence does not pass it
SELECT outbox.record_checkpoint('rec', '0/1', now());
SELECT pg_visible_in_snapshot(outbox.full_xid(e.xmin), c.acked_snapshot) AS known, e.event_type
  FROM outbox.events e, outbox.relay_checkpoints c WHERE c.slot_name = 'rec' ORDER BY e.id;

-- the relay role recovers: lower bound, then (after the new slot exists) upper bound, then pages
SET ROLE outbox_rec_relay;
SELECT outbox.begin_slot_recovery('rec') IS NOT NULL AS began;
SELECT outbox.slot_recovery_upper('rec');
RESET ROLE;
SELECT outbox_emit('after.upper', '{}') IS NOT NULL AS ok;   -- after the bound: the new slot decodes it
SET ROLE outbox_rec_relay;
SELECT (line::json -> 'columns' -> 3 ->> 'value') AS event_type,
       (line::json -> 'columns' -> 4 ->> 'value') AS payload,
       (line::json -> 'columns' -> 5 ->> 'value') AS headers,
       xid IS NOT NULL AS has_xid, created_at ~ '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00$' AS utc_text
  FROM outbox.slot_recovery_events('rec', NULL, 10);
-- paging: after the first id, the rest
SELECT count(*) FROM outbox.slot_recovery_events('rec', (SELECT id FROM outbox.slot_recovery_events('rec', NULL, 1)), 10);
SELECT count(*) FROM outbox.slot_recovery_events('rec', NULL, 1);
-- a second failover before the first recovery finished keeps the older lower bound (and takes
-- a new upper one: after.upper is in it now)
SELECT outbox.record_checkpoint('rec', pg_current_wal_insert_lsn(), now());
SELECT outbox.record_checkpoint('rec', pg_current_wal_insert_lsn(), now());
SELECT outbox.begin_slot_recovery('rec') IS NOT NULL AS began;
SELECT outbox.slot_recovery_upper('rec');
SELECT count(*) AS keeps_lower_bound FROM outbox.slot_recovery_events('rec', NULL, 10);
SELECT outbox.finish_slot_recovery('rec');
SELECT recovery_snapshot IS NULL AND recovery_upper IS NULL AS finished, last_recovery_at IS NOT NULL AS recorded
  FROM outbox.relay_checkpoints WHERE slot_name = 'rec';
-- no page without a recovery under way: an empty page would end one
SELECT count(*) FROM outbox.slot_recovery_events('rec', NULL, 10);
-- the next recovery starts from the newest fence passed: nothing of the above is republished
SELECT outbox.begin_slot_recovery('rec') IS NOT NULL AS began;
SELECT outbox.slot_recovery_upper('rec');
SELECT count(*) AS none_known_unpublished FROM outbox.slot_recovery_events('rec', NULL, 10);
SELECT outbox.finish_slot_recovery('rec');
-- a slot that exists again (another relay created it first) is that relay's to recover
RESET ROLE;
SELECT 'init' FROM pg_create_logical_replication_slot('rec', 'test_decoding');
SET ROLE outbox_rec_relay;
SELECT outbox.begin_slot_recovery('rec') IS NULL AS left_alone;
SELECT recovery_snapshot IS NULL AS not_recovering FROM outbox.relay_checkpoints WHERE slot_name = 'rec';
RESET ROLE;
SELECT pg_drop_replication_slot('rec');
SET ROLE outbox_rec_relay;
-- no checkpoint, no recovery
SELECT outbox.begin_slot_recovery('other') IS NULL AS no_row;
RESET ROLE;

-- applications may not touch any of it
SET ROLE outbox_rec_app;
SELECT outbox.begin_slot_recovery('rec');
SELECT count(*) FROM outbox.slot_recovery_events('rec', NULL, 10);
RESET ROLE;

-- An event written inside a savepoint of a transaction still open when a fence is taken: its
-- xmin is a subtransaction's, which the fence snapshot wrongly calls visible (snapshots list
-- top-level transactions only); the event's txid is the top-level one, which it judges right.
-- The fence is taken by another session while this transaction is open, after a third one
-- committed (so the subtransaction's id lies below the snapshot's xmax).
TRUNCATE outbox.events, outbox.relay_checkpoints;
\setenv OUTBOX_REGRESS_DB :DBNAME
BEGIN;
SAVEPOINT s;
SELECT outbox_emit('in.savepoint', '{}') IS NOT NULL AS ok;
RELEASE s;
\! psql -X -q -d "$OUTBOX_REGRESS_DB" -c 'SELECT pg_current_xact_id()' -o /dev/null
\! psql -X -q -d "$OUTBOX_REGRESS_DB" -c "SELECT outbox.record_checkpoint('rec', pg_current_wal_insert_lsn(), now())" -o /dev/null
SELECT pg_visible_in_snapshot(outbox.full_xid(e.xmin), c.fence_snapshot) AS xmin_says_visible,
       pg_visible_in_snapshot(e.txid, c.fence_snapshot) AS txid_says_visible
  FROM outbox.events e, outbox.relay_checkpoints c;
COMMIT;
-- the relay acknowledges past the fence, but not the event (say it committed after the ack)
SELECT outbox.record_checkpoint('rec', pg_current_wal_insert_lsn(), now());
SELECT outbox.begin_slot_recovery('rec') IS NOT NULL AS began;
SELECT outbox.slot_recovery_upper('rec');
SELECT line::json -> 'columns' -> 3 ->> 'value' AS republished FROM outbox.slot_recovery_events('rec', NULL, 10);
SELECT outbox.finish_slot_recovery('rec');

-- Only the role streaming a slot records its checkpoint (a relay role writing another slot's,
-- with a future LSN, would make that slot's relay skip events); an LSN beyond the WAL is cut.
SET SESSION AUTHORIZATION outbox_rec_relay;
SELECT outbox.record_checkpoint('someone_elses', '0/10', now());
RESET SESSION AUTHORIZATION;
SELECT count(*) AS nothing_written FROM outbox.relay_checkpoints WHERE slot_name = 'someone_elses';
SELECT outbox.record_checkpoint('rec', 'FFFF/0', now());
SELECT acknowledged_lsn <= pg_current_wal_insert_lsn() AS cut_to_the_wal FROM outbox.relay_checkpoints WHERE slot_name = 'rec';

-- a checkpoint row from another cluster (a restored dump): its LSN is replaced, not kept as
-- the greater one, and what it knew is forgotten
UPDATE outbox.relay_checkpoints SET system_identifier = 1, acknowledged_lsn = 'FFFF/0' WHERE slot_name = 'rec';
SELECT outbox.record_checkpoint('rec', '0/10', now());
SELECT acknowledged_lsn, acked_snapshot IS NULL AS forgotten,
       system_identifier = (SELECT system_identifier FROM pg_control_system()) AS this_cluster
  FROM outbox.relay_checkpoints WHERE slot_name = 'rec';

TRUNCATE outbox.events, outbox.relay_checkpoints;
DROP OWNED BY outbox_rec_relay, outbox_rec_app;
DROP ROLE outbox_rec_relay, outbox_rec_app;
