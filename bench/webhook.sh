#!/usr/bin/env bash
# Receiving messages (webhook -> Watch): deliveries per second and delivery latency, with the
# message log in memory and in Redis. Starts on loopback what it needs (the gateway with its
# webhook receiver; for Redis a redis-server on a free port and a second replica), drives
# webhook-loadgen, prints a table and writes the section "Receiving messages (webhook -> Watch)"
# of docs/benchmarks.md (between its markers; the rest of the file is left alone).
#
# Usage: bench/webhook.sh [--quick] [--build-dir DIR] [--no-build] [--no-doc] [--profile]
#   --quick        shorter windows (about 3 minutes instead of about 6)
#   --build-dir D  where twilio-gateway and webhook-loadgen are built (default build)
#   --no-build     use the binaries as they are in the build dir
#   --no-doc       print the table only
#   --profile      also perf-record the Redis replica at the closed-loop maximum (figures come from
#                  the runs without perf)
# Environment: WEBHOOK_RATES ("500 1000"), WEBHOOK_CONCURRENCY ("1 32": closed-loop points; the
# last is the maximum, 1 shows one delivery's round trip), WEBHOOK_AB_THREADS ("4 16": A/B pairs
# of --webhook-threads at the maximum in Redis mode; "" skips them), WEBHOOK_AB_PAIRS (3).
# Raw results: <build dir>/webhook-results. bench/run.sh calls this at its end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
invocation="bench/webhook.sh${*:+ $*}"

quick=0
build_dir=build
build=1
write_doc=1
profile=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --build-dir) build_dir="$2"; shift ;;
    --no-build) build=0 ;;
    --no-doc) write_doc=0 ;;
    --profile) profile=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench/webhook.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ $quick -eq 1 ]]; then warmup=1s; window=4s; else warmup=2s; window=10s; fi
read -r -a rates <<<"${WEBHOOK_RATES:-500 1000}"
read -r -a concurrencies <<<"${WEBHOOK_CONCURRENCY:-1 32}"
concurrency=${concurrencies[-1]}
read -r -a ab_threads <<<"${WEBHOOK_AB_THREADS-4 16}"
ab_pairs=${WEBHOOK_AB_PAIRS:-3}

if [[ $build -eq 1 ]]; then
  if [[ ! -f "$build_dir/build.ninja" ]]; then
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  ninja -C "$build_dir" twilio-gateway webhook-loadgen >&2
fi
gateway_bin=$repo/$build_dir/service/twilio-gateway
loadgen_bin=$repo/$build_dir/bench/webhook-loadgen
redis_bin=$(command -v redis-server || echo /usr/bin/redis-server)
[[ -x "$redis_bin" ]] || { echo "bench/webhook.sh: needs redis-server (apt-get install redis-server)" >&2; exit 1; }

results=$repo/$build_dir/webhook-results
rm -rf "$results"
mkdir -p "$results"
: >"$results/commands.txt"

source bench/processes.sh

# Test credentials of the benchmark only; not secrets. Nothing here calls Twilio: the upstream
# URL is a closed port.
account_sid=ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
auth_token=webhook-bench-auth-token

# Starts a replica; sets gateway_pid, grpc_port, webhook_url.
start_gateway() {  # name, extra flags...
  local name=$1
  shift
  grpc_port=$(free_port)
  local webhook_port
  webhook_port=$(free_port)
  webhook_url=http://127.0.0.1:$webhook_port/twilio/messages
  local flags=(--listen "127.0.0.1:$grpc_port" --webhook-listen "127.0.0.1:$webhook_port"
    --public-webhook-url "$webhook_url" "$@")
  env -u TWILIO_API_KEY -u TWILIO_API_SECRET -u TWILIO_EDGE -u TWILIO_REGION \
    TWILIO_BASE_URL=http://127.0.0.1:9 TWILIO_ACCOUNT_SID=$account_sid \
    TWILIO_AUTH_TOKEN=$auth_token "$gateway_bin" "${flags[@]}" >/dev/null \
    2>"$results/gateway-$name.log" &
  gateway_pid=$!
  pids+=("$gateway_pid")
  echo "TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... twilio-gateway ${flags[*]}" \
    >>"$results/commands.txt"
  wait_for_port "$grpc_port" "gateway $name"
  wait_for_port "$webhook_port" "gateway $name's receiver"
}
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

# Runs webhook-loadgen with --json; the result goes to $results/NAME.json.
loadgen() {  # name, args...
  local name=$1; shift
  echo "webhook-loadgen $* --json --label $name" >>"$results/commands.txt"
  echo "== $name" >&2
  local status=0
  TWILIO_AUTH_TOKEN=$auth_token TWILIO_ACCOUNT_SID=$account_sid \
    "$loadgen_bin" "$@" --json --label "$name" >"$results/$name.json" 2>"$results/$name.log" ||
    status=$?
  sed -n '/^deliveries/,$p' "$results/$name.log" | sed 's/^/   /' >&2
  # 3: some deliveries never completed; 4: a watcher lost or repeated a message. Both are in the
  # JSON and the table: go on.
  if [[ $status -ne 0 && $status -ne 3 && $status -ne 4 ]]; then
    echo "bench/webhook.sh: webhook-loadgen failed ($status); see $results/$name.log" >&2
    exit 1
  fi
}

