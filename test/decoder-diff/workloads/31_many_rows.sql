DROP SCHEMA IF EXISTS w31 CASCADE; CREATE SCHEMA w31; SET search_path = w31;
CREATE TABLE t1 (id int PRIMARY KEY, v text, n numeric, f float8, b bool);
INSERT INTO t1 SELECT g, 'row ' || g, g / 7.0, g * 1.5, g % 2 = 0 FROM generate_series(1, 5000) g;
UPDATE t1 SET v = v || '!' WHERE id % 10 = 0;
DELETE FROM t1 WHERE id % 3 = 0;
