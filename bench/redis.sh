#!/usr/bin/env bash
# The Redis store against the memory store (issue 12, goal 1): 1,000 Creates in flight against
# nginx answering after 200 ms, with the idempotency records in memory, in Redis on loopback, and
# in Redis one network hop away (bench/delay_proxy.py adds about 1 ms of round trip; the figure
# measured with `redis-cli --latency` through it is printed). Runs alternate (memory, redis,
# redis+RTT) `pairs` times on fresh processes; the table shows medians. Writes the section
# "The Redis store" of docs/benchmarks.md between its markers.
#
# Usage: bench/redis.sh [--quick] [--build-dir DIR] [--no-build] [--no-doc]
# Environment: REDIS_BENCH_PAIRS (3), REDIS_BENCH_DELAY_MS (one way, 0.5), REDIS_BENCH_IN_FLIGHT
# (1000). Needs nginx (with echo_sleep: nginx-light or nginx-extras) and redis-server. Raw
# results: <build dir>/redis-results.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
invocation="bench/redis.sh${*:+ $*}"

quick=0
build_dir=build
build=1
write_doc=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --build-dir) build_dir="$2"; shift ;;
    --no-build) build=0 ;;
    --no-doc) write_doc=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench/redis.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ $quick -eq 1 ]]; then warmup=2s; window=6s; else warmup=4s; window=12s; fi
pairs=${REDIS_BENCH_PAIRS:-3}
delay_ms=${REDIS_BENCH_DELAY_MS:-0.5}
in_flight=${REDIS_BENCH_IN_FLIGHT:-1000}
upstream_delay_ms=200

if [[ $build -eq 1 ]]; then
  [[ -f "$build_dir/build.ninja" ]] ||
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$build_dir" twilio-gateway gateway-loadgen >&2
fi
gateway_bin=$repo/$build_dir/service/twilio-gateway
loadgen_bin=$repo/$build_dir/bench/gateway-loadgen
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
results=$repo/$build_dir/redis-results
rm -rf "$results"
mkdir -p "$results/nginx"
: >"$results/commands.txt"

source bench/processes.sh

# nginx's delayed server (bench/nginx.conf); its fixed port is unused here.
nginx_port=$(free_port)
delayed_port=$(free_port)
sed -e "s|@PORT@|$nginx_port|g" -e "s|@DELAYED_PORT@|$delayed_port|g" \
  -e "s|@DELAY_S@|$(awk -v ms="$upstream_delay_ms" 'BEGIN { print ms / 1000 }')|g" \
  -e "s|@PREFIX@|$results/nginx|g" bench/nginx.conf >"$results/nginx/nginx.conf"
"$nginx_bin" -c "$results/nginx/nginx.conf" -p "$results/nginx" -e "$results/nginx/error.log" &
pids+=($!)
wait_for_port "$delayed_port" nginx
nginx_worker=$(pgrep -P "${pids[0]}" | head -1)

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  >"$results/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_for_port "$redis_port" redis-server
proxy_port_file=$results/proxy.port
/usr/bin/python3 bench/delay_proxy.py --target "127.0.0.1:$redis_port" --delay-ms "$delay_ms" \
  --port-file "$proxy_port_file" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$proxy_port_file" ]] && break; sleep 0.1; done
proxy_port=$(cat "$proxy_port_file")
rtt() {  # port -> average PING round trip in ms over 2 s
  timeout 3 redis-cli -p "$1" --latency 2>/dev/null | tail -1 | awk '{ print $3 }'
}
echo "redis-cli --latency: loopback $(rtt "$redis_port") ms, through the proxy $(rtt "$proxy_port") ms" \
  | tee "$results/rtt.txt" >&2

