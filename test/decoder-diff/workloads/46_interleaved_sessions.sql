DROP SCHEMA IF EXISTS w46 CASCADE; CREATE SCHEMA w46; SET search_path = w46;
CREATE TABLE t1 (id int PRIMARY KEY, who text);
-- one session: commit order differs from start order through subtransactions and a long txn
BEGIN; INSERT INTO t1 VALUES (1, 'first-started'); SAVEPOINT s; INSERT INTO t1 VALUES (2, 'sub'); RELEASE s; COMMIT;
INSERT INTO t1 VALUES (3, 'second');
BEGIN; INSERT INTO t1 SELECT g, 'bulk' FROM generate_series(10, 300) g; DELETE FROM t1 WHERE id BETWEEN 100 AND 150; COMMIT;
