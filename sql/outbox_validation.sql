-- Every kind of bad input: a clear message naming the field, a hint, its own SQLSTATE.
\set VERBOSITY default
\set SHOW_CONTEXT never

-- event_type: NULL, empty, longer than an AMQP short string
SELECT outbox_emit(NULL, '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit(repeat('e', 256), '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit(repeat('é', 128), '{}');   -- 256 bytes in 128 characters
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit(repeat('e', 255), '{}') IS NOT NULL AS max_length_ok;

-- payload: NULL, too large
SELECT outbox_emit('e', NULL);
\echo :LAST_ERROR_SQLSTATE
SET outbox.max_payload_bytes = '1kB';
SHOW outbox.max_payload_bytes;
SELECT outbox_emit('e', jsonb_build_object('blob', repeat('x', 2000)));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', jsonb_build_object('blob', repeat('x', 500))) IS NOT NULL AS small_ok;
RESET outbox.max_payload_bytes;
SET outbox.max_payload_bytes = 0;
SET outbox.storage = 'disk';

-- routing key, exchange, correlation id: empty or too long
SELECT outbox_emit('e', '{}', routing_key => '');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', routing_key => repeat('r', 300));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', exchange => '');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', exchange => repeat('x', 256));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', correlation_id => repeat('c', 256));
\echo :LAST_ERROR_SQLSTATE
-- the default routing key <aggregate_type>.<event_type> must fit too
SELECT outbox_emit(repeat('e', 200), '{}', aggregate_type => repeat('a', 60));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit(repeat('e', 200), '{}', aggregate_type => repeat('a', 60), routing_key => 'short') IS NOT NULL AS explicit_key_ok;

-- headers: not an object, nested, reserved names, bad keys
SELECT outbox_emit('e', '{}', headers => '[1, 2]');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '"flat"');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"a": {"b": 1}}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"a": [1]}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"X-Outbox-Lsn": "0/0"}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => jsonb_build_object(repeat('k', 256), 1));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"x-outbox": 1, "x-custom": "ok"}') IS NOT NULL AS near_miss_ok;

-- a failed emit leaves nothing behind, and the transaction is aborted as usual
BEGIN;
SELECT outbox_emit('kept?', '{}') IS NOT NULL AS emitted;
SELECT outbox_emit('', '{}');
COMMIT;
SELECT count(*) AS kept FROM outbox.events WHERE event_type = 'kept?';

TRUNCATE outbox.events;
