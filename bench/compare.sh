#!/usr/bin/env bash
# bench/compare.sh: ferry's broker next to NATS (core and JetStream) and RabbitMQ on this
# machine, with the same workloads driven by the same client (`ferry bench broker <url>`),
# and the ratios ferry ÷ each.
#
# It installs nats-server, rabbitmq-server and jq from Debian if they are missing, starts
# every server itself on loopback with free ports and its state in a temporary directory,
# and stops everything it started (by PID) when it exits, however it exits.
#
#   nats-server   JetStream with file storage, default settings (acks once written to the
#                 OS; fsync every 2 minutes), and a second instance with
#                 `sync_interval: always` (fsync per message) when the server supports it
#   RabbitMQ      durable classic queues, persistent messages, publisher confirms
#   ferry serve   release build, a fresh one (new data directory) for every run; queues and
#                 topics created with the durability of the run; driven over its gRPC API
#                 (FERRY_API=grpc, the default: Publish, Consume streams with credits) or its
#                 REST API (FERRY_API=rest: JSON batches, long-poll receive)
#
# Workloads (64 B and 1 KiB messages; systems interleaved, ROUNDS times, medians):
#   durable publish     PRODUCERS producers, no consumers: confirmed publishes per second
#   durable queue       PRODUCERS producers, CONSUMERS competing consumers with acks, at
#                       full speed: end-to-end rate
#   durable latency     the same at a fixed RATE (open loop, below every system's capacity):
#                       end-to-end latency percentiles
#   fan-out             1 producer, FANOUT subscribers each getting every message, nothing
#                       durable, no consumer acks (at most once, as NATS core): deliveries
#                       per second
#
# RESULTS=DIR keeps every run's JSON report and the table there.
#
# Settings (environment): ROUNDS=3 DURATION=3 WARMUP=1 PRODUCERS=4 CONSUMERS=2 FANOUT=4
# BATCH=256 RATE=10000 SIZES=64,1KiB FERRY_API=grpc WORKLOADS=publish,queue,latency,fanout; BENCH_DIR (where the servers keep their data; it
# should be on the disk you care about, not tmpfs, with 2-3 GB free: a fast durable run
# writes over a gigabyte) [default: $TMPDIR or /tmp]; FERRY (a ferry binary) [default:
# built here with cargo build --release -p ferry-cli].

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-1}
PRODUCERS=${PRODUCERS:-4}
CONSUMERS=${CONSUMERS:-2}
FANOUT=${FANOUT:-4}
BATCH=${BATCH:-256}
RATE=${RATE:-10000}
SIZES=${SIZES:-64,1KiB}
FERRY_API=${FERRY_API:-grpc}
WORKLOADS=${WORKLOADS:-publish,queue,latency,fanout}
[[ "$FERRY_API" == grpc || "$FERRY_API" == rest ]] || { echo "compare.sh: FERRY_API is grpc or rest" >&2; exit 2; }
for w in ${WORKLOADS//,/ }; do
    [[ "$w" =~ ^(publish|queue|latency|fanout)$ ]] ||
        { echo "compare.sh: WORKLOADS lists publish, queue, latency, fanout (not $w)" >&2; exit 2; }
done
wanted() { [[ ",$WORKLOADS," == *",$1,"* ]]; }
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}

