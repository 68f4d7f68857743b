DROP SCHEMA IF EXISTS w19 CASCADE; CREATE SCHEMA w19; SET search_path = w19;
CREATE TYPE pair AS (a int, b text);
CREATE TYPE "Weird Type" AS (x float8);
CREATE TABLE t1 (id int PRIMARY KEY, p pair, w "Weird Type", ps pair[]);
INSERT INTO t1 VALUES (1, ROW(1, 'x y'), ROW(1.5), ARRAY[ROW(2, 'q')::pair]), (2, ROW(NULL, NULL), NULL, NULL);
