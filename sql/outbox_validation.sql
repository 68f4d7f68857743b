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
SELECT outbox_emit('e', '{}', correlation_id => '');   -- the relay has no default correlation_id
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

-- fields the relay sends as header values: aggregate_type (255 bytes), aggregate_id and
-- causation_id (1024 bytes each), counted in UTF-8 bytes
SELECT outbox_emit('e', '{}', aggregate_type => repeat('a', 256), routing_key => 'rk');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', aggregate_type => repeat('a', 255), routing_key => 'rk') IS NOT NULL AS max_length_ok;
SELECT outbox_emit('e', '{}', aggregate_id => repeat('i', 1025));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', aggregate_id => repeat('é', 513));   -- 1026 bytes in 513 characters
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', aggregate_id => repeat('i', 1024)) IS NOT NULL AS max_length_ok;
SELECT outbox_emit('e', '{}', causation_id => repeat('c', 1025));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', causation_id => repeat('c', 1024)) IS NOT NULL AS max_length_ok;

-- the encoded header table (outbox_wire.h: 1 + name + 1 + value; strings 4 + bytes, numbers 8,
-- booleans 1, null 0) holds at most 61440 bytes, the x-outbox-* entries of the fields included
SELECT outbox_emit('e', '{}', headers => jsonb_build_object('big', repeat('v', 300 * 1024)));
\echo :LAST_ERROR_SQLSTATE
-- one string header "h": 1 + 1 + 1 + 4 + 61433 = 61440
SELECT outbox_emit('e', '{}', headers => jsonb_build_object('h', repeat('v', 61433))) IS NOT NULL AS at_limit_ok;
SELECT outbox_emit('e', '{}', headers => jsonb_build_object('h', repeat('v', 61434)));
\echo :LAST_ERROR_SQLSTATE
-- UTF-8 bytes count: 61432 bytes in 30716 characters fit, 61434 do not
SELECT outbox_emit('e', '{}', headers => jsonb_build_object('h', repeat('é', 30716) || 'v')) IS NOT NULL AS at_limit_ok;
SELECT outbox_emit('e', '{}', headers => jsonb_build_object('h', repeat('é', 30717)));
\echo :LAST_ERROR_SQLSTATE
-- a number (11), a boolean (4) and a null (3) beside "h": 7 + 61415 + 18 = 61440
SELECT outbox_emit('e', '{}', headers => jsonb_build_object('h', repeat('v', 61415), 'n', 1, 'b', true, 'z', null)) IS NOT NULL AS at_limit_ok;
SELECT outbox_emit('e', '{}', headers => jsonb_build_object('h', repeat('v', 61416), 'n', 1, 'b', true, 'z', null));
\echo :LAST_ERROR_SQLSTATE
-- x-outbox-aggregate-type 'a' (30), x-outbox-aggregate-id 'i' (28), x-outbox-causation-id 'c' (28)
SELECT outbox_emit('e', '{}', aggregate_type => 'a', aggregate_id => 'i', causation_id => 'c',
                   headers => jsonb_build_object('h', repeat('v', 61347))) IS NOT NULL AS at_limit_ok;
SELECT outbox_emit('e', '{}', aggregate_type => 'a', aggregate_id => 'i', causation_id => 'c',
                   headers => jsonb_build_object('h', repeat('v', 61348)));
\echo :LAST_ERROR_SQLSTATE

-- CC and BCC (exact case) are RabbitMQ's sender-selected distribution headers
SELECT outbox_emit('e', '{}', headers => '{"CC": "orders.audit"}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"BCC": "orders.audit"}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"cc": 1, "Bcc": 2, "CCC": 3, "BCC2": 4}') IS NOT NULL AS other_case_ok;

-- header numbers of magnitude 2^63 or more, compared as numbers (not as text)
SELECT outbox_emit('e', '{}', headers => '{"n": 18446744073709551616}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"n": 1.5e300}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"n": 9223372036854775808}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"n": -9223372036854775808.0}');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox_emit('e', '{}', headers => '{"max": 9223372036854775807, "min": -9223372036854775807, "f": 1.5e18,
                                          "frac": 9223372036854775807.5, "tiny": 1e-300, "zero": -0.0}') IS NOT NULL AS in_range_ok;

-- a failed emit leaves nothing behind, and the transaction is aborted as usual
BEGIN;
SELECT outbox_emit('kept?', '{}') IS NOT NULL AS emitted;
SELECT outbox_emit('', '{}');
COMMIT;
SELECT count(*) AS kept FROM outbox.events WHERE event_type = 'kept?';

TRUNCATE outbox.events;
