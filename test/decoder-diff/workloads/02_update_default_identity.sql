DROP SCHEMA IF EXISTS w02 CASCADE; CREATE SCHEMA w02; SET search_path = w02;
CREATE TABLE t1 (id int PRIMARY KEY, v text, n int);
INSERT INTO t1 SELECT g, 'v' || g, g FROM generate_series(1, 5) g;
UPDATE t1 SET v = 'changed' WHERE id = 1;
UPDATE t1 SET id = 10 WHERE id = 2;
UPDATE t1 SET id = id + 100, v = NULL WHERE id > 3;
