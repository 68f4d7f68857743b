-- outbox 0.2 -> 0.3. CREATE EXTENSION outbox runs outbox--0.2.sql and then this script (the
-- contrib convention: one base script and a chain of upgrades), so everything 0.3 adds is
-- written once, here.
\echo Use "ALTER EXTENSION outbox UPDATE TO '0.3'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- Message keys with ids: rotation without losing events
------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------
-- Encodings
------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------
-- Dead letters written once; slot recovery bounded
------------------------------------------------------------------------------------------------
-- A relay restarted before the slot acknowledged an event's transaction gets the event again and
-- wrote its dead letter a second time (outbox.release_parked then emitted it twice). One row per
-- slot and event now: the relay inserts with ON CONFLICT DO NOTHING. The key is the event id; an
-- event without a (uuid) id, which outbox_emit never writes, is keyed by where the relay read it
-- (the event's "lsn", unique per line of a slot's stream).
--
-- Rows written twice before 0.3: the oldest row of each (slot, event) is kept, the later ones
-- removed; if only a later one was replayed, the kept row takes over its replay, so the event is
-- not emitted again. A partial index (new rows only) would leave the duplicates there, for
-- release_parked to emit twice, and would not stop a new row repeating an old one.
UPDATE outbox.dead_letters k
   SET replayed_at = r.replayed_at, replayed_event_id = r.replayed_event_id
  FROM (SELECT DISTINCT ON (d.slot_name, d.event_id) d.slot_name, d.event_id, d.replayed_at, d.replayed_event_id
          FROM outbox.dead_letters d
         WHERE d.replayed_at IS NOT NULL AND d.event_id IS NOT NULL
         ORDER BY d.slot_name, d.event_id, d.id) r
 WHERE k.slot_name = r.slot_name AND k.event_id = r.event_id AND k.replayed_at IS NULL
   AND k.id = (SELECT min(o.id) FROM outbox.dead_letters o WHERE o.slot_name = k.slot_name AND o.event_id = k.event_id);
DELETE FROM outbox.dead_letters d
 USING outbox.dead_letters o
 WHERE o.slot_name = d.slot_name AND o.event_id = d.event_id AND o.id < d.id;
DELETE FROM outbox.dead_letters d
 USING outbox.dead_letters o
 WHERE d.event_id IS NULL AND o.event_id IS NULL
   AND o.slot_name = d.slot_name AND o.event ->> 'lsn' = d.event ->> 'lsn' AND o.id < d.id;
CREATE UNIQUE INDEX dead_letters_once ON outbox.dead_letters (slot_name, event_id);
CREATE UNIQUE INDEX dead_letters_once_without_id ON outbox.dead_letters (slot_name, (event ->> 'lsn'))
    WHERE event_id IS NULL;
COMMENT ON INDEX outbox.dead_letters_once IS
    'One dead letter per slot and event: the relay writes it again after a restart before acknowledging';

-- A slot recovery read its first page by walking every row of outbox.events in id order until it
-- found an event to republish: with millions of rows kept (no outbox.purge), more than the
-- relay's --pg-timeout-ms, and then retried without end. Every event to republish has a txid at
-- least the lower snapshot's xmin (anything older is visible in it) and below the upper
-- snapshot's xmax, so an index on txid bounds each page by the events to republish and the
-- transactions running at either snapshot, whatever the table holds.
--
-- txid is set by its default on every insert since 0.2; rows from 0.1 get the value the
-- functions computed for them until now (outbox.full_xid(xmin)), so the index sees every row.
UPDATE outbox.events SET txid = outbox.full_xid(xmin) WHERE txid IS NULL;
ALTER TABLE outbox.events ALTER COLUMN txid SET NOT NULL;
CREATE INDEX events_txid ON outbox.events (txid);

-- Pages follow (txid, id): transaction order, then emit order within a transaction. For the
-- events of one aggregate written one transaction after another this is commit order (a
-- transaction that starts after another committed gets a larger txid), as id order was, and it
-- no longer depends on the ids being UUIDv7. after_id names the page's last event (its txid is
-- looked up), so the relay pages as before.
CREATE OR REPLACE FUNCTION outbox.slot_recovery_events(slot_name text, after_id uuid, max_rows int)
RETURNS TABLE (id uuid, xid xid, created_at text, line text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lower_snap pg_snapshot;
    upper_snap pg_snapshot;
    after_txid xid8;
BEGIN
    SELECT c.recovery_snapshot, c.recovery_upper INTO lower_snap, upper_snap
      FROM outbox.relay_checkpoints c WHERE c.slot_name = slot_recovery_events.slot_name;
    -- An empty page ends the recovery: it must never come from a state the relay did not set up.
    IF lower_snap IS NULL OR upper_snap IS NULL THEN
        RAISE EXCEPTION 'outbox.slot_recovery_events: slot % has no recovery under way',
                        coalesce(quote_literal(slot_recovery_events.slot_name), 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'outbox-relay calls outbox.begin_slot_recovery() and outbox.slot_recovery_upper() first; it starts again when this happens.';
    END IF;
    IF slot_recovery_events.after_id IS NOT NULL THEN
        SELECT e.txid INTO after_txid FROM outbox.events e WHERE e.id = slot_recovery_events.after_id;
        -- (purge keeps every event a recovery under way still needs)
        IF after_txid IS NULL THEN
            RAISE EXCEPTION 'outbox.slot_recovery_events: event % of the previous page is gone', slot_recovery_events.after_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'outbox-relay starts the recovery again when this happens.';
        END IF;
    END IF;
    RETURN QUERY
    SELECT e.id, e.xmin,
           to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US"+00"'),
           json_build_object('action', 'I', 'schema', 'outbox', 'table', 'events', 'columns', json_build_array(
               json_build_object('name', 'id', 'value', e.id::text),
               json_build_object('name', 'aggregate_type', 'value', e.aggregate_type),
               json_build_object('name', 'aggregate_id', 'value', e.aggregate_id),
               json_build_object('name', 'event_type', 'value', e.event_type),
               json_build_object('name', 'payload', 'value', e.payload::text),
               json_build_object('name', 'headers', 'value', e.headers::text),
               json_build_object('name', 'exchange', 'value', e.exchange),
               json_build_object('name', 'routing_key', 'value', e.routing_key),
               json_build_object('name', 'correlation_id', 'value', e.correlation_id),
               json_build_object('name', 'causation_id', 'value', e.causation_id),
               json_build_object('name', 'created_at', 'value', e.created_at::text)))::text
      FROM outbox.events e
     WHERE e.txid >= pg_snapshot_xmin(lower_snap)
       AND e.txid < pg_snapshot_xmax(upper_snap)
       AND (after_txid IS NULL OR (e.txid, e.id) > (after_txid, slot_recovery_events.after_id))
       AND pg_visible_in_snapshot(e.txid, upper_snap)
       AND NOT pg_visible_in_snapshot(e.txid, lower_snap)
     ORDER BY e.txid, e.id
     LIMIT slot_recovery_events.max_rows;
END
$$;


------------------------------------------------------------------------------------------------
-- Privileges: nothing but what the extension granted itself (runs last)
------------------------------------------------------------------------------------------------
