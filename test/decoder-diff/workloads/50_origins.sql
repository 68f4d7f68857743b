DROP SCHEMA IF EXISTS w50 CASCADE; CREATE SCHEMA w50; SET search_path = w50;
CREATE TABLE t1 (id int PRIMARY KEY, v text);
SELECT 'o' FROM pg_replication_origin_create('w50_origin_a');
SELECT 'o' FROM pg_replication_origin_session_setup('w50_origin_a');
INSERT INTO t1 VALUES (1, 'from origin a');
SELECT 'm' FROM pg_logical_emit_message(true, 'p', 'message from origin a');
SELECT 'o' FROM pg_replication_origin_session_reset();
INSERT INTO t1 VALUES (2, 'local');
SELECT 'o' FROM pg_replication_origin_drop('w50_origin_a');
