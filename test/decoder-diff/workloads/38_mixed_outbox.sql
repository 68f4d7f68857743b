CREATE SCHEMA IF NOT EXISTS outbox;
CREATE TABLE IF NOT EXISTS outbox.events (id uuid PRIMARY KEY, aggregate_type text, aggregate_id text,
  event_type text NOT NULL, payload jsonb NOT NULL, headers jsonb NOT NULL DEFAULT '{}', exchange text,
  routing_key text, correlation_id text, causation_id text, created_at timestamptz NOT NULL DEFAULT now());
DROP SCHEMA IF EXISTS w38 CASCADE; CREATE SCHEMA w38; SET search_path = w38;
CREATE TABLE orders (id int PRIMARY KEY, total numeric, status text);
DO $$
BEGIN
  FOR i IN 1..200 LOOP
    INSERT INTO w38.orders VALUES (i, i * 1.5, 'new');
    IF i % 3 = 0 THEN
      INSERT INTO outbox.events (id, aggregate_type, aggregate_id, event_type, payload, created_at)
        VALUES (('00000000-0000-7000-8000-' || lpad(i::text, 12, '0'))::uuid, 'order', 'o-' || (i % 17), 'created',
                jsonb_build_object('id', i, 'total', i * 1.5), '2020-01-01 00:00:00+00');
    END IF;
    IF i % 5 = 0 THEN
      PERFORM pg_logical_emit_message(true, 'outbox', json_build_object('id', 'm' || i, 'aggregate_id', 'o-' || (i % 17), 'event_type', 'msg')::text);
    END IF;
    UPDATE w38.orders SET status = 'seen' WHERE id = i;
    COMMIT;
  END LOOP;
END $$;
DELETE FROM outbox.events WHERE id::text LIKE '00000000-0000-7000-8000-%';
