-- Capture triggers: INSERT/UPDATE/DELETE on an application table emit events, with quoted,
-- mixed-case names in any schema; uncapture removes the trigger.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE SCHEMA "Shop Floor";
CREATE TABLE "Shop Floor"."Order Items" ("Item Id" int PRIMARY KEY, "Qty" int, note text);
SELECT outbox.capture('"Shop Floor"."Order Items"');
SELECT * FROM outbox.captured_tables;

INSERT INTO "Shop Floor"."Order Items" VALUES (1, 2, 'first'), (2, 5, NULL);
UPDATE "Shop Floor"."Order Items" SET "Qty" = 3 WHERE "Item Id" = 1;
DELETE FROM "Shop Floor"."Order Items" WHERE "Item Id" = 2;
SELECT aggregate_type, aggregate_id, event_type, payload FROM outbox.events ORDER BY id;

-- a rolled-back change emits nothing
BEGIN;
INSERT INTO "Shop Floor"."Order Items" VALUES (3, 1, 'never');
ROLLBACK;
SELECT count(*) AS events_after_rollback FROM outbox.events;

-- capturing twice, capturing a view, a table without a primary key, a missing key column
SELECT outbox.capture('"Shop Floor"."Order Items"');
\echo :LAST_ERROR_SQLSTATE
CREATE VIEW "Shop Floor".v AS SELECT 1 AS x;
SELECT outbox.capture('"Shop Floor".v');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE "Shop Floor".log_lines (line text, at timestamptz);
SELECT outbox.capture('"Shop Floor".log_lines');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.capture('"Shop Floor".log_lines', key_columns => '{nope}');
\echo :LAST_ERROR_SQLSTATE

-- explicit settings: aggregate type, a composite key, event names, exchange
CREATE TABLE public."Payments" (region text, "No" int, amount numeric, PRIMARY KEY (region, "No"));
SELECT outbox.capture('"Payments"', aggregate_type => 'payment', created_type => 'payment.made',
                      updated_type => 'payment.changed', deleted_type => 'payment.voided', exchange => 'billing');
INSERT INTO "Payments" VALUES ('eu', 7, 10.5);
DELETE FROM "Payments";
SELECT aggregate_type, aggregate_id, event_type, exchange, payload
  FROM outbox.events WHERE aggregate_type = 'payment' ORDER BY id;

SELECT outbox.capture('"Shop Floor".log_lines', key_columns => '{line}');
INSERT INTO "Shop Floor".log_lines VALUES ('hello', NULL);
SELECT aggregate_id, event_type FROM outbox.events WHERE aggregate_type = 'log_lines';

-- uncapture
SELECT outbox.uncapture('"Shop Floor"."Order Items"');
INSERT INTO "Shop Floor"."Order Items" VALUES (9, 9, 'not captured');
SELECT count(*) FROM outbox.events WHERE payload ->> 'note' = 'not captured';
SELECT outbox.uncapture('"Shop Floor"."Order Items"');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM outbox.captured_tables ORDER BY 1::text;

DROP SCHEMA "Shop Floor" CASCADE;
DROP TABLE "Payments";
TRUNCATE outbox.events;
