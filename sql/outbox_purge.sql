-- outbox.purge never deletes an event that a registered relay may not have published yet.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = notice;
TRUNCATE outbox.events, outbox.relay_checkpoints, outbox.purge_fences;

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
SELECT outbox.record_checkpoint('relay_b', '0/1', now() - interval '1 day');
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

-- bad input
SELECT outbox.purge('-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.purge(NULL);
\echo :LAST_ERROR_SQLSTATE

TRUNCATE outbox.events, outbox.relay_checkpoints, outbox.purge_fences;
