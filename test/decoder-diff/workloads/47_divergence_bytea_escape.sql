-- peek-settings: SET bytea_output = escape;
DROP SCHEMA IF EXISTS w47 CASCADE; CREATE SCHEMA w47; SET search_path = w47;
CREATE TABLE t1 (id int PRIMARY KEY, b bytea, ba bytea[]);
-- Values whose escape output is shorter than 2 characters ('', 'a') are left out: wal2json then
-- reads past the end of the string (out-of-bounds read: garbage output), which cannot be recorded.
INSERT INTO t1 VALUES (1, 'abc\000'::bytea, '{"\\x41"}'), (3, '\xff00', NULL), (4, 'xyz', NULL);
