-- Dead letters: what the relay gave up on, visible and replayable from SQL.
\pset null '(null)'
\set SHOW_CONTEXT never
\set VERBOSITY terse

INSERT INTO outbox.dead_letters (event_id, event, reason, attempts, broker_reply, slot_name)
VALUES ('01890000-0000-7000-8000-000000000001',
        '{"id": "01890000-0000-7000-8000-000000000001", "event_type": "order.created",
          "payload": {"n": 1}, "aggregate_type": "order", "aggregate_id": "1",
          "headers": {"tenant": "acme"}, "exchange": "orders", "routing_key": "order.created",
          "correlation_id": "c-1", "causation_id": null}',
        'unroutable', 5, '312 NO_ROUTE', 'relay_slot')
RETURNING id AS dl_id \gset

SELECT outbox.replay_dead_letter(:dl_id) AS new_id \gset
SELECT event_type, payload, aggregate_type, aggregate_id, headers, exchange, routing_key, correlation_id,
       id <> '01890000-0000-7000-8000-000000000001' AS new_event_id
  FROM outbox.events WHERE id = :'new_id';
SELECT replayed_at IS NOT NULL AS replayed, replayed_event_id = :'new_id' AS points_to_new_event
  FROM outbox.dead_letters WHERE id = :dl_id;

-- replaying twice, or what does not exist, is an error that says what to do
SELECT outbox.replay_dead_letter(:dl_id);
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.replay_dead_letter(-1);
\echo :LAST_ERROR_SQLSTATE

-- a replay inside a rolled-back transaction neither emits nor marks anything
INSERT INTO outbox.dead_letters (event, reason) VALUES ('{"event_type": "x.y", "payload": {}}', 'nacked')
RETURNING id AS dl2 \gset
BEGIN;
SELECT outbox.replay_dead_letter(:dl2) IS NOT NULL AS replayed;
ROLLBACK;
SELECT replayed_at FROM outbox.dead_letters WHERE id = :dl2;
SELECT count(*) FROM outbox.events WHERE event_type = 'x.y';

TRUNCATE outbox.dead_letters, outbox.events;
