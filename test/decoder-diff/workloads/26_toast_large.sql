DROP SCHEMA IF EXISTS w26 CASCADE; CREATE SCHEMA w26; SET search_path = w26;
CREATE TABLE t1 (id int PRIMARY KEY, big text, j jsonb);
INSERT INTO t1 SELECT 1, string_agg(md5(g::text), '') , jsonb_build_object('k', repeat('v', 300000)) FROM generate_series(1, 40000) g;
INSERT INTO t1 VALUES (2, repeat(E'\u00e9"\\', 100000), NULL);