# Closed loop, then the fixed rates, against what start_gateway left running.
scenarios() {  # mode, watch args and monitor args...
  local mode=$1; shift
  for c in "${concurrencies[@]}"; do
    loadgen "$mode-closed-$c" --url "$target_url" --concurrency "$c" --warmup "$warmup" \
      --duration "$window" --quiet "$@"
  done
  for rate in "${rates[@]}"; do
    loadgen "$mode-rate-$rate" --url "$target_url" --rate "$rate" --warmup "$warmup" \
      --duration "$window" --quiet "$@"
  done
}

/usr/bin/python3 - "$results/machine.json" <<'PY'
import json, os, subprocess, sys
def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
json.dump({"nproc": os.cpu_count(), "cpu": cpu, "kernel": os.uname().release,
           "loadavg_start": open("/proc/loadavg").read().split()[:3],
           "date": run("date", "-u", "+%Y-%m-%d %H:%M UTC"),
           "redis": run("redis-server", "--version"),
           "git": run("git", "rev-parse", "--short", "HEAD") + (" (modified)" if run("git", "status", "--porcelain", "--untracked-files=no") else "")},
          open(sys.argv[1], "w"), indent=1)
PY

# --- memory: one replica, the message log in its memory ---------------------------------------
start_gateway memory --idempotency-store memory
target_url=$webhook_url
scenarios memory --watch "127.0.0.1:$grpc_port" --monitor "gateway=$gateway_pid"
stop_all

# --- redis: two replicas sharing a Redis Stream; deliveries to A, a Watch on A and on B --------
start_redis() {
  redis_port=$(free_port)
  "$redis_bin" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    >"$results/redis.log" 2>&1 &
  redis_pid=$!
  pids+=("$redis_pid")
  echo "redis-server --port $redis_port --bind 127.0.0.1 --save '' --appendonly no" \
    >>"$results/commands.txt"
  wait_for_port "$redis_port" redis-server
}
start_redis_pair() {  # extra flags for replica A...
  start_redis
  start_gateway redis-a --idempotency-store redis --redis-address "127.0.0.1:$redis_port" "$@"
  a_pid=$gateway_pid a_grpc=$grpc_port target_url=$webhook_url
  start_gateway redis-b --idempotency-store redis --redis-address "127.0.0.1:$redis_port"
  b_pid=$gateway_pid b_grpc=$grpc_port
}
start_redis_pair
scenarios redis --watch "127.0.0.1:$a_grpc" --watch "127.0.0.1:$b_grpc" \
  --monitor "gateway=$a_pid" --monitor "replica-b=$b_pid" --monitor "redis=$redis_pid"

if [[ $profile -eq 1 ]] && command -v perf >/dev/null; then
  # Self time by library and by symbol (kernel included: thread hand-offs show there), and
  # the context switches per delivery, while the load generator holds the maximum for 6 s.
  echo "== perf: replica A at $concurrency in flight" >&2
  perf record -F 499 -g -o "$results/perf-redis.data" -p "$a_pid" -- sleep 6 \
    >/dev/null 2>"$results/perf-redis.log" &
  perf_pid=$!
  perf stat -x, -e task-clock,context-switches,cpu-migrations -p "$a_pid" -- sleep 6 \
    2>"$results/perf-stat-redis.csv" >/dev/null &
  stat_pid=$!
  TWILIO_AUTH_TOKEN=$auth_token TWILIO_ACCOUNT_SID=$account_sid "$loadgen_bin" \
    --url "$target_url" --concurrency "$concurrency" --warmup 0s --duration 6s --quiet --json \
    >"$results/perf-load.json" 2>/dev/null || true
  wait "$perf_pid" "$stat_pid" || true
  for sort in dso symbol; do
    echo "self time by $sort:"
    perf report -i "$results/perf-redis.data" --no-children --sort "$sort" --stdio -g none \
      2>/dev/null | grep '%' | sed -e 's/ *$//' -e 's/  */ /g' -e 's/^ //' -e 's/ - -$//' |
      cut -c1-100 | head -12
  done >"$results/perf-redis.txt" || true
  echo "perf record -F 499 -g -p <replica A> -- sleep 6 & perf stat -e task-clock,context-switches,cpu-migrations -p <replica A> -- sleep 6 & webhook-loadgen --concurrency $concurrency --duration 6s" \
    >>"$results/commands.txt"
fi
stop_all

# --- A/B: --webhook-threads on replica A, at the closed-loop maximum, pairs run alternately ----
if [[ ${#ab_threads[@]} -eq 2 ]]; then
  for pair in $(seq "$ab_pairs"); do
    for threads in "${ab_threads[@]}"; do
      start_redis_pair --webhook-threads "$threads"
      loadgen "ab-threads-$threads-$pair" --url "$target_url" --concurrency "$concurrency" \
        --warmup "$warmup" --duration "$window" --quiet --watch "127.0.0.1:$b_grpc" \
        --monitor "gateway=$a_pid" --monitor "redis=$redis_pid"
      stop_all
    done
  done
fi

cat /proc/loadavg >"$results/loadavg-end.txt"
doc_args=()
[[ $write_doc -eq 1 ]] && doc_args=(--doc docs/benchmarks.md)
/usr/bin/python3 bench/webhook_report.py --results "$results" --command "$invocation" \
  --concurrency "${concurrencies[*]}" --rates "${rates[*]}" --ab-threads "${ab_threads[*]}" \
  "${doc_args[@]}"
