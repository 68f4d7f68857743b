DROP SCHEMA IF EXISTS "W34 Schema" CASCADE; CREATE SCHEMA "W34 Schema"; SET search_path = "W34 Schema";
CREATE TABLE "Table ""Quoted""" ("Col A" int PRIMARY KEY, "col""b" text, "ünï" text, "a\b" int);
INSERT INTO "Table ""Quoted""" VALUES (1, 'x', 'y', 2);
UPDATE "Table ""Quoted""" SET "Col A" = 3;
CREATE TABLE "t1" (id int PRIMARY KEY);
INSERT INTO t1 VALUES (1);
