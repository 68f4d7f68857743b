DROP SCHEMA IF EXISTS w01 CASCADE; CREATE SCHEMA w01; SET search_path = w01;
CREATE TABLE t1 (id int PRIMARY KEY, name text, score numeric(10,2));
INSERT INTO t1 VALUES (1, 'one', 1.5), (2, 'two', NULL);
INSERT INTO t1 VALUES (3, 'three', 3.25);
BEGIN; INSERT INTO t1 VALUES (4, 'four', 4); INSERT INTO t1 VALUES (5, 'five', 5); COMMIT;
