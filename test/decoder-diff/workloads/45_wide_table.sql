DROP SCHEMA IF EXISTS w45 CASCADE; CREATE SCHEMA w45; SET search_path = w45;
DO $$ BEGIN EXECUTE 'CREATE TABLE w45.wide (id int PRIMARY KEY, ' || (SELECT string_agg('c' || g || ' int', ', ') FROM generate_series(1, 200) g) || ')'; END $$;
INSERT INTO wide (id, c1, c100, c200) VALUES (1, 1, 100, 200);
ALTER TABLE wide DROP COLUMN c50;
UPDATE wide SET c2 = 2;
