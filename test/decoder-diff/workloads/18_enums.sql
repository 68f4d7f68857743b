DROP SCHEMA IF EXISTS w18 CASCADE; CREATE SCHEMA w18; SET search_path = w18;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy "quoted"');
CREATE TABLE t1 (id int PRIMARY KEY, m mood, ms mood[]);
INSERT INTO t1 VALUES (1, 'sad', '{ok,sad}'), (2, 'happy "quoted"', NULL);
UPDATE t1 SET m = 'ok' WHERE id = 1;
