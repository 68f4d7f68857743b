DROP SCHEMA IF EXISTS w16 CASCADE; CREATE SCHEMA w16; SET search_path = w16;
CREATE TABLE t1 (id int PRIMARY KEY, ia int[], ta text[], ba bytea[], na numeric[], m int[][], va varchar(5)[], ba2 boolean[]);
INSERT INTO t1 VALUES (1, '{1,2,NULL}', '{"a b","c\"d",NULL,""}', '{"\\x0102",NULL}', '{1.5,NaN}',
  '{{1,2},{3,4}}', '{ab,cd}', '{t,f}'),
  (2, '{}', '{}', '{}', '{}', '{}', '{}', '{}'), (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
