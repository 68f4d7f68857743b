-- peek-settings: SET bytea_output = escape;
DROP SCHEMA IF EXISTS w47 CASCADE; CREATE SCHEMA w47; SET search_path = w47;
CREATE TABLE t1 (id int PRIMARY KEY, b bytea, ba bytea[]);
INSERT INTO t1 VALUES (1, 'abc\000'::bytea, '{"\\x41"}'), (2, '\x', NULL), (3, '\xff00', NULL);
