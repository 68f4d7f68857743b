DROP SCHEMA IF EXISTS w14 CASCADE; CREATE SCHEMA w14; SET search_path = w14;
CREATE TABLE t1 (id int PRIMARY KEY, v text, vc varchar);
INSERT INTO t1 VALUES (1, E'quote " backslash \\ slash / tab \t nl \n cr \r ff \f bs \b', 'x'),
  (2, E'\x01\x02\x03\x04\x05\x06\x07\x0b\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f', E'\x7f'),
  (3, E'\u2028 \u2029 \u0085 \u00a0 \uFEFF \U0001F600 ✓ é ß 中文', ''),
  (4, '', NULL), (5, repeat('ab"c\', 1000), 'y');
