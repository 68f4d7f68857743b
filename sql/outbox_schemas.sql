-- JSON Schema per event type, enforced by outbox_emit in the emitting transaction: the registry
-- (versions kept, the newest enforced, drop), the refusal with its SQLSTATE, JSON pointer and
-- keyword, schemas that are not JSON Schema refused at registration, check_payload, who may
-- register, capture triggers, the validator's limits, and the per-backend cache seeing a new
-- version from another session as soon as it commits.
\set SHOW_CONTEXT never
\pset null '(null)'
SET client_min_messages = warning;

-- The SQLSTATE and the message of an error, on one line.
CREATE FUNCTION pg_temp.attempt(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

------------------------------------------------------------------------------------------------
-- Registry and versions
------------------------------------------------------------------------------------------------
SELECT outbox.register_schema('order.created', $${
  "type": "object",
  "required": ["order_id", "items"],
  "properties": {
    "order_id": {"type": "integer"},
    "items": {"type": "array", "minItems": 1,
              "items": {"type": "object", "required": ["sku"],
                        "properties": {"sku": {"type": "string", "pattern": "^[A-Z]-[0-9]+$"},
                                       "qty": {"type": "integer", "minimum": 1}}}}
  }
}$$) AS v1;
-- the schema in force registered again is no new version
SELECT outbox.register_schema('order.created', (SELECT schema FROM outbox.event_schemas WHERE version = 1)) AS still_v1;
-- a changed one is
SELECT outbox.register_schema('order.created', $${
  "type": "object",
  "required": ["order_id", "items"],
  "properties": {
    "order_id": {"type": "integer"},
    "currency": {"enum": ["EUR", "USD"]},
    "items": {"type": "array", "minItems": 1,
              "items": {"type": "object", "required": ["sku"],
                        "properties": {"sku": {"type": "string", "pattern": "^[A-Z]-[0-9]+$"},
                                       "qty": {"type": "integer", "minimum": 1}}}}
  }
}$$) AS v2;
SELECT event_type, version, registered_by = current_user AS by_me, registered_at IS NOT NULL AS dated, dropped_at
  FROM outbox.event_schemas ORDER BY event_type, version;

------------------------------------------------------------------------------------------------
-- outbox_emit refuses an invalid payload: OB030, the type, the version, the pointer, the keyword
------------------------------------------------------------------------------------------------
SELECT outbox_emit('order.created', '{"order_id": 1, "items": [{"sku": "A-1", "qty": 2}]}') IS NOT NULL AS valid_emitted;
SELECT pg_temp.attempt($$SELECT outbox_emit('order.created', '{"order_id": 1, "items": [{"sku": "A-1", "qty": 0}]}')$$);
SELECT pg_temp.attempt($$SELECT outbox_emit('order.created', '{"order_id": 1, "items": [{"sku": "A-1"}, {"sku": "b-2"}]}')$$);
SELECT pg_temp.attempt($$SELECT outbox_emit('order.created', '{"order_id": 1, "items": [{"qty": 1}]}')$$);
SELECT pg_temp.attempt($$SELECT outbox_emit('order.created', '{"items": [{"sku": "A-1"}]}')$$);
SELECT pg_temp.attempt($$SELECT outbox_emit('order.created', '{"order_id": "1", "items": [{"sku": "A-1"}]}')$$);
SELECT pg_temp.attempt($$SELECT outbox_emit('order.created', '{"order_id": 1, "items": []}')$$);
SELECT pg_temp.attempt($$SELECT outbox_emit('order.created', '{"order_id": 1, "currency": "CHF", "items": [{"sku": "A-1"}]}')$$);
SELECT pg_temp.attempt($$SELECT outbox_emit('order.created', '[1, 2]')$$);
-- 1.0 is an integer (draft 7), as jsonb keeps it
SELECT outbox_emit('order.created', '{"order_id": 1.0, "items": [{"sku": "A-1", "qty": 3.0}]}') IS NOT NULL AS integral_float_emitted;
-- nothing refused was stored
SELECT count(*) AS stored FROM outbox.events WHERE event_type = 'order.created';
-- the detail and hint of the error
SELECT outbox_emit('order.created', '{"order_id": 1, "items": [{"sku": "A-1", "qty": 0}]}');

-- more keywords, and pointers with "/" and "~" in names (RFC 6901)
SELECT outbox.register_schema('shapes', $${
  "type": "object",
  "properties": {
    "a/b": {"maxLength": 3},
    "m~n": {"type": ["integer", "null"]},
    "tags": {"type": "array", "uniqueItems": true, "maxItems": 3},
    "when": {"type": "string", "format": "date-time"},
    "choice": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "nested": {"additionalProperties": false, "properties": {"x": {"const": 5}}},
    "ratio": {"exclusiveMaximum": 0.5, "multipleOf": 0.25},
    "never": false
  },
  "propertyNames": {"maxLength": 8},
  "dependencies": {"ratio": ["tags"]}
}$$) AS shapes_v1;
SELECT payload, outbox.check_payload('shapes', payload::jsonb)
  FROM (VALUES ('{"a/b": "abcd"}'), ('{"m~n": 1.5}'), ('{"tags": [1, 2, 1]}'), ('{"tags": [1, 2, 3, 4]}'),
               ('{"when": "2024-02-30T10:00:00Z"}'), ('{"when": "yesterday"}'), ('{"when": 5}'),
               ('{"choice": true}'), ('{"nested": {"x": 5, "y/z": 1}}'), ('{"nested": {"x": 4}}'),
               ('{"ratio": 0.5, "tags": []}'), ('{"ratio": 0.3, "tags": []}'), ('{"ratio": 0.25}'),
               ('{"never": null}'), ('{"muchtoolongname": 1}'),
               ('{"a/b": "abc", "m~n": null, "tags": [1], "when": "2024-02-29T10:00:00.5+01:00", "choice": 3,
                  "nested": {"x": 5}, "ratio": 0.25}')) AS t(payload);

------------------------------------------------------------------------------------------------
-- check_payload: NULL when valid or without a schema, else the message outbox_emit raises
------------------------------------------------------------------------------------------------
SELECT outbox.check_payload('order.created', '{"order_id": 2, "items": [{"sku": "B-7"}]}') AS valid,
       outbox.check_payload('no.schema', '"anything"') AS no_schema,
       outbox.check_payload('order.created', '{}') AS invalid;
SELECT pg_temp.attempt($$SELECT outbox.check_payload(NULL, '{}')$$);
SELECT pg_temp.attempt($$SELECT outbox.check_payload('order.created', NULL)$$);

------------------------------------------------------------------------------------------------
-- A schema that is not JSON Schema (draft 7) is refused at registration, with the reason
------------------------------------------------------------------------------------------------
SELECT schema, pg_temp.attempt(format('SELECT outbox.register_schema(%L, %L)', 'bad', schema))
  FROM (VALUES ('{"type": "integr"}'), ('{"minimum": "1"}'), ('{"required": "id"}'),
               ('{"properties": {"p": {"pattern": "(unclosed"}}}'), ('{"patternProperties": {"[": {}}}'),
               ('{"$ref": "http://example.com/schema.json"}'),
               ('{"$schema": "https://json-schema.org/draft/2020-12/schema"}'), ('42')) AS t(schema);
SELECT count(*) AS bad_registered FROM outbox.event_schemas WHERE event_type = 'bad';
SELECT pg_temp.attempt($$SELECT outbox.register_schema(NULL, '{}')$$);
SELECT pg_temp.attempt($$SELECT outbox.register_schema('', '{}')$$);
SELECT pg_temp.attempt($$SELECT outbox.register_schema('t', NULL)$$);
SELECT pg_temp.attempt(format('SELECT outbox.register_schema(%L, ''{}'')', repeat('x', 256)));
-- boolean schemas and a $ref to the draft 7 meta-schema (served from memory, no network)
SELECT outbox.register_schema('anything', 'true') AS anything_v1,
       outbox.register_schema('schema.doc', '{"$ref": "http://json-schema.org/draft-07/schema#"}') AS meta_v1;
SELECT outbox.check_payload('schema.doc', '{"type": "object"}') AS meta_valid,
       outbox.check_payload('schema.doc', '{"type": 5}') AS meta_invalid;

------------------------------------------------------------------------------------------------
-- Limits: no input crashes or hangs the backend
------------------------------------------------------------------------------------------------
SELECT outbox.register_schema('limits', $${
  "properties": {"letters": {"pattern": "^[a-z]*$"}, "costly": {"pattern": "^(a+)+$"},
                 "tree": {"$ref": "#/definitions/tree"}},
  "definitions": {"tree": {"type": "array", "items": {"$ref": "#/definitions/tree"}}}
}$$) AS limits_v1;
-- std::regex overflowed the stack on this (valijson's own matcher); PCRE2 matches it
SELECT outbox.check_payload('limits', jsonb_build_object('letters', repeat('a', 200000))) AS long_string;
-- exponential backtracking stops at PCRE2's match limit, refused as undecidable
SELECT outbox.check_payload('limits', jsonb_build_object('costly', repeat('a', 100000) || 'b')) AS costly;
SELECT outbox.check_payload('limits', (repeat('[', 100) || repeat(']', 100))::jsonb) AS nested_100;
-- nesting deeper than the validator's stack allows: OB032, not a crash
SELECT regexp_replace(pg_temp.attempt(format('SELECT outbox_emit(%L, %L)', 'limits',
                                             jsonb_build_object('tree', (repeat('[', 3000) || repeat(']', 3000))::jsonb))),
                      '(/0)+', '/0/.../0') AS deep;
SELECT outbox.register_schema('loop', '{"allOf": [{"$ref": "#"}]}') AS loop_v1;
SELECT pg_temp.attempt($$SELECT outbox_emit('loop', '1')$$);
-- beyond a double: not silently infinite
SELECT outbox.register_schema('huge', '{"maximum": 10}') AS huge_v1;
SELECT outbox.check_payload('huge', '1e400') AS huge, outbox.check_payload('huge', '1e300') AS large;
-- a cancel reaches a long check: statement_timeout ends it with its own error
SELECT outbox.register_schema('unique', '{"uniqueItems": true}') AS unique_v1;
SET statement_timeout = '100ms';
SELECT pg_temp.attempt(format('SELECT outbox.check_payload(%L, %L)', 'unique',
                              (SELECT jsonb_agg(jsonb_build_array(i)) FROM generate_series(1, 100000) i)));
RESET statement_timeout;

------------------------------------------------------------------------------------------------
-- Drop: versions kept and marked, nothing enforced; a new registration numbers on
------------------------------------------------------------------------------------------------
SELECT outbox.drop_schema('order.created') AS dropped, outbox.drop_schema('order.created') AS again;
SELECT outbox_emit('order.created', '{"free": "form"}') IS NOT NULL AS emitted_after_drop;
SELECT outbox.register_schema('order.created', '{"required": ["order_id"]}') AS v3;
SELECT version, dropped_at IS NOT NULL AS dropped FROM outbox.event_schemas WHERE event_type = 'order.created' ORDER BY version;
SELECT pg_temp.attempt($$SELECT outbox_emit('order.created', '{"free": "form"}')$$);

------------------------------------------------------------------------------------------------
-- Transactions: a registration rolled back is not enforced; one in the same transaction is
------------------------------------------------------------------------------------------------
BEGIN;
SELECT outbox.register_schema('tx.type', '{"type": "string"}') AS tx_v1;
SELECT pg_temp.attempt($$SELECT outbox_emit('tx.type', '1')$$) AS in_transaction;
ROLLBACK;
SELECT outbox_emit('tx.type', '1') IS NOT NULL AS after_rollback;

------------------------------------------------------------------------------------------------
-- Capture triggers emit through outbox_emit: the schema of their event type applies
------------------------------------------------------------------------------------------------
CREATE TABLE schema_orders (id int PRIMARY KEY, qty int);
SELECT outbox.capture('schema_orders');
SELECT outbox.register_schema('created', '{"properties": {"qty": {"minimum": 1}}}') AS created_v1;
INSERT INTO schema_orders VALUES (1, 5);
SELECT pg_temp.attempt('INSERT INTO schema_orders VALUES (2, 0)');
SELECT id FROM schema_orders ORDER BY id;
SELECT outbox.uncapture('schema_orders');
SELECT outbox.drop_schema('created');

------------------------------------------------------------------------------------------------
-- Who may register: the owner and roles given outbox.grant_schema_admin, never the application
------------------------------------------------------------------------------------------------
CREATE ROLE outbox_schema_app LOGIN;
CREATE ROLE outbox_schema_admin LOGIN;
CREATE ROLE outbox_schema_reader LOGIN;
SELECT outbox.grant_app('outbox_schema_app');
SELECT outbox.grant_schema_admin('outbox_schema_admin');
SELECT outbox.grant_schema_check('outbox_schema_reader');
SET ROLE outbox_schema_app;
SELECT pg_temp.attempt($$SELECT outbox.register_schema('order.created', '{}')$$) AS app_registers;
SELECT pg_temp.attempt($$SELECT outbox.drop_schema('order.created')$$) AS app_drops;
SELECT pg_temp.attempt($$INSERT INTO outbox.event_schemas VALUES ('x', 9, '{}', now(), 'me')$$) AS app_inserts;
SELECT pg_temp.attempt($$SELECT outbox_emit('order.created', '{}')$$) AS app_emits_invalid;
SELECT outbox_emit('order.created', '{"order_id": 7}') IS NOT NULL AS app_emits_valid;
SET ROLE outbox_schema_admin;
SELECT outbox.register_schema('admin.type', '{"type": "object"}') AS admin_v1;
SELECT outbox.check_payload('admin.type', '[]') AS admin_checks;
SELECT event_type, version, registered_by FROM outbox.event_schemas WHERE event_type = 'admin.type';
SELECT pg_temp.attempt($$UPDATE outbox.event_schemas SET schema = '{}'$$) AS admin_updates;
SELECT pg_temp.attempt($$SELECT outbox.grant_schema_admin('outbox_schema_app')$$) AS admin_grants;
SELECT outbox.drop_schema('admin.type') AS admin_drops;
SET ROLE outbox_schema_reader;
SELECT outbox.check_payload('order.created', '{}') AS reader_checks;
SELECT count(*) > 0 AS reader_lists FROM outbox.event_schemas;
SELECT pg_temp.attempt($$SELECT outbox.register_schema('order.created', '{}')$$) AS reader_registers;
RESET ROLE;
SELECT pg_temp.attempt($$SELECT outbox.grant_schema_admin(NULL)$$);
-- nothing of the registry is PUBLIC's
SELECT f AS function, has_function_privilege('public', f, 'EXECUTE') AS public_may
  FROM unnest(ARRAY['outbox.register_schema(text,jsonb)', 'outbox.drop_schema(text)', 'outbox.check_payload(text,jsonb)',
                    'outbox.check_schema(text,jsonb)', 'outbox.grant_schema_admin(regrole)',
                    'outbox.grant_schema_check(regrole)']) f;
SELECT has_table_privilege('public', 'outbox.event_schemas', 'SELECT') AS public_may_read;
REVOKE ALL ON SCHEMA outbox FROM outbox_schema_app, outbox_schema_admin, outbox_schema_reader;
REVOKE ALL ON ALL TABLES IN SCHEMA outbox FROM outbox_schema_app, outbox_schema_admin, outbox_schema_reader;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA outbox FROM outbox_schema_app, outbox_schema_admin, outbox_schema_reader;
REVOKE ALL ON FUNCTION outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text, text, text, integer) FROM outbox_schema_app;
DROP ROLE outbox_schema_app, outbox_schema_admin, outbox_schema_reader;

------------------------------------------------------------------------------------------------
-- The cache: another session that validated with v1 validates with v2 right after v2 commits
------------------------------------------------------------------------------------------------
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('other', format('dbname=%s port=%s host=%s', current_database(), current_setting('port'),
                      split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT outbox.register_schema('cached', '{"properties": {"n": {"maximum": 10}}}') AS cached_v1;
SELECT * FROM dblink('other', $$SELECT outbox.check_payload('cached', '{"n": 20}')$$) AS t(other_sees text);
SELECT * FROM dblink('other', $$SELECT outbox.check_payload('cached', '{"n": 5}')$$) AS t(other_sees text);
-- v2, committed here while the other session keeps its compiled v1
SELECT outbox.register_schema('cached', '{"properties": {"n": {"maximum": 3}}}') AS cached_v2;
SELECT * FROM dblink('other', $$SELECT outbox.check_payload('cached', '{"n": 5}')$$) AS t(other_sees text);
-- an uncommitted registration is not seen there; its commit is, at the next statement
BEGIN;
SELECT outbox.register_schema('cached', '{"properties": {"n": {"maximum": 1}}}') AS cached_v3;
SELECT * FROM dblink('other', $$SELECT outbox.check_payload('cached', '{"n": 2}')$$) AS t(other_before_commit text);
COMMIT;
SELECT * FROM dblink('other', $$SELECT outbox.check_payload('cached', '{"n": 2}')$$) AS t(other_after_commit text);
-- a drop too, and a type that had none (a cached "no schema") gets one
SELECT * FROM dblink('other', $$SELECT outbox.check_payload('late', '5')$$) AS t(other_late_before text);
SELECT outbox.drop_schema('cached'), outbox.register_schema('late', '{"type": "string"}') AS late_v1;
SELECT * FROM dblink('other', $$SELECT outbox.check_payload('cached', '{"n": 2}')$$) AS t(other_after_drop text);
SELECT * FROM dblink('other', $$SELECT outbox.check_payload('late', '5')$$) AS t(other_late_after text);
-- a row written by hand (the owner) reaches the other session too
UPDATE outbox.event_schemas SET schema = '{"type": "integer"}' WHERE event_type = 'late';
SELECT * FROM dblink('other', $$SELECT outbox.check_payload('late', '5')$$) AS t(other_after_update text);
SELECT dblink_disconnect('other');

-- a row written by hand that is not JSON Schema: emits of the type fail, saying so
INSERT INTO outbox.event_schemas (event_type, version, schema, registered_by) VALUES ('broken', 1, '{"type": 5}', current_user);
SELECT pg_temp.attempt($$SELECT outbox_emit('broken', '{}')$$);
DELETE FROM outbox.event_schemas WHERE event_type = 'broken';

DROP TABLE schema_orders;
DELETE FROM outbox.events;
DELETE FROM outbox.event_schemas;

------------------------------------------------------------------------------------------------
-- Another encoding: the validator reads UTF-8 (characters, not bytes, for lengths and patterns),
-- and the message comes back in the database's encoding
------------------------------------------------------------------------------------------------
\set regress_db :DBNAME
DROP DATABASE IF EXISTS outbox_schemas_latin1;
CREATE DATABASE outbox_schemas_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c outbox_schemas_latin1
SET client_min_messages = warning;
SET client_encoding = 'UTF8';
CREATE EXTENSION outbox;
SELECT outbox.register_schema('café', '{"properties": {"größe": {"maxLength": 3, "pattern": "^[a-zäöü]+$"}}}') AS latin1_v1;
SELECT outbox.check_payload('café', '{"größe": "äöü"}') AS three_characters,
       outbox.check_payload('café', '{"größe": "äöüß"}') AS four_characters,
       outbox.check_payload('café', '{"größe": "ÄÖ"}') AS upper_case;
\c :regress_db
DROP DATABASE outbox_schemas_latin1;

-- outbox_emit runs as the extension's owner: the caller's pg_temp (a domain named text, checked
-- by a function of the caller's) must not run inside it when the schema is read
CREATE ROLE outbox_schema_attacker;
SELECT outbox.grant_app('outbox_schema_attacker');
SELECT outbox.register_schema('attack.type', '{"type": "object"}') AS v;
SET ROLE outbox_schema_attacker;
CREATE FUNCTION pg_temp.hijack(v pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'hijacked: ran as %', current_user; END$$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.hijack(VALUE));
SELECT outbox_emit('attack.type', '{}') IS NOT NULL AS emitted_without_running_the_callers_code;
RESET ROLE;
DISCARD TEMP;
SELECT outbox.drop_schema('attack.type');
DELETE FROM outbox.events WHERE event_type = 'attack.type';
REVOKE ALL ON FUNCTION outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text, text, text, integer) FROM outbox_schema_attacker;
REVOKE ALL ON SCHEMA outbox FROM outbox_schema_attacker;
DROP OWNED BY outbox_schema_attacker;
DROP ROLE outbox_schema_attacker;
