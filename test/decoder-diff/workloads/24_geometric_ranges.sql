DROP SCHEMA IF EXISTS w24 CASCADE; CREATE SCHEMA w24; SET search_path = w24;
CREATE TABLE t1 (id int PRIMARY KEY, p point, b box, c circle, r int4range, tr tstzrange, mr int4multirange, l line, pg polygon);
INSERT INTO t1 VALUES (1, '(1,2)', '((0,0),(1,1))', '<(0,0),5>', '[1,10)', '[2020-01-01,2021-01-01)', '{[1,3),[5,7)}', '{1,-1,0}', '((0,0),(1,0),(1,1))'),
  (2, NULL, NULL, NULL, 'empty', '(,)', '{}', NULL, NULL);
