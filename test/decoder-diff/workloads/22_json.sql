DROP SCHEMA IF EXISTS w22 CASCADE; CREATE SCHEMA w22; SET search_path = w22;
CREATE TABLE t1 (id int PRIMARY KEY, j json, jb jsonb, ja jsonb[]);
INSERT INTO t1 VALUES (1, '{"a": [1, 2, {"b": null}], "c": "d\"e"}', '{"z": 1, "a": "é\u00e9", "n": 1.50}', NULL),
  (2, '  [1,2]  ', '"string"', '{"{\"a\":1}"}'), (3, 'null', 'null', NULL), (4, '{"emoji":"😀\ud83d\ude00"}', '{"k": "\u2028"}', NULL);
