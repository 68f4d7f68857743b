-- outbox.status: one row per outbox slot of this database.
\pset null '(null)'
SELECT 'init' FROM pg_create_logical_replication_slot('outbox_status_w2j', 'wal2json');
SELECT 'init' FROM pg_create_logical_replication_slot('outbox_status_td', 'test_decoding');  -- not an outbox slot

SELECT slot_name, plugin, active, lag_bytes >= 0 AS lag_known, acknowledged_lsn, checkpoint_age, dead_letters
  FROM outbox.status WHERE slot_name LIKE 'outbox_status%' ORDER BY slot_name;

SELECT outbox_emit('s.1', '{}') IS NOT NULL AS ok;
SELECT outbox.record_checkpoint('outbox_status_w2j', '0/100', now());
INSERT INTO outbox.dead_letters (event, reason, slot_name) VALUES ('{}', 'test', 'outbox_status_w2j'), ('{}', 'test', 'other');
SELECT slot_name, lag_bytes > 0 AS lagging, acknowledged_lsn, checkpoint_age < interval '1 minute' AS fresh, dead_letters
  FROM outbox.status WHERE slot_name LIKE 'outbox_status%' ORDER BY slot_name;

-- a registered relay whose slot is gone (it holds back outbox.purge for good) has a row too:
-- slot_exists false, the slot's columns NULL, not active
SELECT outbox.record_checkpoint('outbox_status_gone', '0/200', now());
INSERT INTO outbox.dead_letters (event, reason, slot_name) VALUES ('{}', 'test', 'outbox_status_gone');
SELECT slot_name, slot_exists, plugin, active, active_pid, confirmed_flush_lsn IS NOT NULL AS has_lsn, lag_bytes IS NOT NULL AS has_lag, acknowledged_lsn,
       checkpoint_age < interval '1 minute' AS fresh, dead_letters, wal_status
  FROM outbox.status WHERE slot_name LIKE 'outbox_status%' ORDER BY slot_name;
-- the columns, the new one last
SELECT attnum, attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'outbox.status'::regclass AND attnum > 0 ORDER BY attnum;

SELECT pg_drop_replication_slot('outbox_status_w2j');
SELECT pg_drop_replication_slot('outbox_status_td');
TRUNCATE outbox.events, outbox.dead_letters, outbox.relay_checkpoints;
