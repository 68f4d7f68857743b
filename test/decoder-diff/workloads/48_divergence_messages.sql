DROP SCHEMA IF EXISTS w48 CASCADE; CREATE SCHEMA w48; SET search_path = w48;
CREATE TABLE t1 (id int PRIMARY KEY);
BEGIN; INSERT INTO t1 VALUES (1); INSERT INTO t1 VALUES (2); COMMIT;
SELECT 'm' FROM pg_logical_emit_message(false, 'nt', 'non-transactional after a txn with changes');
SELECT 'm' FROM pg_logical_emit_message(true, 'p', '\x610062'::bytea);
SELECT 'm' FROM pg_logical_emit_message(true, 'p', '\x61ff62c3'::bytea);
SELECT 'm' FROM pg_logical_emit_message(true, 'p', convert_to('ok é', 'UTF8'));
