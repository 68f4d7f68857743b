# shellcheck shell=bash
# test/faults/lib.sh: what every fault scenario shares. Sourced by test/faults/scenarios/*, with
# the stack's env sourced and the repo root as working directory (test/faults/run sees to both).
#
# A scenario run (one scenario, one storage mode) owns: a database fx_<name>_<storage> with the
# extension and fault_expected, a slot, a topic exchange and a durable queue bound to it (declared
# before the load starts), relays, a load generator, maybe proxies and a standby. Every process is
# started through fx_spawn, which records its PID in $FX_DIR/pids; fx_cleanup (a trap) stops them
# by PID, whatever happened. Times are wall-clock milliseconds (fx_now_ms).
# shellcheck disable=SC2034  # FX_FAILED, PGBIN, ... are read by the scripts that source this

set -uo pipefail

FX_BIN=${FX_BIN:-build}
# The relay under test; another build of it can be tried without rebuilding the tools.
FX_RELAY_BIN=${FX_RELAY_BIN:-$FX_BIN/outbox-relay}
FX_SIZE=${FX_SIZE:-full}          # short | full
FX_WINDOW=${FX_WINDOW:-1000}      # the relay's --max-in-flight
FX_RATE=${FX_RATE:-1500}          # events/s of the load
PGBIN=/usr/lib/postgresql/15/bin

fx_now_ms() { date +%s%3N; }
fx_say() { echo "faults[$FX_NAME/$FX_STORAGE]: $*" >&2; }
fx_die() { fx_say "error: $*"; exit 2; }

# Counts for the two sizes: short versions go into make test (a few thousand events each), full
# versions into make test-faults (together well over 50k events).
fx_events() { if [[ $FX_SIZE == short ]]; then echo "${1:-2000}"; else echo "${2:-6000}"; fi; }

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then (cd / && su postgres -s /bin/sh -c "$*"); else sh -c "$*"; fi
}

# The stack's data directory as the postgres user names it (scripts/stack may link it to /tmp).
fx_pgdata() {
  local d=$OUTBOX_RUN_DIR/pg
  [[ -L $d ]] && d=$(readlink "$d")
  echo "$d/data"
}

fx_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# psql on a database of the stack's primary (or of $2's port).
fx_psql() { psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "${FX_PGPORT:-$PGPORT}" -U postgres "$@"; }

# fx_begin NAME STORAGE: the names and the directory of one scenario run, the objects it needs,
# and the trap that removes them.
fx_begin() {
  FX_NAME=$1 FX_STORAGE=$2
  FX_TAG=$(echo "fx_${FX_NAME}_${FX_STORAGE}" | tr '-' '_')
  FX_DIR=${FX_WORK:-/tmp}/$FX_TAG
  rm -rf "$FX_DIR"
  mkdir -p "$FX_DIR"
  : >"$FX_DIR/pids"
  FX_DB=$FX_TAG FX_SLOT=$FX_TAG FX_EXCHANGE=$FX_TAG.ex FX_QUEUE=$FX_TAG.q
  FX_PGPORT=$PGPORT
  FX_CLEANUP_EXTRA=()
  trap fx_cleanup EXIT
  trap 'exit 130' INT TERM
  fx_psql -d postgres -c "DROP DATABASE IF EXISTS $FX_DB" >/dev/null 2>&1
  fx_psql -d postgres -c "CREATE DATABASE $FX_DB" || fx_die "cannot create database $FX_DB"
  fx_psql -d "$FX_DB" -c "CREATE EXTENSION outbox" \
    -c "CREATE TABLE fault_expected (event_id uuid PRIMARY KEY, aggregate_type text NOT NULL,
          aggregate_id text NOT NULL, seq bigint NOT NULL, committed_at timestamptz NOT NULL DEFAULT now())" \
    -c "CREATE INDEX ON fault_expected (aggregate_type, aggregate_id, seq)" >/dev/null \
    || fx_die "cannot set up $FX_DB"
  "$FX_BIN/fault-verify" declare --amqp "$OUTBOX_AMQP_URL" --queue "$FX_QUEUE" --exchange "$FX_EXCHANGE" \
    || fx_die "cannot declare the queue"
}

# fx_spawn NAME CMD...: runs CMD in the background, output in $FX_DIR/NAME.log, PID recorded.
# Sets FX_PID.
fx_spawn() {
  local name=$1
  shift
  "$@" >>"$FX_DIR/$name.log" 2>&1 &
  FX_PID=$!
  echo "$FX_PID $name" >>"$FX_DIR/pids"
}

