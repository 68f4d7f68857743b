-- outbox_emit: named, defaulted parameters; returns the id of the row it wrote.
-- (pg_regress created the extension: --load-extension=outbox.)
\pset null '(null)'

-- callable unqualified with the default search_path
SHOW search_path;
SELECT outbox_emit('order.created', '{"order": 1, "total": 9.5}') IS NOT NULL AS emitted;

-- every parameter by name, in any order
SELECT outbox_emit(
    payload        => '{"order": 2}',
    event_type     => 'order.paid',
    aggregate_type => 'order',
    aggregate_id   => '2',
    routing_key    => 'orders.paid',
    exchange       => 'orders',
    headers        => '{"tenant": "acme", "priority": 5, "vip": true, "note": null}',
    correlation_id => 'corr-1',
    causation_id   => 'cause-1') AS id \gset
SELECT aggregate_type, aggregate_id, event_type, payload, headers, exchange, routing_key,
       correlation_id, causation_id, created_at BETWEEN now() - interval '1 hour' AND now() AS created_recently
  FROM outbox.events WHERE id = :'id';

-- defaults: NULL exchange/routing key (relay defaults), empty headers, NULL aggregate
SELECT aggregate_type, aggregate_id, headers, exchange, routing_key
  FROM outbox.events WHERE event_type = 'order.created';

-- NULL headers mean no headers
SELECT outbox_emit('x.y', '[]', headers => NULL) AS id \gset
SELECT headers FROM outbox.events WHERE id = :'id';

-- any JSON value is a payload
SELECT outbox_emit('scalar', '42') AS id \gset
SELECT payload, jsonb_typeof(payload) FROM outbox.events WHERE id = :'id';
SELECT outbox_emit('text', '"hello"') AS id \gset
SELECT payload, jsonb_typeof(payload) FROM outbox.events WHERE id = :'id';
SELECT outbox_emit('nothing', 'null') AS id \gset
SELECT payload, jsonb_typeof(payload) FROM outbox.events WHERE id = :'id';

-- the returned id is the stored id, a UUIDv7, and ids grow in emit order
WITH e AS (SELECT n, outbox_emit('seq', jsonb_build_object('n', n)) AS id FROM generate_series(1, 50) n)
SELECT bool_and(id_sorted = n_sorted) AS ordered, count(*) FROM (
  SELECT row_number() OVER (ORDER BY id) AS id_sorted, row_number() OVER (ORDER BY n) AS n_sorted
    FROM e) s;
SELECT count(*) FROM outbox.events WHERE event_type = 'seq';

-- the extension's objects
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'outbox')
   AND deptype = 'e'
 ORDER BY 1;

-- nothing granted to PUBLIC
SELECT has_function_privilege('public', 'outbox_emit(text,jsonb,text,text,text,text,jsonb,text,text,text,text,integer)', 'EXECUTE') AS public_may_emit,
       has_schema_privilege('public', 'outbox', 'USAGE') AS public_uses_schema;

-- the current version (outbox_upgrade checks the update from 0.1)
SELECT extversion FROM pg_extension WHERE extname = 'outbox';

TRUNCATE outbox.events;
