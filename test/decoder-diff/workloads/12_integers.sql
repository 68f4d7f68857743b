DROP SCHEMA IF EXISTS w12 CASCADE; CREATE SCHEMA w12; SET search_path = w12;
CREATE TABLE t1 (id bigint PRIMARY KEY, s smallint, i int, o oid, r regclass, x xid);
INSERT INTO t1 VALUES (-9223372036854775808, -32768, -2147483648, 0, 'pg_class', '0'),
  (9223372036854775807, 32767, 2147483647, 4294967295, 'pg_type', '4294967295'), (0, 0, 0, 1, NULL, NULL);
CREATE TABLE t2 (id serial PRIMARY KEY, big bigserial, v int);
INSERT INTO t2 (v) VALUES (1), (2);
