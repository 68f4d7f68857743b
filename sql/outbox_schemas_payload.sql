-- How the validator reads a payload (extension/schema_jsonb.c): straight from the jsonb, with
-- numbers meaning what they meant as JSON text, members in std::string's order (the member an
-- error names first), containers of every size and depth, scalar payloads, another encoding.
\set SHOW_CONTEXT never
\pset null '(null)'
SET client_min_messages = warning;

-- check_payload's message without its fixed start: where and why, or "valid".
CREATE FUNCTION pg_temp.verdict(event_type text, payload jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(substring(outbox.check_payload(event_type, payload) FROM '(?:fails|cannot be validated) at .*$'), 'valid')
$$;

------------------------------------------------------------------------------------------------
-- Numbers: an integer that fits a signed 64-bit integer is one; any other number is a double
-- (and one with a zero fraction within 64 bits an integer again, as draft 7 says)
------------------------------------------------------------------------------------------------
SELECT outbox.register_schema('payload.integer', '{"type": "integer"}') AS integer_v1,
       outbox.register_schema('payload.max10', '{"maximum": 10}') AS max10_v1,
       outbox.register_schema('payload.min0', '{"minimum": 0}') AS min0_v1;
-- 2^63 and 2^64 - 1 are doubles: they were read as negative integers, so 18446744073709551615
-- failed "minimum 0" and passed "maximum 10", and 2^63 passed "type integer"
SELECT p AS payload, pg_temp.verdict('payload.integer', p::jsonb) AS type_integer,
       pg_temp.verdict('payload.max10', p::jsonb) AS maximum_10, pg_temp.verdict('payload.min0', p::jsonb) AS minimum_0
FROM (VALUES ('1'), ('1.0'), ('-0.0'), ('1.5'), ('-2147483649'), ('9223372036854775807'), ('-9223372036854775808'),
             ('9223372036854775808'), ('18446744073709551615'), ('-9223372036854775809'),
             ('123456789012345678901234567890'), ('0.000000000000000000001'), ('1e300')) AS t(p);
-- the same in a schema: its bound 2^64 - 1 was read as -1
SELECT outbox.register_schema('payload.max_u64', '{"maximum": 18446744073709551615}') AS max_u64_v1;
SELECT pg_temp.verdict('payload.max_u64', '100') AS hundred, pg_temp.verdict('payload.max_u64', '18446744073709551616') AS two_to_64;
-- decimals read as strtod reads them: each equals the schema's copy, read from JSON text
SELECT outbox.register_schema('payload.decimals',
       '{"items": {"enum": [0.1, 0.3, 129.95, 2.675, 1e-7, 123456789.123456, 99999999999999.9, 1.7976931348623157, 0.30000000000000004]}}') AS decimals_v1;
SELECT pg_temp.verdict('payload.decimals',
       '[0.1, 0.3, 129.95, 2.675, 0.0000001, 123456789.123456, 99999999999999.9, 1.7976931348623157, 0.30000000000000004]') AS all_equal,
       pg_temp.verdict('payload.decimals', '[0.3, 0.31]') AS not_listed;
-- a number beyond a double cannot be compared: OB032, at its own place
SELECT left(pg_temp.verdict('payload.max10', '{"a": [1, 1e309]}'), 70) AS nested_overflow,
       left(pg_temp.verdict('payload.max10', '{"k/~": -1e309}'), 70) AS escaped_overflow;

------------------------------------------------------------------------------------------------
-- Members in std::string's order: jsonb keeps keys by length first, an error names the first
-- member in byte order
------------------------------------------------------------------------------------------------
SELECT outbox.register_schema('payload.closed', '{"properties": {"id": {}}, "additionalProperties": false}') AS closed_v1;
SELECT pg_temp.verdict('payload.closed', '{"id": 1, "b": 2, "aa": 3}') AS first_unexpected;
-- 300 members of 13 lengths (runs merged), with required, properties and additionalProperties
SELECT outbox.register_schema('payload.wide', (
    SELECT jsonb_build_object('required', jsonb_agg(k), 'properties', jsonb_object_agg(k, jsonb_build_object('const', i)),
                              'additionalProperties', false)
    FROM (SELECT i, repeat('x', i % 13) || i AS k FROM generate_series(1, 300) i) s)) AS wide_v1;
SELECT pg_temp.verdict('payload.wide', (SELECT jsonb_object_agg(repeat('x', i % 13) || i, i) FROM generate_series(1, 300) i)) AS all_300,
       pg_temp.verdict('payload.wide', (SELECT jsonb_object_agg(repeat('x', i % 13) || i, i) FROM generate_series(1, 300) i WHERE i <> 150)) AS without_150,
       pg_temp.verdict('payload.wide', (SELECT jsonb_object_agg(repeat('x', i % 13) || i, CASE i WHEN 299 THEN 0 ELSE i END) FROM generate_series(1, 300) i)) AS wrong_299,
       pg_temp.verdict('payload.wide', (SELECT jsonb_object_agg(repeat('x', i % 13) || i, i) FROM generate_series(1, 302) i)) AS with_302;

------------------------------------------------------------------------------------------------
-- Containers: past jsonb's stride of stored offsets (every 32nd entry), strings, numbers and
-- objects mixed (/40 was an object, /95 a string, /97 an object); scalar and empty payloads
------------------------------------------------------------------------------------------------
SELECT outbox.register_schema('payload.items', $${"items": {"anyOf": [{"type": "string", "pattern": "^v+$"},
                                                                      {"type": "integer", "maximum": 1000},
                                                                      {"type": "object", "required": ["n"]}]}}$$) AS items_v1;
SELECT pg_temp.verdict('payload.items', a) AS mixed_100,
       pg_temp.verdict('payload.items', jsonb_set(a, '{40}', '"vvx"')) AS string_at_40,
       pg_temp.verdict('payload.items', jsonb_set(a, '{95}', '{"m": 1}')) AS object_at_95,
       pg_temp.verdict('payload.items', jsonb_set(a, '{97}', '1001')) AS number_at_97
FROM (SELECT jsonb_agg(CASE i % 3 WHEN 0 THEN to_jsonb(repeat('v', i)) WHEN 1 THEN to_jsonb(i)
                       ELSE jsonb_build_object('n', i, 'pad', repeat('p', i)) END ORDER BY i) AS a
      FROM generate_series(1, 100) i) s;
SELECT outbox.register_schema('payload.containers', '{"type": ["object", "array"], "minProperties": 1, "minItems": 1,
                                                     "additionalProperties": {"minProperties": 1, "minItems": 1}, "items": {"minItems": 1}}') AS containers_v1;
SELECT p AS payload, pg_temp.verdict('payload.containers', p::jsonb) AS verdict
FROM (VALUES ('5'), ('"s"'), ('null'), ('true'), ('{}'), ('[]'), ('{"a": {}}'), ('{"a": []}'), ('[[]]'), ('{"a": {"b": 1}}'), ('[[1]]')) AS t(p);

DELETE FROM outbox.event_schemas WHERE event_type LIKE 'payload.%';

------------------------------------------------------------------------------------------------
-- Another encoding: keys converted to UTF-8, then ordered ("é" is one byte in LATIN1, where
-- jsonb puts it before "zz", and after it in UTF-8)
------------------------------------------------------------------------------------------------
\set regress_db :DBNAME
DROP DATABASE IF EXISTS outbox_schemas_payload_latin1;
CREATE DATABASE outbox_schemas_payload_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c outbox_schemas_payload_latin1
SET client_min_messages = warning;
SET client_encoding = 'UTF8';
CREATE EXTENSION outbox;
SELECT outbox.register_schema('fermé', '{"properties": {"größe": {"maxLength": 2}}, "additionalProperties": false}') AS latin1_v1;
SELECT outbox.check_payload('fermé', '{"größe": "äö"}') AS valid,
       outbox.check_payload('fermé', '{"zz": 1, "é": 2, "größe": "äö"}') AS first_unexpected,
       outbox.check_payload('fermé', '{"größe": "äöü"}') AS three_characters;
\c :regress_db
DROP DATABASE outbox_schemas_payload_latin1;
