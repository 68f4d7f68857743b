-- outbox 0.1 -> 0.2: ALTER EXTENSION outbox UPDATE. The result must equal a fresh 0.2 install
-- (sql/outbox_upgrade.sql compares the two).
\echo Use "ALTER EXTENSION outbox UPDATE" to load this file. \quit
