-- A slot recovery's pages read the events to republish, not the table: with 2M events kept
-- (already published, no outbox.purge) the first page used to walk all of them in id order
-- before it found the first to republish, longer than the relay's --pg-timeout-ms, and the
-- recovery was retried without end. The index on txid bounds each page (outbox--0.2--0.3.sql).
-- Pages follow (txid, id): transaction order, then emit order.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
TRUNCATE outbox.events, outbox.relay_checkpoints;
INSERT INTO outbox.events (event_type, payload) SELECT 'published', '{}' FROM generate_series(1, 2000000);
-- the relay acknowledged past a fence taken after them: they are known published
SELECT outbox.record_checkpoint('bound', pg_current_wal_insert_lsn(), now());
SELECT outbox.record_checkpoint('bound', pg_current_wal_insert_lsn(), now());
-- then four transactions it did not acknowledge; the last one inserted directly, with an id
-- lower than every other (not a UUIDv7): it still comes last
SELECT outbox_emit('new.1', '{}', 'order', 'o1') IS NOT NULL AS ok;
SELECT outbox_emit('new.2', '{}', 'order', 'o1') IS NOT NULL AS ok;
BEGIN;
SELECT outbox_emit('new.3a', '{}', 'order', 'o2') IS NOT NULL AS ok;
SELECT outbox_emit('new.3b', '{}', 'order', 'o2') IS NOT NULL AS ok;
COMMIT;
INSERT INTO outbox.events (id, event_type, payload) VALUES ('00000000-0000-4000-8000-000000000001', 'new.4', '{}');
SELECT outbox.begin_slot_recovery('bound') IS NOT NULL AS began;
SELECT outbox.slot_recovery_upper('bound');
SELECT outbox_emit('after.upper', '{}') IS NOT NULL AS ok;   -- the new slot decodes it

-- the first page, and how many rows of outbox.events it read (it used to be 2M)
BEGIN;
SELECT line::json -> 'columns' -> 3 ->> 'value' AS event_type FROM outbox.slot_recovery_events('bound', NULL, 500);
SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) < 50 AS read_only_the_events_to_republish
  FROM pg_stat_xact_user_tables WHERE relid = 'outbox.events'::regclass;
COMMIT;
-- one event per page: the same order, then an empty page
WITH RECURSIVE p(n, id, event_type) AS (
  SELECT 1, r.id, r.line::json -> 'columns' -> 3 ->> 'value' FROM outbox.slot_recovery_events('bound', NULL, 1) r
  UNION ALL
  SELECT p.n + 1, r.id, r.line::json -> 'columns' -> 3 ->> 'value'
    FROM p, LATERAL outbox.slot_recovery_events('bound', p.id, 1) r
)
SELECT n, event_type FROM p ORDER BY n;
SELECT outbox.finish_slot_recovery('bound');
TRUNCATE outbox.events, outbox.relay_checkpoints;
