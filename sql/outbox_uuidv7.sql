-- UUIDv7 (RFC 9562): version 7, variant 0b10, the current time in the first 48 bits,
-- strictly increasing within a session even within one millisecond.
SELECT count(*) AS n,
       bool_and(substr(u::text, 15, 1) = '7') AS version_7,
       bool_and(substr(u::text, 20, 1) IN ('8', '9', 'a', 'b')) AS variant_rfc,
       bool_and(outbox.uuidv7_time(u) BETWEEN now() - interval '1 minute' AND clock_timestamp()) AS time_is_now,
       count(DISTINCT u) = count(*) AS unique_ids
  FROM (SELECT outbox.uuidv7() AS u FROM generate_series(1, 10000)) s;

-- generated order = sort order (10000 ids, many in one millisecond)
SELECT bool_and(prev < u) AS strictly_increasing
  FROM (SELECT u, lag(u) OVER (ORDER BY n) AS prev
          FROM (SELECT n, outbox.uuidv7() AS u FROM generate_series(1, 10000) n) a) b
 WHERE prev IS NOT NULL;

-- uuidv7_time reads the embedded time, and ignores other versions
SELECT outbox.uuidv7_time('01890a5d-ac96-774b-bcce-b302099a8057');
SELECT outbox.uuidv7_time(gen_random_uuid()) IS NULL AS v4_has_no_time;
