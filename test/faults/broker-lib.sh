# Shared by the broker fault tests (cluster-node-kill, broker-silent); sourced, not run.
# A database, slot and quorum queue of the test's own on the 3-node cluster of
# scripts/rabbitmq-cluster, the built relay streaming into it, a load of committed events, and the
# count of what a consumer of the queue received against what was committed. Everything the test
# starts is stopped by PID, and what it created is dropped, on exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${OUTBOX_BUILD_DIR:-$repo/build}
name=$(basename "$0")
: "${PGPORT:?source the stack env first (scripts/stack up; . \$OUTBOX_RUN_DIR/env)}"
: "${OUTBOX_RUN_DIR:?source the stack env first}"
[[ -x "$build/outbox-relay" && -x "$build/outbox-tail" ]] || { echo "$name: build first: scripts/build-relay" >&2; exit 2; }
cluster="$repo/scripts/rabbitmq-cluster"

tag="${name//-/_}_$$"
work=$(mktemp -d "/tmp/$tag.XXXXXX")
relay_pid=""
started_cluster=0
killed_node=""
paused_node=""

log() { echo "$name: $*" >&2; }
now_ms() { date +%s%3N; }

cleanup() {
  set +e
  [[ -n "$paused_node" ]] && "$cluster" resume "$paused_node" >/dev/null 2>&1
  if [[ -n "$relay_pid" ]] && kill -0 "$relay_pid" 2>/dev/null; then
    kill "$relay_pid"; for _ in $(seq 1 100); do kill -0 "$relay_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$relay_pid" 2>/dev/null
  fi
  psql -qAtX -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$tag'" >/dev/null 2>&1
  dropdb --if-exists --force "$tag" >/dev/null 2>&1
  if [[ $started_cluster == 1 && -z "${OUTBOX_KEEP_CLUSTER:-}" ]]; then
    "$cluster" down >/dev/null 2>&1
  else
    [[ -n "$killed_node" ]] && "$cluster" start "$killed_node" >/dev/null 2>&1
    # Only when the cluster's env was read (a cluster that could not be formed has none).
    if [[ -n "${OUTBOX_CLUSTER_NODE2_CTL:-}" ]]; then
      "$OUTBOX_CLUSTER_NODE2_CTL" delete_queue "$tag.q" >/dev/null 2>&1
      "$OUTBOX_CLUSTER_NODE2_CTL" eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$tag.ex\">>), false, <<\"test\">>)." >/dev/null 2>&1
    fi
  fi
  if [[ ${keep_work:-0} == 1 ]]; then log "kept $work (relay log: $work/relay.log)"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The cluster: the one already up under this run dir (the fault layer's), else one of the
# test's own (stopped at the end). One that could not be formed in this run is not tried again.
cluster_up() {
  local env="$OUTBOX_RUN_DIR/cluster/env"
  if ! "$cluster" status >/dev/null 2>&1; then
    local t0; t0=$(now_ms)
    "$cluster" need || { log "no 3-node cluster (see above)"; exit 1; }
    started_cluster=1
    log "cluster came up in $(( $(now_ms) - t0 )) ms"
  fi
  . "$env"
  [[ -n "${OUTBOX_CLUSTER_NODE2_CTL:-}" ]] || { log "$env does not describe the cluster"; exit 1; }
}

# db_up: the test's database with the outbox extension and the table of what was committed.
db_up() {
  createdb "$tag"
  psql -qAtX -v ON_ERROR_STOP=1 -d "$tag" <<'SQL'
CREATE EXTENSION outbox;
CREATE TABLE expected (seq bigserial PRIMARY KEY, id uuid NOT NULL, agg int NOT NULL, k int NOT NULL);
-- n one-event transactions over `aggs` aggregates, the expected row written in the event's own
-- transaction (so it exists if and only if the event committed); a pause every `every` commits.
CREATE PROCEDURE load(n int, aggs int, every int, pause float8, body_bytes int DEFAULT 0) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    INSERT INTO expected (id, agg, k)
    SELECT outbox_emit('fault.event',
                       jsonb_build_object('agg', i % aggs, 'k', i, 'pad', repeat('x', body_bytes)),
                       aggregate_type => 'acct', aggregate_id => (i % aggs)::text), i % aggs, i;
    COMMIT;
    IF i % every = 0 THEN PERFORM pg_sleep(pause); END IF;
  END LOOP;
END $$;
SQL
}

plugin() {
  if [[ -f "$(pg_config --pkglibdir)/outbox_decoder.so" ]]; then echo outbox_decoder; else echo wal2json; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# relay_up EXTRA...: the relay on the cluster's address list, declaring the test's exchange and
# quorum queue (x-queue-type=quorum) from its config file; waits until it streams.
relay_up() {
  http_port=$(free_port)
  cat >"$work/relay.toml" <<EOF
[[topology.exchanges]]
name = "$tag.ex"
type = "topic"

[[topology.queues]]
name = "$tag.q"
durable = true
queue_type = "quorum"

[[topology.bindings]]
queue = "$tag.q"
exchange = "$tag.ex"
routing_key = "#"
EOF
  "$build/outbox-relay" --config "$work/relay.toml" --pg "host=127.0.0.1 port=$PGPORT user=${PGUSER:-postgres} dbname=$tag" \
    --slot "$tag" --create-slot --plugin "$(plugin)" --exchange "$tag.ex" --amqp "$OUTBOX_AMQP_CLUSTER_URLS" \
    --http "127.0.0.1:$http_port" --reconnect-min-ms 100 --reconnect-max-ms 1000 --status-interval-ms 1000 \
    "$@" >"$work/relay.log" 2>&1 &
  relay_pid=$!
  for _ in $(seq 1 150); do
    [[ "$(psql -qAtX -d "$tag" -c "SELECT active FROM pg_replication_slots WHERE slot_name = '$tag'")" == t ]] && return 0
    kill -0 "$relay_pid" 2>/dev/null || break
    sleep 0.1
  done
  keep_work=1
  cat "$work/relay.log" >&2
  log "the relay did not start streaming"
  exit 1
}

# The node (1-3) the relay is connected to now, from its last "connected to RabbitMQ node K of 3".
connected_node() {
  grep -o 'connected to RabbitMQ node [0-9]* of' "$work/relay.log" | tail -n 1 | awk '{print $5}'
}

metric() {  # metric NAME: the relay's value of a metric (first series)
  curl -s "http://127.0.0.1:$http_port/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {print $2; exit}'
}

# wait_caught_up SECONDS: the slot confirmed everything committed so far (every event confirmed).
wait_caught_up() {
  local end; end=$(psql -qAtX -d "$tag" -c "SELECT pg_current_wal_lsn()")
  for _ in $(seq 1 $(( $1 * 10 ))); do
    [[ "$(psql -qAtX -d "$tag" -c "SELECT confirmed_flush_lsn >= '$end' FROM pg_replication_slots WHERE slot_name = '$tag'")" == t ]] && return 0
    sleep 0.1
  done
  return 1
}

# watch_fault CMD...: runs the fault (CMD), then polls the relay's metrics every 5 ms and prints
# "DETECT_MS GAP_MS": from the fault to the relay giving up the connection (its RabbitMQ
# reconnect counter moved), and to the first confirm after that (confirms read from the socket
# after the fault were sent before it, so they do not count); -1 for what did not happen in 120 s.
watch_fault() {
  python3 - "$http_port" "$@" <<'PY2'
import subprocess, sys, time, urllib.request
port, cmd = sys.argv[1], sys.argv[2:]
def metrics():
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("outbox_relay_events_confirmed_total "):
            out["confirmed"] = float(line.split()[1])
        if line.startswith('outbox_relay_reconnects_total{server="rabbitmq"}'):
            out["reconnects"] = float(line.split()[1])
    return out
before = metrics()
t0 = time.monotonic()
subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
detect, base = -1, None
while time.monotonic() - t0 < 120:
    m = metrics()
    if base is None and m.get("reconnects", 0) > before.get("reconnects", 0):
        detect, base = int((time.monotonic() - t0) * 1000), m["confirmed"]
    elif base is not None and m["confirmed"] > base:
        print(detect, int((time.monotonic() - t0) * 1000))
        sys.exit(0)
    time.sleep(0.005)
print(detect, -1)
PY2
}

# verify NODE GAP_MS: drains the quorum queue through node NODE, compares with what committed;
# prints events= lost= unexpected= duplicates= order_violations= gap_ms=; false on a loss or an
# order break (duplicates are allowed: at least once, with the same message_id).
verify() {
  local node=$1 gap=$2 url
  url=$(eval echo "\$OUTBOX_CLUSTER_NODE${node}_URL")
  psql -qAtX -d "$tag" -c "COPY (SELECT id, agg, seq FROM expected ORDER BY seq) TO STDOUT" >"$work/expected.tsv"
  "$build/outbox-tail" --url "$url" --queue "$tag.q" --idle-ms 3000 >"$work/received.jsonl" 2>"$work/tail.log" || true
  python3 - "$work/expected.tsv" "$work/received.jsonl" "$gap" <<'PY'
import json, sys
expected = {}
for line in open(sys.argv[1]):
    i, agg, k = line.split()
    expected[i] = (agg, int(k))
seen, dups, unexpected, order = set(), 0, 0, 0
last = {}
for line in open(sys.argv[2]):
    m = json.loads(line)
    i = m.get("message_id")
    if i not in expected:
        unexpected += 1
        continue
    if i in seen:
        dups += 1
        continue
    seen.add(i)
    agg, k = expected[i]
    if agg in last and k < last[agg]:
        order += 1
    last[agg] = k
lost = len(expected) - len(seen)
print(f"events={len(expected)} lost={lost} unexpected={unexpected} duplicates={dups} order_violations={order} gap_ms={sys.argv[3]}")
sys.exit(1 if lost or unexpected or order or not expected else 0)
PY
}
