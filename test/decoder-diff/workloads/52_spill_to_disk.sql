-- peek-settings: SET logical_decoding_work_mem = '64kB';
-- a large transaction decoded with a tiny logical_decoding_work_mem: spilled to disk and read back
DROP SCHEMA IF EXISTS w52 CASCADE; CREATE SCHEMA w52; SET search_path = w52;
CREATE TABLE t1 (id int PRIMARY KEY, v text, big text);
BEGIN;
INSERT INTO t1 SELECT g, 'v' || g, CASE WHEN g % 1000 = 0 THEN repeat(md5(g::text), 2000) END FROM generate_series(1, 20000) g;
SAVEPOINT s;
UPDATE t1 SET v = 'sub' WHERE id % 7 = 0;
RELEASE s;
SELECT 'm' FROM pg_logical_emit_message(true, 'p', repeat('m', 100000));
DELETE FROM t1 WHERE id % 5 = 0;
COMMIT;
