DROP SCHEMA IF EXISTS w20 CASCADE; CREATE SCHEMA w20; SET search_path = w20;
CREATE TABLE t1 (id int PRIMARY KEY, vc varchar(20), c char(5), n numeric(8,3), ts timestamp(3), tstz timestamptz(0),
  t time(2), bt bit(5), vb varbit(10), iv interval day to second(2), iv2 interval year to month, nn numeric(4));
INSERT INTO t1 VALUES (1, 'abc', 'ab', 12345.6789, '2020-01-02 03:04:05.678912', '2020-01-02 03:04:05.6+02',
  '10:11:12.345', B'10101', B'101', '1 day 02:03:04.567', '3 years 2 months', 1234);
