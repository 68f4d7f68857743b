DROP SCHEMA IF EXISTS w49 CASCADE; CREATE SCHEMA w49; SET search_path = w49;
CREATE TABLE t1 (id int PRIMARY KEY, a text DEFAULT 'say "hi"', b text DEFAULT E'back\\slash');
INSERT INTO t1 (id) VALUES (1);
