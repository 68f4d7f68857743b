DROP SCHEMA IF EXISTS w11 CASCADE; CREATE SCHEMA w11; SET search_path = w11;
CREATE TABLE t1 (id int PRIMARY KEY, f4 real, f8 double precision);
INSERT INTO t1 VALUES (1, 'NaN', 'NaN'), (2, 'Infinity', '-Infinity'), (3, '-0', '-0'),
  (4, 1e16, 1e16), (5, 1.17549435e-38, 5e-324), (6, 3.4028235e38, 1.7976931348623157e308),
  (7, 0.1, 0.1), (8, 1.0/3, 1.0/3), (9, -1.5e-10, 123456789.123456789), (10, NULL, NULL);
