-- The relay's progress into its oldest unacknowledged transaction, kept with its checkpoint
-- (outbox 0.3, docs/design.md 6.1): stamped with the cluster it was counted on, cleared by NULL,
-- only a JSON object, left alone by the 0.2 form, and granted by grant_relay.
SELECT outbox.record_checkpoint('tp_slot', '0/100', NULL,
       '{"xid": 5, "begin_lsn": "0/50", "settled_before_lsn": "0/90", "settled_events": 3, "timeline": 1, "shard": ""}');
SELECT acknowledged_lsn, txn_progress - 'system_identifier' AS progress,
       txn_progress ->> 'system_identifier' = (SELECT system_identifier::text FROM pg_control_system()) AS this_cluster
  FROM outbox.relay_checkpoints WHERE slot_name = 'tp_slot';
SELECT outbox.record_checkpoint('tp_slot', '0/200', NULL);
SELECT acknowledged_lsn, txn_progress ->> 'settled_events' AS settled_events
  FROM outbox.relay_checkpoints WHERE slot_name = 'tp_slot';
SELECT outbox.record_checkpoint('tp_slot', '0/300', NULL, NULL);
SELECT acknowledged_lsn, txn_progress FROM outbox.relay_checkpoints WHERE slot_name = 'tp_slot';
SELECT outbox.record_checkpoint('tp_slot', '0/300', NULL, '[1]');
CREATE ROLE outbox_tp_relay;
SELECT outbox.grant_relay('outbox_tp_relay');
SELECT has_function_privilege('outbox_tp_relay', 'outbox.record_checkpoint(text,pg_lsn,timestamptz,jsonb)', 'EXECUTE') AS relay_may,
       has_function_privilege('public', 'outbox.record_checkpoint(text,pg_lsn,timestamptz,jsonb)', 'EXECUTE') AS public_may;
DROP OWNED BY outbox_tp_relay;
DROP ROLE outbox_tp_relay;
SELECT outbox.unregister_relay('tp_slot');
