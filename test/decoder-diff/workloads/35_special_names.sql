DROP SCHEMA IF EXISTS "my.schema" CASCADE; CREATE SCHEMA "my.schema";
CREATE TABLE "my.schema"."t.1" (id int PRIMARY KEY);
CREATE TABLE "my.schema"."*" (id int PRIMARY KEY);
CREATE TABLE "my.schema"."t 2" (id int PRIMARY KEY);
INSERT INTO "my.schema"."t.1" VALUES (1);
INSERT INTO "my.schema"."*" VALUES (2);
INSERT INTO "my.schema"."t 2" VALUES (3);
