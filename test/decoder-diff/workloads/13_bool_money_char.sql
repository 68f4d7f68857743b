DROP SCHEMA IF EXISTS w13 CASCADE; CREATE SCHEMA w13; SET search_path = w13;
CREATE TABLE t1 (id int PRIMARY KEY, b boolean, m money, c "char", ch char(3), bp bpchar, n name);
INSERT INTO t1 VALUES (1, true, '12.34', 'a', 'ab', 'x  ', 'name1'),
  (2, false, '-1000000.5', E'\\303', 'é', 'y', 'Ünïcode'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL);
