DROP SCHEMA IF EXISTS w44 CASCADE; CREATE SCHEMA w44; SET search_path = w44;
CREATE TABLE t1 (id int PRIMARY KEY, x xml, tv tsvector, tq tsquery, l pg_lsn, ts txid_snapshot, b bit varying, c cidr);
INSERT INTO t1 VALUES (1, '<a b="c">d &amp; e</a>', 'a fat cat', 'fat & rat', '16/B374D848', '10:20:10,14,15', B'1', '1.2.3.0/24');
