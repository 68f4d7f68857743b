DROP SCHEMA IF EXISTS w21 CASCADE; CREATE SCHEMA w21; SET search_path = w21;
CREATE TABLE t1 (id int PRIMARY KEY, d date, t time, tz timetz, ts timestamp, tstz timestamptz, i interval);
INSERT INTO t1 VALUES (1, '2024-02-29', '23:59:59.999999', '12:00+05:30', '2000-01-01 00:00', '2000-01-01 00:00+00', '1 year 2 mons 3 days 04:05:06'),
  (2, 'infinity', '00:00', '00:00-12', '-infinity', 'infinity', '-1 day -00:00:01'),
  (3, '0044-03-15 BC', '12:34', '01:02:03+00', '1999-12-31 23:59:59.5', '2038-01-19 03:14:08+00', '0');