run() {  # name, extra env...
  local name=$1
  shift
  local port
  port=$(free_port)
  env "$@" GATEWAY_ACCOUNT_LIMIT_ADAPTIVE=false GATEWAY_MAX_UPSTREAM_IN_FLIGHT=$in_flight TWILIO_BASE_URL="http://127.0.0.1:$delayed_port" \
    TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
    TWILIO_API_KEY=SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_API_SECRET=simulator-api-secret \
    "$gateway_bin" --listen "127.0.0.1:$port" >/dev/null 2>"$results/gateway-$name.log" &
  local gateway_pid=$!
  wait_for_port "$port" gateway
  echo "$* GATEWAY_ACCOUNT_LIMIT_ADAPTIVE=false GATEWAY_MAX_UPSTREAM_IN_FLIGHT=$in_flight twilio-gateway ...; gateway-loadgen --target 127.0.0.1:$port --concurrency $in_flight --warmup $warmup --duration $window --timeout 10s" \
    >>"$results/commands.txt"
  "$loadgen_bin" --target "127.0.0.1:$port" --concurrency "$in_flight" --warmup "$warmup" \
    --duration "$window" --timeout 10s --quiet --monitor "gateway=$gateway_pid" \
    --monitor "redis=$redis_pid" --json --label "$name" >"$results/$name.json" \
    2>"$results/$name.log" || true
  kill "$gateway_pid"
  wait "$gateway_pid" 2>/dev/null || true
  redis-cli -p "$redis_port" flushall >/dev/null
}

for pair in $(seq "$pairs"); do
  echo "== pair $pair of $pairs" >&2
  run "memory-$pair" GATEWAY_IDEMPOTENCY_STORE=memory
  run "redis-$pair" GATEWAY_IDEMPOTENCY_STORE=redis GATEWAY_REDIS_ADDRESS="127.0.0.1:$redis_port"
  run "redis-rtt-$pair" GATEWAY_IDEMPOTENCY_STORE=redis \
    GATEWAY_REDIS_ADDRESS="127.0.0.1:$proxy_port"
done

/usr/bin/python3 - "$results" "$pairs" "$in_flight" "$upstream_delay_ms" "$invocation" \
  "$(cat "$results/rtt.txt")" "$write_doc" <<'EOF'
import json, os, statistics, sys, time
results, pairs, in_flight, delay_ms, invocation, rtt, write_doc = sys.argv[1:8]
pairs, in_flight, delay_ms = int(pairs), int(in_flight), int(delay_ms)
little = in_flight / (delay_ms / 1000)
rows = []
medians = {}
for store, label in (("memory", "memory"), ("redis", "Redis, loopback"),
                     ("redis-rtt", "Redis, +RTT (delay proxy)")):
    runs = [json.load(open(os.path.join(results, f"{store}-{i}.json"))) for i in range(1, pairs + 1)]
    ok = statistics.median(r["ok_per_s"] for r in runs)
    p50 = statistics.median(r["latency_us"]["p50"] for r in runs) / 1000
    p99 = statistics.median(r["latency_us"]["p99"] for r in runs) / 1000
    cpu = statistics.median(1e6 * r["monitored"]["gateway"]["cpu_s"] / max(r["requests"], 1)
                            for r in runs)
    medians[store] = (ok, p50)
    each = ", ".join(f"{r['ok_per_s']:.0f}" for r in runs)
    rows.append(f"| {label} | {ok:,.0f} ({each}) | {100 * ok / little:.0f}% | {p50:.1f} | {p99:.1f} | {cpu:.0f} |")
mem_ok, mem_p50 = medians["memory"]
lines = [
    f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `{invocation}`: "
    f"{in_flight} Creates in flight (closed loop), nginx answering after {delay_ms} ms, "
    f"every flag at its default but the per-account upstream limit (fixed, at {in_flight}, as in "
    f"scenario 2). Medians of {pairs} alternating runs (each run in parentheses). {rtt}.",
    "",
    "| store | Creates/s (runs) | of Little's law | p50 ms | p99 ms | gateway CPU µs/Create |",
    "|---|---|---|---|---|---|",
    *rows,
    "",
    f"Redis on loopback reaches {100 * medians['redis'][0] / mem_ok:.0f}% of the memory store's "
    f"throughput (goal: 90%) and adds {medians['redis'][1] - mem_p50:.2f} ms to p50; one hop away "
    f"{100 * medians['redis-rtt'][0] / mem_ok:.0f}% and {medians['redis-rtt'][1] - mem_p50:.2f} ms.",
]
section = "\n".join(lines)
print(section)
if write_doc == "1":
    path = "docs/benchmarks.md"
    begin, end = "<!-- redis-store:begin -->", "<!-- redis-store:end -->"
    doc = open(path).read()
    block = f"{begin}\n## The Redis store (issue 12)\n\n{section}\n{end}"
    if begin in doc:
        doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    open(path, "w").write(doc)
EOF
