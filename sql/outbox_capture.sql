-- Capture triggers: INSERT/UPDATE/DELETE on an application table emit events, with quoted,
-- mixed-case names in any schema; uncapture removes the trigger. The defaults: aggregate type
-- = table name, event types created/updated/deleted (so the relay's default routing key is
-- <table>.created), the relay's default exchange (NULL).
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
SELECT aggregate_type, aggregate_id, event_type, exchange, routing_key,
       coalesce(routing_key, aggregate_type || '.' || event_type) AS relay_routing_key, payload
  FROM outbox.events ORDER BY id;
-- the trigger has no exchange argument at all for the default
SELECT tgnargs FROM pg_trigger WHERE tgrelid = '"Shop Floor"."Order Items"'::regclass AND tgname = 'outbox_capture';

-- TRUNCATE fires no row trigger: it emits nothing
TRUNCATE "Shop Floor"."Order Items";
SELECT count(*) AS events_after_truncate FROM outbox.events;

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

-- the extension's own tables: capturing outbox.events would emit an event for every event
SELECT outbox.capture('outbox.events');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.capture('outbox.dead_letters');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.capture('outbox.message_key_store');
\echo :LAST_ERROR_SQLSTATE

-- arguments every later write would fail on are refused now, naming the parameter, with the
-- SQLSTATE outbox_emit would raise
CREATE TABLE "Shop Floor".args (id int PRIMARY KEY);
SELECT outbox.capture('"Shop Floor".args', created_type => '');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.capture('"Shop Floor".args', deleted_type => '');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.capture('"Shop Floor".args', updated_type => repeat('u', 256));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.capture('"Shop Floor".args', exchange => '');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.capture('"Shop Floor".args', exchange => repeat('x', 256));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.capture('"Shop Floor".args', aggregate_type => repeat('a', 256));
\echo :LAST_ERROR_SQLSTATE
-- <aggregate_type>.created: 248 + 1 + 7 bytes is one too many, 247 fit; every type counts
SELECT outbox.capture('"Shop Floor".args', aggregate_type => repeat('a', 248));
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.capture('"Shop Floor".args', aggregate_type => repeat('a', 242), deleted_type => 'gone.for.good');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM outbox.captured_tables WHERE table_name = '"Shop Floor".args'::regclass;
SELECT outbox.capture('"Shop Floor".args', aggregate_type => repeat('a', 247));
INSERT INTO "Shop Floor".args VALUES (1);
SELECT octet_length(aggregate_type || '.' || event_type) AS routing_key_bytes FROM outbox.events WHERE aggregate_id = '1' AND event_type = 'created' AND aggregate_type LIKE 'aaa%';

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

-- a key column dropped or renamed after capture: the write fails instead of emitting a NULL
-- aggregate id
CREATE TABLE "Shop Floor".coded (id int PRIMARY KEY, code text, region text);
SELECT outbox.capture('"Shop Floor".coded', key_columns => '{code}');
INSERT INTO "Shop Floor".coded VALUES (1, 'c-1', 'eu');
ALTER TABLE "Shop Floor".coded DROP COLUMN code;
INSERT INTO "Shop Floor".coded VALUES (2, 'eu');
\echo :LAST_ERROR_SQLSTATE
SELECT outbox.uncapture('"Shop Floor".coded');
SELECT outbox.capture('"Shop Floor".coded', key_columns => '{region, id}');
ALTER TABLE "Shop Floor".coded RENAME COLUMN region TO "Region";
UPDATE "Shop Floor".coded SET id = 3;
\echo :LAST_ERROR_SQLSTATE
SELECT aggregate_id, event_type FROM outbox.events WHERE aggregate_type = 'coded' ORDER BY id;

-- uncapture
SELECT outbox.uncapture('"Shop Floor"."Order Items"');
INSERT INTO "Shop Floor"."Order Items" VALUES (9, 9, 'not captured');
SELECT count(*) FROM outbox.events WHERE payload ->> 'note' = 'not captured';
SELECT outbox.uncapture('"Shop Floor"."Order Items"');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM outbox.captured_tables ORDER BY table_name::text;

DROP SCHEMA "Shop Floor" CASCADE;
DROP TABLE "Payments";
TRUNCATE outbox.events;