fx_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
fx_not_alive() { ! fx_alive "$1"; }

fx_slots_idle() {
  [[ $(fx_psql -d postgres -c "SELECT count(*) FROM pg_replication_slots WHERE database = '$FX_DB' AND active") == 0 ]]
}

fx_cleanup() {
  local rc=$? pid name
  trap - EXIT
  # The run's processes first (a relay must not see what the steps below do), then the
  # scenario's extra steps (restore settings, stop a standby, start the primary again), newest first.
  if [[ -f ${FX_DIR:-/nonexistent}/pids ]]; then
    while read -r pid name; do
      fx_alive "$pid" && kill -KILL "$pid" 2>/dev/null
      { wait "$pid"; } 2>/dev/null
    done <"$FX_DIR/pids"
  fi
  local i
  for ((i = ${#FX_CLEANUP_EXTRA[@]} - 1; i >= 0; i--)); do eval "${FX_CLEANUP_EXTRA[$i]}" || true; done
  if [[ -n ${FX_DB:-} ]]; then
    FX_PGPORT=$PGPORT
    # A walsender may outlive its killed relay for a moment; a slot in use cannot be dropped,
    # and DROP DATABASE refuses while the database has a slot.
    fx_psql -d postgres -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
                            WHERE database = '$FX_DB' AND active" >/dev/null 2>&1
    fx_wait_for 10 fx_slots_idle >/dev/null 2>&1
    fx_psql -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                            WHERE database = '$FX_DB' AND NOT active" >/dev/null 2>&1
    fx_psql -d postgres -c "DROP DATABASE IF EXISTS $FX_DB WITH (FORCE)" >/dev/null 2>&1
    "$RABBITMQCTL" delete_queue "$FX_QUEUE" >/dev/null 2>&1
    "$RABBITMQCTL" eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$FX_EXCHANGE\">>), false, <<\"fx\">>)." >/dev/null 2>&1
  fi
  if [[ $rc -ne 0 && -d ${FX_DIR:-} ]]; then
    fx_say "failed (exit $rc); logs kept in $FX_DIR"
    for f in "$FX_DIR"/relay*.log; do
      [[ -f $f ]] && { echo "---- tail of $f" >&2; tail -n 25 "$f" >&2; }
    done
  elif [[ -d ${FX_DIR:-} ]]; then
    rm -rf "$FX_DIR"
  fi
  exit "$rc"
}

# fx_relay NAME [extra relay args]: starts a relay on the run's slot; sets FX_PID and
# FX_HTTP_<NAME> (its /metrics port). PG_CONNINFO / AMQP_URL override where it connects,
# RELAY_SLOT the slot.
fx_relay() {
  local name=$1
  shift
  local port
  port=$(fx_free_port)
  printf -v "FX_HTTP_$name" '%s' "$port"
  fx_spawn "$name" "$FX_RELAY_BIN" \
    --pg "${PG_CONNINFO:-host=127.0.0.1 port=$PGPORT user=postgres dbname=$FX_DB}" \
    --amqp "${AMQP_URL:-$OUTBOX_AMQP_URL}" \
    --slot "${RELAY_SLOT:-$FX_SLOT}" --create-slot --plugin "${FX_PLUGIN:-outbox_decoder}" --exchange "$FX_EXCHANGE" \
    --max-in-flight "$FX_WINDOW" --http "127.0.0.1:$port" \
    --reconnect-min-ms 100 --reconnect-max-ms 1000 --status-interval-ms 1000 "$@"
}

# fx_metric NAME METRIC: a value from relay NAME's /metrics ("" when it does not answer).
fx_metric() {
  local port_var="FX_HTTP_$1"
  curl -s -m 1 "http://127.0.0.1:${!port_var}/metrics" 2>/dev/null | awk -v m="$2" '$1 == m {print $2; exit}'
}

# fx_wait_for SECONDS CMD...: polls CMD every 100 ms; false after SECONDS of wall-clock time
# (a deadline, not a number of tries: each try may itself take a while on a loaded machine).
fx_wait_for() {
  local end=$(($(fx_now_ms) + $1 * 1000))
  shift
  while (($(fx_now_ms) < end)); do "$@" && return 0; sleep 0.1; done
  "$@"
}

# fx_ms_until SECONDS CMD...: milliseconds from now until CMD succeeds (polled every 50 ms), or
# "timeout" after SECONDS.
fx_ms_until() {
  local t0 end
  t0=$(fx_now_ms)
  end=$((t0 + $1 * 1000))
  shift
  while (($(fx_now_ms) < end)); do
    if "$@"; then echo $(($(fx_now_ms) - t0)); return 0; fi
    sleep 0.05
  done
  echo timeout
}

fx_streaming() { [[ $(fx_metric "$1" outbox_relay_up) == 1 ]]; }

# fx_wait_streaming NAME: the relay is up (streaming with a broker connection).
fx_wait_streaming() {
  fx_wait_for 60 fx_streaming "$1" || fx_die "relay $1 did not start streaming (log: $FX_DIR/$1.log)"
}

# fx_load COUNT [extra fault-load args]: starts the load in the background (FX_LOAD_PID).
fx_load() {
  local count=$1
  shift
  fx_spawn load "$FX_BIN/fault-load" --pg "${LOAD_CONNINFO:-host=127.0.0.1 port=$PGPORT user=postgres dbname=$FX_DB}" \
    --storage "$FX_STORAGE" --count "$count" --rate "$FX_RATE" --aggregates 20 --rollback-pct 5 \
    --progress-file "$FX_DIR/progress" "$@"
  FX_LOAD_PID=$FX_PID
}

fx_progress() { cat "$FX_DIR/progress" 2>/dev/null || echo 0; }
fx_progress_at_least() { [[ $(fx_progress) -ge $1 ]]; }

# fx_wait_progress N: waits until the load committed N events (the load's own count).
fx_wait_progress() {
  fx_wait_for 120 fx_progress_at_least "$1" || fx_die "the load did not reach $1 events (at $(fx_progress))"
}

# fx_wait_load: waits for the load to finish (bounded), prints its summary.
fx_wait_load() {
  fx_wait_for 300 fx_not_alive "$FX_LOAD_PID"
  fx_alive "$FX_LOAD_PID" && { fx_say "the load did not finish in 300 s; stopping it"; kill -TERM "$FX_LOAD_PID"; }
  wait "$FX_LOAD_PID" 2>/dev/null
  tail -n 1 "$FX_DIR/load.log" >&2
}

# fx_check [fault-verify args]: consumes and compares with fault_expected of the primary
# (VERIFY_CONNINFO overrides it), prints the scenario line, returns fault-verify's status.
fx_check() {
  "$FX_BIN/fault-verify" check --amqp "$OUTBOX_AMQP_URL" --queue "$FX_QUEUE" --exchange "$FX_EXCHANGE" \
    --pg "${VERIFY_CONNINFO:-host=127.0.0.1 port=$PGPORT user=postgres dbname=$FX_DB}" \
    --scenario "$FX_NAME" --storage "$FX_STORAGE" --delete-queue --give-up-idle-ms "$(fx_events 20000 30000)" \
    "$@" 2>>"$FX_DIR/verify.log" | tee -a "$FX_DIR/line"
  local rc=${PIPESTATUS[0]}
  [[ $rc -ne 0 ]] && sed 's/^/  /' "$FX_DIR/verify.log" >&2
  return "$rc"
}

# fx_fail MESSAGE: a scenario's own assertion failed; the run still ends with its line.
FX_FAILED=0
fx_fail() { fx_say "FAILED: $*"; FX_FAILED=1; }

# fx_storages: the storage modes a scenario runs in (FX_STORAGES overrides; short: table only,
# to keep make test short).
fx_storages() {
  if [[ -n ${FX_STORAGES:-} ]]; then echo "$FX_STORAGES"
  elif [[ $FX_SIZE == short ]]; then echo "${1:-table}"
  else echo "table wal"; fi
}

# fx_log_time FILE PATTERN: the first line of FILE matching PATTERN as epoch milliseconds
# (the relay's text log lines start with "YYYY-MM-DD HH:MM:SS.mmm"); "" if none.
fx_log_time() {
  local line
  line=$(grep -m 1 -E "$2" "$1" 2>/dev/null) || return 0
  local ts
  ts=$(sed -nE 's/^([0-9-]+ [0-9:]+\.[0-9]+) .*/\1/p' <<<"$line")
  [[ -n $ts ]] && date -d "$ts" +%s%3N
}
