-- outbox.purge never deletes an event that a registered relay may not have published yet.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = notice;
TRUNCATE outbox.events, outbox.relay_checkpoints, outbox.purge_fences;
-- relay_a (and relay_late, further down) have a slot; relay_b and relay_gone are registered without one
SELECT 'init' FROM pg_create_logical_replication_slot('relay_a', 'test_decoding');

SELECT outbox_emit('e1', '{}') IS NOT NULL AS ok;

-- no relay registered: nothing is known to be published, nothing is deleted
SELECT outbox.purge('0');

-- a relay acknowledges everything up to now; e2 comes after its acknowledgement
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());
SELECT outbox_emit('e2', '{}') IS NOT NULL AS ok;
SELECT outbox.purge('0') AS deleted;
SELECT event_type FROM outbox.events ORDER BY id;

-- older_than is respected: nothing is an hour old
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());
SELECT outbox.purge('1 hour') AS deleted;
SELECT outbox.purge('1 hour') AS deleted;
SELECT event_type FROM outbox.events ORDER BY id;

-- every registered relay counts: one that lags holds everything back
SELECT outbox.record_checkpoint('relay_b', '0/1', '2026-01-01 00:00:00+00');   -- no slot: a notice says so
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());
SELECT outbox.purge('0') AS deleted;
SELECT outbox.purge('0') AS deleted;
SELECT event_type FROM outbox.events ORDER BY id;
SELECT outbox.unregister_relay('relay_b') AS unregistered, outbox.unregister_relay('relay_b') AS again;
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());
SELECT outbox.purge('0') AS deleted;
SELECT event_type FROM outbox.events ORDER BY id;

-- checkpoints never move backwards
SELECT outbox.record_checkpoint('relay_a', '0/2', NULL);
SELECT acknowledged_lsn > '0/2' AS kept_newer, last_commit_time IS NOT NULL AS kept_time
  FROM outbox.relay_checkpoints WHERE slot_name = 'relay_a';

-- A long transaction: it emits (created_at = its start), a relay then acknowledges a later
-- commit, and only then does the long transaction commit. Its event is not yet published, so
-- purge must keep it, although its created_at is older than the acknowledged commit time.
CREATE EXTENSION dblink;
SELECT dblink_connect('long', format('dbname=%s port=%s host=%s', current_database(),
                      current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT dblink_exec('long', 'BEGIN');
SELECT * FROM dblink('long', $$SELECT outbox_emit('long.txn', '{}') IS NOT NULL$$) AS t(ok boolean);
SELECT outbox_emit('short.txn', '{}') IS NOT NULL AS ok;
SELECT outbox.purge('0') AS deleted;          -- takes a fence while the long transaction runs
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());
SELECT dblink_exec('long', 'COMMIT');
SELECT outbox.purge('0') AS deleted;          -- short.txn may go; long.txn committed after the ack
SELECT event_type FROM outbox.events ORDER BY id;
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());
SELECT outbox.purge('0') AS deleted;          -- a fence after the commit, then an ack past it
SELECT outbox.purge('0') AS deleted;
SELECT event_type FROM outbox.events ORDER BY id;
SELECT dblink_disconnect('long');
DROP EXTENSION dblink;

-- A relay whose slot is gone holds back purge for good: the notice names it and says how to
-- unregister it, and outbox.status shows it (slot_exists false).
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());
SELECT outbox.purge('0') AS deleted;          -- a fence relay_a will have acknowledged
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());
SELECT outbox_emit('kept.1', '{}') IS NOT NULL AS ok;
SELECT outbox.record_checkpoint('relay_gone', '0/1', '2026-01-01 00:00:00+00');
SELECT outbox.purge('0') AS deleted;
SELECT slot_name, slot_exists, active, plugin, acknowledged_lsn IS NOT NULL AS has_checkpoint FROM outbox.status
 WHERE slot_name IN ('relay_a', 'relay_gone') ORDER BY slot_name;
SELECT outbox.unregister_relay('relay_gone') AS unregistered;
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());
SELECT outbox.purge('0') AS deleted;          -- no notice: relay_a is not behind
SELECT event_type FROM outbox.events ORDER BY id;

-- A relay with a slot that has not acknowledged the WAL position of a purge call a minute old or
-- more holds back the events older than older_than: named, with the way to let go of it. A
-- fence younger than a minute is no reason to complain (relays record their checkpoint every
-- few seconds).
SELECT 'init' FROM pg_create_logical_replication_slot('relay_late', 'test_decoding');
SELECT outbox_emit('kept.2', '{}') IS NOT NULL AS ok;
SELECT outbox.record_checkpoint('relay_late', '0/1', '2026-01-01 00:00:00+00');
UPDATE outbox.relay_checkpoints SET updated_at = '2026-01-01 00:00:05+00' WHERE slot_name = 'relay_late';
SELECT outbox.purge('0') AS deleted;          -- the fences are recent: no notice
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());   -- relay_a keeps up
UPDATE outbox.purge_fences SET taken_at = taken_at - interval '2 minutes';
SELECT outbox.purge('0') AS deleted;
SELECT outbox.purge('1 day') AS deleted;      -- nothing a day old is kept: no notice
SELECT outbox.unregister_relay('relay_late') AS unregistered;
SELECT pg_drop_replication_slot('relay_late');
SELECT outbox.record_checkpoint('relay_a', pg_current_wal_insert_lsn(), now());
SELECT outbox.purge('0') AS deleted;
SELECT event_type FROM outbox.events ORDER BY id;

-- bad input
SELECT outbox.purge('-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.purge(NULL);
\echo :LAST_ERROR_SQLSTATE

SELECT pg_drop_replication_slot('relay_a');
TRUNCATE outbox.events, outbox.relay_checkpoints, outbox.purge_fences;
