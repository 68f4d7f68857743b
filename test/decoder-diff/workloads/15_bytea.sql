DROP SCHEMA IF EXISTS w15 CASCADE; CREATE SCHEMA w15; SET search_path = w15;
CREATE TABLE t1 (id int PRIMARY KEY, b bytea);
INSERT INTO t1 VALUES (1, '\x'), (2, '\x00'), (3, '\xdeadbeef'), (4, 'abc\000'::bytea),
  (5, decode(repeat('ff', 3000), 'hex')), (6, NULL), (7, convert_to('héllo', 'UTF8'));
UPDATE t1 SET b = '\x01' WHERE id = 1;