say() { printf 'compare.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------
# Everything this script starts, and how it is stopped.

TMP=""
PIDS=()           # servers to stop with SIGTERM (then SIGKILL), by PID
RABBIT_NODE=""    # a RabbitMQ node to stop with rabbitmqctl first (RABBITMQCTL)
POLICY_RC=""      # a policy-rc.d this script put in place for the install
SUDO=()           # how to run apt-get (sudo -n when not root)

stop_pid() { # pid name
    local pid=$1 name=$2 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    say "$name (pid $pid) did not stop within 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Stops a server this script started, and forgets its PID (which the system may reuse).
stop_server() { # pid
    local pid=$1 keep=() entry name=server
    for entry in "${PIDS[@]}"; do
        if [[ "${entry%%:*}" == "$pid" ]]; then name=${entry#*:}; else keep+=("$entry"); fi
    done
    stop_pid "$pid" "$name"
    PIDS=("${keep[@]}")
}

cleanup() {
    local status=$? entry
    trap - EXIT INT TERM
    if [[ -n "$POLICY_RC" ]]; then "${SUDO[@]}" rm -f "$POLICY_RC" || true; fi
    if [[ -n "$RABBIT_NODE" ]]; then
        timeout 30 "${RABBITMQCTL[@]}" stop >/dev/null 2>&1 || true
        # The Erlang VM itself, should it outlive its start script.
        if [[ -s "$RABBIT_DIR/rabbitmq.pid" ]]; then
            stop_pid "$(tr -dc 0-9 <"$RABBIT_DIR/rabbitmq.pid")" "RabbitMQ's Erlang VM"
        fi
    fi
    # Newest first: RabbitMQ before the epmd it registered with.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        entry=${PIDS[i]}
        stop_pid "${entry%%:*}" "${entry#*:}"
    done
    if [[ -n "$TMP" && -d "$TMP" ]]; then
        if [[ $status -ne 0 ]]; then
            say "logs of the servers (kept): $TMP/logs"
            find "$TMP" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} + 2>/dev/null || true
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# Installing what is missing.

need=()
command -v nats-server >/dev/null || need+=(nats-server)
[[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || need+=(rabbitmq-server)
command -v jq >/dev/null || need+=(jq)
if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root"
        SUDO=(sudo -n)
    fi
    say "installing ${need[*]} (apt-get)"
    # Debian starts a newly installed service; this script starts its own private servers
    # and must leave nothing running, so keep the package's service from starting.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        POLICY_RC=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY_RC" >/dev/null
        "${SUDO[@]}" chmod +x "$POLICY_RC"
    fi
    timeout 600 "${SUDO[@]}" apt-get update -q >/dev/null
    timeout 900 "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    if [[ -n "$POLICY_RC" ]]; then "${SUDO[@]}" rm -f "$POLICY_RC"; POLICY_RC=""; fi
fi

# ---------------------------------------------------------------------------------------
# The ferry binary.

if [[ -z "${FERRY:-}" ]]; then
    say "building ferry (cargo build --release -p ferry-cli)"
    (cd "$ROOT" && cargo build --release -q -p ferry-cli)
    FERRY="${CARGO_TARGET_DIR:-$ROOT/target}/release/ferry"
fi
[[ -x "$FERRY" ]] || die "no ferry binary at $FERRY"

mkdir -p "$BENCH_DIR"
TMP=$(mktemp -d "$BENCH_DIR/ferry-compare.XXXXXX")
mkdir -p "$TMP/logs" "$TMP/results"
if [[ $(stat -f -c %T "$TMP" 2>/dev/null || true) == tmpfs ]]; then
    say "warning: $BENCH_DIR is tmpfs, where fsync costs nothing; set BENCH_DIR to a directory on a disk"
fi
free_kb=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
if [[ -n "$free_kb" && "$free_kb" -lt 2500000 ]]; then
    say "warning: only $((free_kb / 1024)) MB free in $BENCH_DIR; a fast durable 1 KiB run writes over a gigabyte"
fi

# Sets PORT to a TCP port on loopback that nothing listens on now, below the kernel's
# ephemeral range (a port in it may be taken by any outgoing connection between this check
# and the server's bind). It sets a variable rather than printing, because a command
# substitution's subshell would forget the ports used.
USED_PORTS=" "
EPHEMERAL_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
((EPHEMERAL_LOW > 12000)) || EPHEMERAL_LOW=32768
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
        [[ "$USED_PORTS" == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            USED_PORTS+="$p "
            PORT=$p
            return 0
        fi
    done
    die "no free port found"
}

# Waits (at most $2 seconds) until $1 accepts TCP connections on loopback.
wait_port() {
    local port=$1 limit=$2 i
    for ((i = 0; i < limit * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------------------
# nats-server: JetStream file storage, default settings; and with sync_interval: always.

start_nats() { # name extra-jetstream-line; sets PORT (not in a subshell: PIDS must keep the PID)
    local name=$1 extra=$2 port conf
    free_port
    port=$PORT
    conf="$TMP/$name.conf"
    mkdir -p "$TMP/$name"
    cat >"$conf" <<EOF
host: 127.0.0.1
port: $port
jetstream {
  store_dir: "$TMP/$name"
  $extra
}
EOF
    nats-server -c "$conf" >"$TMP/logs/$name.log" 2>&1 &
    PIDS+=("$!:$name")
    wait_port "$port" 20 || die "$name did not start; see $TMP/logs/$name.log"
}

NATS_VERSION=$(nats-server --version 2>/dev/null | tr -d '\n' | sed 's/^nats-server: //')
say "starting nats-server ($NATS_VERSION), JetStream file storage, default sync"
start_nats nats-default ""
NATS_PORT=$PORT
NATS_SYNC_PORT=""
cat >"$TMP/sync-test.conf" <<EOF
port: 4222
jetstream { store_dir: "$TMP/sync-test"
  sync_interval: always
}
EOF
if timeout 10 nats-server -c "$TMP/sync-test.conf" -t >/dev/null 2>&1; then
    say "starting nats-server, JetStream file storage, sync_interval: always"
    start_nats nats-sync "sync_interval: always"
    NATS_SYNC_PORT=$PORT
    NATS_SYNC_NOTE="JetStream with sync_interval: always (fsync per message)"
else
    NATS_SYNC_NOTE="skipped: $NATS_VERSION does not know sync_interval (added in nats-server 2.10), so JetStream cannot be told to fsync every message here"
    say "JetStream sync_interval: always $NATS_SYNC_NOTE"
fi

# ---------------------------------------------------------------------------------------
# RabbitMQ without the system service: its own node name, ports, epmd and state.

RABBIT_DIR="$TMP/rabbitmq"
mkdir -p "$RABBIT_DIR/home" "$RABBIT_DIR/mnesia"
free_port; AMQP_PORT=$PORT
free_port; DIST_PORT=$PORT
free_port; CTL_PORT=$PORT
free_port; EPMD_PORT=$PORT
RABBIT_NAME="ferry-compare-$$@localhost"
printf '[].\n' >"$RABBIT_DIR/enabled_plugins"
: >"$RABBIT_DIR/rabbitmq-env.conf"
cat >"$RABBIT_DIR/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
loopback_users.guest = true
EOF

RABBIT_ENV=(
    HOME="$RABBIT_DIR/home"
    RABBITMQ_NODENAME="$RABBIT_NAME"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$AMQP_PORT"
    RABBITMQ_DIST_PORT="$DIST_PORT"
    RABBITMQ_CTL_DIST_PORT_MIN="$CTL_PORT"
    RABBITMQ_CTL_DIST_PORT_MAX="$CTL_PORT"
    ERL_EPMD_PORT="$EPMD_PORT"
    ERL_EPMD_ADDRESS=127.0.0.1
    RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/rabbitmq-env.conf"
    RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$RABBIT_DIR/advanced.config"
    RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins"
    RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia"
    RABBITMQ_LOG_BASE="$TMP/logs/rabbitmq"
    RABBITMQ_PID_FILE="$RABBIT_DIR/rabbitmq.pid"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
)
RABBITMQCTL=(env "${RABBIT_ENV[@]}" /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RABBIT_NAME")

RABBIT_VERSION=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo unknown)
say "starting RabbitMQ $RABBIT_VERSION (node $RABBIT_NAME, AMQP port $AMQP_PORT)"
# Our own epmd, in the foreground, so that it is ours to stop.
ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$EPMD_PORT" >"$TMP/logs/epmd.log" 2>&1 &
PIDS+=("$!:epmd")
wait_port "$EPMD_PORT" 10 || die "epmd did not start; see $TMP/logs/epmd.log"
env "${RABBIT_ENV[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server >"$TMP/logs/rabbitmq-server.log" 2>&1 &
PIDS+=("$!:rabbitmq-server")
RABBIT_NODE=$RABBIT_NAME
# await_startup gives up at once while the node has not registered with epmd yet: retry it,
# 90 s in all.
started=""
for ((i = 0; i < 90; i++)); do
    if timeout 30 "${RABBITMQCTL[@]}" await_startup --timeout 20 >"$TMP/logs/rabbitmq-await.log" 2>&1; then
        started=yes
        break
    fi
    kill -0 "${PIDS[-1]%%:*}" 2>/dev/null || die "RabbitMQ exited; see $TMP/logs"
    sleep 1
done
[[ -n "$started" ]] || die "RabbitMQ did not start within 90 s; see $TMP/logs"
wait_port "$AMQP_PORT" 10 || die "RabbitMQ does not listen on $AMQP_PORT; see $TMP/logs"

# ---------------------------------------------------------------------------------------
# ferry serve: a fresh server and data directory for every run, so that no run pays for
# the log another one left behind (a deleted queue's records stay on disk until the
# broker's next snapshot, after 50,000 commands).

FERRY_PASSWORD="compare-$RANDOM$RANDOM$RANDOM"
FERRY_PID=""
FERRY_URL=""
FERRY_RUNS=0
start_ferry() {
    local data
    FERRY_RUNS=$((FERRY_RUNS + 1))
    data="$TMP/ferry-$FERRY_RUNS"
    mkdir -p "$data"
    local http grpc
    free_port; http=$PORT
    free_port; grpc=$PORT
    env -u FERRY_HTTP -u FERRY_DATA -u FERRY_DURABILITY -u FERRY_GRPC FERRY_ADMIN_PASSWORD="$FERRY_PASSWORD" \
        "$FERRY" serve --http "127.0.0.1:$http" --grpc "127.0.0.1:$grpc" --data "$data" \
        >"$TMP/logs/ferry-$FERRY_RUNS.log" 2>&1 &
    FERRY_PID=$!
    PIDS+=("$FERRY_PID:ferry serve")
    wait_port "$http" 30 || die "ferry serve did not start; see $TMP/logs/ferry-$FERRY_RUNS.log"
    wait_port "$grpc" 30 || die "ferry serve did not serve gRPC; see $TMP/logs/ferry-$FERRY_RUNS.log"
    if [[ "$FERRY_API" == grpc ]]; then
        FERRY_URL="grpc://admin:$FERRY_PASSWORD@127.0.0.1:$grpc"
    else
        FERRY_URL="http://admin:$FERRY_PASSWORD@127.0.0.1:$http"
    fi
}
stop_ferry() {
    stop_server "$FERRY_PID"
    rm -rf "$TMP/ferry-$FERRY_RUNS"
}
say "ferry: $("$FERRY" --version), over its $FERRY_API API"

NATS_URL="nats://127.0.0.1:$NATS_PORT"
JS_URL="jetstream://127.0.0.1:$NATS_PORT"
JS_SYNC_URL=${NATS_SYNC_PORT:+jetstream://127.0.0.1:$NATS_SYNC_PORT}
AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f"

# ---------------------------------------------------------------------------------------
# The runs.

# Bound every run: four times its length plus three minutes for connecting and draining.
RUN_LIMIT=$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { print int(4 * (d + w) + 180) }')
COMMON=(--duration "$DURATION" --warmup "$WARMUP" --batch "$BATCH" --json)

run() { # workload system url args...; one message size ($size) per run
    local workload=$1 system=$2 url=$3 name
    shift 3
    name="$workload.$system.r$round-s$size"
    say "round $round/$ROUNDS: $workload $size on $system"
    if ! timeout "$RUN_LIMIT" "$FERRY" bench broker "$url" "${COMMON[@]}" --sizes "$size" "$@" \
        >"$TMP/results/$name.json" 2>"$TMP/logs/bench.$name.log"; then
        say "  failed: $(tail -n 3 "$TMP/logs/bench.$name.log" | tr '\n' ' ')"
    fi
}

run_ferry() { # workload args...
    start_ferry
    run "$1" ferry "$FERRY_URL" "${@:2}"
    stop_ferry
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
for ((round = 1; round <= ROUNDS; round++)); do
  for size in "${SIZE_LIST[@]}"; do
    if wanted publish; then
      # Durable publish: confirmed publishes per second, no consumers.
      args=(--pattern queue --producers "$PRODUCERS" --consumers 0 --durability fsync)
      run_ferry publish "${args[@]}"
      run publish jetstream "$JS_URL" "${args[@]}"
      if [[ -n "$JS_SYNC_URL" ]]; then run publish jetstream-sync "$JS_SYNC_URL" "${args[@]}"; fi
      run publish rabbitmq "$AMQP_URL" "${args[@]}"
    fi
    # Durable queue: producers and competing consumers with acks, end to end at full speed.
    args=(--pattern queue --producers "$PRODUCERS" --consumers "$CONSUMERS" --durability fsync)
    if wanted queue; then
      run_ferry queue "${args[@]}"
      run queue jetstream "$JS_URL" "${args[@]}"
      if [[ -n "$JS_SYNC_URL" ]]; then run queue jetstream-sync "$JS_SYNC_URL" "${args[@]}"; fi
      run queue rabbitmq "$AMQP_URL" "${args[@]}"
    fi
    if wanted latency; then
      # Durable queue at a fixed rate: latency without a backlog.
      args+=(--rate "$RATE")
      run_ferry latency "${args[@]}"
      run latency jetstream "$JS_URL" "${args[@]}"
      if [[ -n "$JS_SYNC_URL" ]]; then run latency jetstream-sync "$JS_SYNC_URL" "${args[@]}"; fi
      run latency rabbitmq "$AMQP_URL" "${args[@]}"
    fi
    if wanted fanout; then
      # Fan-out, nothing durable: every subscriber gets every message.
      args=(--pattern fanout --producers 1 --consumers "$FANOUT" --durability none --auto-ack)
      run_ferry fanout "${args[@]}"
      run fanout nats "$NATS_URL" "${args[@]}"
      run fanout jetstream "$JS_URL" "${args[@]}"
      run fanout rabbitmq "$AMQP_URL" "${args[@]}"
    fi
  done
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------
# The table: medians over the rounds, ferry ÷ each reference.

TABLE="$TMP/table.txt"
jq -s -r \
    --arg nats "$NATS_VERSION" --arg rabbit "$RABBIT_VERSION" --arg sync "$NATS_SYNC_NOTE" \
    --arg rounds "$ROUNDS" --arg duration "$DURATION" --arg producers "$PRODUCERS" \
    --arg consumers "$CONSUMERS" --arg fanout "$FANOUT" --arg batch "$BATCH" --arg rate "$RATE" \
    --arg api "$FERRY_API" \
    --arg machine "$(nproc) cores; load average $LOAD_START before, $LOAD_END after" '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
                     else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def rate: if . == null then "-" elif . >= 1e6 then "\(. / 1e4 | round / 100)M"
            elif . >= 1e3 then "\(. / 100 | round / 10)k" else "\(. | round)" end;
  def num: if . == null then "-" else "\(. | round)" end;
  def ratio: if . == null then "-" else "\(. * 100 | round / 100)×" end;
  def pad(n): tostring | if length >= n then . else . + " " * (n - length) end;
  def lpad(n): tostring | if length >= n then . else " " * (n - length) + . end;
  def sizelabel: if . >= 1024 then "\(. / 1024) KiB" else "\(.) B" end;

  # One entry per run row: workload, system, size and the metrics.
  [ .[] | select(type == "object" and .rows != null) | . as $run
    | .rows[] | select(.errors == null)
    | { workload: $run.workload, system: $run.system, round: $run.round, size: .size,
        publish: .publish_per_sec, e2e: .end_to_end_per_sec,
        p50: .latency_us.p50, p99: .latency_us.p99, lost: .lost } ] as $all
  | def value(w; s; size; m): [ $all[] | select(.workload == w and .system == s and .size == size) | .[m]
                                | select(. != null) ] | median;
  def sizes: [ $all[].size ] | unique;
  def rounds: [ $all[].round ] | unique;
  # ferry ÷ reference in each round where both were measured.
  def per_round(w; ref; size; m): [ rounds[] as $k
    | [ $all[] | select(.workload == w and .system == "ferry" and .size == size and .round == $k) | .[m] ][0] as $f
    | [ $all[] | select(.workload == w and .system == ref and .size == size and .round == $k) | .[m] ][0] as $r
    | select($f != null and $r != null and $r > 0) | $f / $r ];
  # ferry, the reference, and ferry ÷ reference (or reference ÷ ferry for latency, so that
  # above 1 always means ferry is better).
  def line(title; w; ref; refname; m; lower):
    sizes[] as $size
    | value(w; "ferry"; $size; m) as $f | value(w; ref; $size; m) as $r
    | select($r != null or ref != "jetstream-sync")
    | select($f != null or $r != null)
    | [ title, ($size | sizelabel), ($f | if m == "p50" or m == "p99" then num else rate end), refname,
        ($r | if m == "p50" or m == "p99" then num else rate end),
        (if $f == null or $r == null or $f == 0 or $r == 0 then null
         elif lower then $r / $f else $f / $r end | ratio) ];
  [ line("durable publish (msg/s)"; "publish"; "jetstream"; "JetStream file, default sync"; "publish"; false),
    line("durable publish (msg/s)"; "publish"; "jetstream-sync"; "JetStream file, sync always"; "publish"; false),
    line("durable publish (msg/s)"; "publish"; "rabbitmq"; "RabbitMQ durable + confirms"; "publish"; false),
    line("durable queue end-to-end (msg/s)"; "queue"; "jetstream"; "JetStream file, default sync"; "e2e"; false),
    line("durable queue end-to-end (msg/s)"; "queue"; "jetstream-sync"; "JetStream file, sync always"; "e2e"; false),
    line("durable queue end-to-end (msg/s)"; "queue"; "rabbitmq"; "RabbitMQ durable + confirms"; "e2e"; false),
    line("durable queue p50 latency (µs)"; "latency"; "jetstream"; "JetStream file, default sync"; "p50"; true),
    line("durable queue p50 latency (µs)"; "latency"; "jetstream-sync"; "JetStream file, sync always"; "p50"; true),
    line("durable queue p50 latency (µs)"; "latency"; "rabbitmq"; "RabbitMQ durable + confirms"; "p50"; true),
    line("durable queue p99 latency (µs)"; "latency"; "jetstream"; "JetStream file, default sync"; "p99"; true),
    line("durable queue p99 latency (µs)"; "latency"; "jetstream-sync"; "JetStream file, sync always"; "p99"; true),
    line("durable queue p99 latency (µs)"; "latency"; "rabbitmq"; "RabbitMQ durable + confirms"; "p99"; true),
    line("fan-out deliveries (msg/s)"; "fanout"; "nats"; "NATS core"; "e2e"; false),
    line("fan-out deliveries (msg/s)"; "fanout"; "jetstream"; "JetStream memory"; "e2e"; false),
    line("fan-out deliveries (msg/s)"; "fanout"; "rabbitmq"; "RabbitMQ transient"; "e2e"; false)
  ] as $lines
  | ([["workload", "size", "ferry", "reference", "value", "ratio"]] + $lines) as $table
  | [ range(0; 6) as $c | [ $table[][$c] | length ] | max ] as $w
  | "ferry ÷ reference, median of \($rounds) round(s) of \($duration) s; ratio > 1: ferry is better",
    "(for latency rows the ratio is reference ÷ ferry). nats-server \($nats), RabbitMQ \($rabbit) (Debian).",
    "durable publish: \($producers) producers, batch \($batch) in flight each, no consumers;",
    "durable queue: \($producers) producers, \($consumers) competing consumers with acks, at full speed;",
    "durable queue latency: the same at a fixed \($rate) msg/s (open loop), from intended send to receipt;",
    "fan-out: 1 producer, \($fanout) subscribers, nothing durable, no consumer acks (ferry: topic with",
    "durability none, auto_ack receive; JetStream: memory stream, ack policy none; RabbitMQ: transient",
    "fanout exchange and queues, no-ack consumers; NATS core: plain subscriptions).",
    "ferry over its \($api) API: durability fsync (publish answered after fdatasync); JetStream default: acked once written,",
    "fsync every 2 min; RabbitMQ: durable classic queue, persistent messages, confirms.",
    "JetStream sync always: \($sync)",
    "machine: \($machine) (other work distorts the figures; compare ratios within one run)",
    "",
    ($table[] | [ range(0; 6) as $c | if $c == 0 or $c == 3 then .[$c] | pad($w[$c]) else .[$c] | lpad($w[$c]) end ]
     | join("  ")),
    "",
    "goals:",
    ( [ [ "ferry fsync durable publish 64 B ≥ 1× JetStream default",
          value("publish"; "ferry"; 64; "publish"), value("publish"; "jetstream"; 64; "publish"), 1,
          per_round("publish"; "jetstream"; 64; "publish") ],
        [ "ferry fsync durable publish 64 B ≥ 4× RabbitMQ durable",
          value("publish"; "ferry"; 64; "publish"), value("publish"; "rabbitmq"; 64; "publish"), 4,
          per_round("publish"; "rabbitmq"; 64; "publish") ],
        [ "ferry non-durable fan-out 64 B ≥ 0.67× NATS core",
          value("fanout"; "ferry"; 64; "e2e"), value("fanout"; "nats"; 64; "e2e"), 0.67,
          per_round("fanout"; "nats"; 64; "e2e") ] ][]
      | if .[1] == null or .[2] == null or .[2] == 0 then "  \(.[0] | pad(56)) not measured"
        else (.[1] / .[2]) as $r
        | "  \(.[0] | pad(56)) \($r | ratio | lpad(7))  \(if $r >= .[3] then "met   " else "MISSED" end)"
          + "  (rounds: \(.[4] | map(ratio) | join(", ")))" end ),
    ( [ $all[] | select((.lost // 0) > 0) ] | if length > 0 then "",
        "messages lost (received < expected): " + (map("\(.workload) \(.system) \(.size | sizelabel): \(.lost)") | join("; "))
      else empty end )
' < <(for f in "$TMP"/results/*.json; do
    [[ -s "$f" ]] || continue
    b=$(basename "$f" .json) # workload.system.rROUND-sSIZE
    s=${b#*.}
    r=${b##*.r}
    jq -c --arg w "${b%%.*}" --arg s "${s%%.*}" --arg r "${r%%-s*}" \
        '. + {workload: $w, system: $s, round: ($r | tonumber)}' "$f" 2>/dev/null || true
done) >"$TABLE"
cat "$TABLE"
if [[ -n "${RESULTS:-}" ]]; then
    mkdir -p "$RESULTS"
    cp "$TMP"/results/*.json "$TABLE" "$RESULTS"/
    say "results kept in $RESULTS"
fi
