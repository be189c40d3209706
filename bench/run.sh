#!/usr/bin/env bash
# The benchmark command: installs what it needs, builds, starts nginx, the Twilio simulator and
# the gateway on loopback, runs the scenarios of issue 5, prints a table and writes
# docs/benchmarks.md (machine, commands, results) and docs/benchmarks-latency.png.
#
# Usage: bench/run.sh [--quick] [--no-install] [--build-dir DIR] [--profile] [--no-doc]
#   --quick        shorter windows and fewer points (about 3 minutes instead of about 6)
#   --no-install   do not apt-get / npm install anything
#   --build-dir D  build with CMake (Release) into D instead of scripts/build.sh into build/
#   --profile      also record the gateway with perf (extra runs at the cost rate and at 1,000 in
#                  flight; the figures of the scenarios are measured without perf)
#   --no-doc       print the table only; leave docs/ alone
# Environment: BENCH_RATES ("250 500 ..."), BENCH_COST_RATE, BENCH_LATENCY_RATE (default 1000),
# BENCH_NODE_CONCURRENCY (64). Hand-written conclusions live in bench/analysis.md.
# Everything listens on 127.0.0.1 only and is stopped on exit. Raw results: <build dir>/bench-results.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
invocation="bench/run.sh${*:+ $*}"

quick=0
install=1
build_dir=build
profile=0
write_doc=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --build-dir) build_dir="$2"; shift ;;
    --profile) profile=1 ;;
    --no-doc) write_doc=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# Scenario sizes. Rates are offered loads for the open-loop latency sweep, which stops after the
# first rate the gateway cannot sustain; the cost and added-latency scenarios are points of it.
if [[ $quick -eq 1 ]]; then
  warmup=1s; window=4s; big_warmup=3s; big_window=6s
  read -r -a rates <<<"${BENCH_RATES:-250 1000 2000 3000}"
else
  warmup=2s; window=10s; big_warmup=4s; big_window=15s
  read -r -a rates <<<"${BENCH_RATES:-250 500 1000 1500 2000 3000 4000 6000}"
fi
cost_rate=${BENCH_COST_RATE:-1000}     # scenario 1: CPU per request at a fixed, unsaturated rate
latency_rate=${BENCH_LATENCY_RATE:-1000}  # scenario 3
node_concurrency=${BENCH_NODE_CONCURRENCY:-64}  # scenario 4
in_flight=1000                         # scenario 2
gateway_upstream_limit=4000
small_store_entries=5000
upstream_delay_ms=200
for r in "$cost_rate" "$latency_rate"; do
  [[ " ${rates[*]} " == *" $r "* ]] || rates+=("$r")
done
mapfile -t rates < <(printf '%s\n' "${rates[@]}" | sort -n -u)

# --- install ---------------------------------------------------------------------------------
if [[ $install -eq 1 ]]; then
  scripts/install-deps.sh
  missing=()
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
  [[ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ]] || missing+=(libnginx-mod-http-echo)
  command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if [[ $profile -eq 1 ]]; then command -v perf >/dev/null || missing+=(linux-perf); fi
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "installing: ${missing[*]}" >&2
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [[ ! -d bench/node/node_modules/twilio ]]; then
    (cd bench/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# --- build -----------------------------------------------------------------------------------
if [[ "$build_dir" == build ]]; then
  scripts/build.sh twilio-gateway gateway-loadgen
  build_type=RelWithDebInfo
else
  build_type=Release
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=$build_type >/dev/null
  ninja -C "$build_dir" -j "$(nproc)" twilio-gateway gateway-loadgen
fi
gateway_bin=$repo/$build_dir/service/twilio-gateway
loadgen_bin=$repo/$build_dir/bench/gateway-loadgen

results=$repo/$build_dir/bench-results
rm -rf "$results"
mkdir -p "$results"
: >"$results/commands.txt"

# --- processes -------------------------------------------------------------------------------
source bench/processes.sh
proc_field() {  # pid, field of /proc/pid/status -> number (kB for Vm*)
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

nginx_port=$(free_port)
nginx_delayed_port=$(free_port)
mkdir -p "$results/nginx"
sed -e "s|@PORT@|$nginx_port|g" -e "s|@DELAYED_PORT@|$nginx_delayed_port|g" \
  -e "s|@DELAY_S@|$(awk -v ms="$upstream_delay_ms" 'BEGIN { print ms / 1000 }')|g" \
  -e "s|@PREFIX@|$results/nginx|g" bench/nginx.conf >"$results/nginx/nginx.conf"
"$nginx_bin" -c "$results/nginx/nginx.conf" -p "$results/nginx" -e "$results/nginx/error.log" &
nginx_pid=$!
pids+=("$nginx_pid")
wait_for_port "$nginx_port" nginx
nginx_worker=$(pgrep -P "$nginx_pid" | head -1)
echo "nginx -c \$RESULTS/nginx/nginx.conf   # bench/nginx.conf with ports $nginx_port (fixed 201) and $nginx_delayed_port (201 after ${upstream_delay_ms} ms)" \
  >>"$results/commands.txt"
nginx_url=http://127.0.0.1:$nginx_port
nginx_delayed_url=http://127.0.0.1:$nginx_delayed_port
wait_for_port "$nginx_delayed_port" "nginx (delayed)"

sim_port_file=$results/simulator.port
/usr/bin/python3 tests/twilio_simulator/twilio_simulator.py --host 127.0.0.1 --port 0 \
  --port-file "$sim_port_file" --delay-ms "$upstream_delay_ms" --quiet >/dev/null \
  2>"$results/simulator.log" &
sim_pid=$!
pids+=("$sim_pid")
for _ in $(seq 100); do [[ -s "$sim_port_file" ]] && break; sleep 0.1; done
sim_url=http://127.0.0.1:$(cat "$sim_port_file")
echo "python3 tests/twilio_simulator/twilio_simulator.py --host 127.0.0.1 --port $(cat "$sim_port_file") --delay-ms $upstream_delay_ms --quiet" \
  >>"$results/commands.txt"

gateway_pid=""
gateway_port=""
# Default settings except one: the per-account limit on upstream requests in flight (default 25,
# Twilio's usual account concurrency) is raised so that the load generator's concurrency reaches
# the upstream, as it does for the Node.js library, which has no such limit.
start_gateway() {  # base_url, name, [extra env NAME=VALUE...]
  local base_url=$1 name=$2
  shift 2
  gateway_port=$(free_port)
  # The simulator's built-in test credentials (nginx ignores them); not secrets.
  env -u TWILIO_AUTH_TOKEN -u TWILIO_EDGE -u TWILIO_REGION \
    GATEWAY_ACCOUNT_LIMIT_ADAPTIVE=false GATEWAY_MAX_UPSTREAM_IN_FLIGHT=$gateway_upstream_limit "$@" \
    TWILIO_BASE_URL="$base_url" TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
    TWILIO_API_KEY=SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_API_SECRET=simulator-api-secret \
    "$gateway_bin" --listen "127.0.0.1:$gateway_port" >/dev/null 2>"$results/gateway-$name.log" &
  gateway_pid=$!
  pids+=("$gateway_pid")
  echo "GATEWAY_ACCOUNT_LIMIT_ADAPTIVE=false GATEWAY_MAX_UPSTREAM_IN_FLIGHT=$gateway_upstream_limit $* TWILIO_BASE_URL=$base_url TWILIO_ACCOUNT_SID=AC... TWILIO_API_KEY=SK... TWILIO_API_SECRET=... twilio-gateway --listen 127.0.0.1:$gateway_port" \
    >>"$results/commands.txt"
  wait_for_port "$gateway_port" gateway
}
stop_gateway() {
  kill "$gateway_pid"
  wait "$gateway_pid" 2>/dev/null || true
}

# Runs the load generator with --json; the result goes to $results/NAME.json.
loadgen() {  # name, args...
  local name=$1; shift
  local shown=("gateway-loadgen" "$@")
  local line="${shown[*]}"
  echo "${line//$results/\$RESULTS}" >>"$results/commands.txt"
  echo "== $name" >&2
  local status=0
  "$loadgen_bin" "$@" --json --label "$name" >"$results/$name.json" 2>"$results/$name.log" ||
    status=$?
  sed -n '/^requests/,$p' "$results/$name.log" | sed 's/^/   /' >&2
  # 3: the run finished but some requests never completed (reported in the JSON); go on.
  if [[ $status -ne 0 && $status -ne 3 ]]; then
    echo "bench/run.sh: gateway-loadgen failed ($status); see $results/$name.log" >&2
    exit 1
  fi
}

# With --profile: records the gateway with perf (DWARF call graphs: Debian's libraries have no
# frame pointers) during a separate load generator run, and keeps the top of the report.
profile_gateway() {  # name, loadgen args...
  [[ $profile -eq 1 ]] && command -v perf >/dev/null || return 0
  local name=$1; shift
  echo "== perf: gateway during $name" >&2
  perf record -F 199 --call-graph dwarf,16384 -o "$results/perf-$name.data" -p "$gateway_pid" \
    -- sleep 6 >/dev/null 2>"$results/perf-$name.log" &
  local perf_pid=$!
  echo "perf record -F 199 --call-graph dwarf,16384 -p $gateway_pid -- sleep 6 &  gateway-loadgen $*" \
    >>"$results/commands.txt"
  "$loadgen_bin" "$@" --monitor "gateway=$gateway_pid" >/dev/null 2>&1 || true
  wait "$perf_pid" || true
  # Inclusive time by symbol, user space only: which gateway paths the CPU goes to.
  perf report -i "$results/perf-$name.data" --children --sort symbol -g none --percent-limit 3 \
    --stdio 2>/dev/null | grep '%' | grep -v '\[k\]' | grep -v -e '0x0000' -e clone3 -e start_thread \
    | sed -e 's/  */ /g' -e 's/ - - *$//' -e 's/^ //' | cut -c1-160 | head -45 \
    >"$results/perf-$name.txt" || true
}

# --- machine ---------------------------------------------------------------------------------
/usr/bin/python3 - "$results/machine.json" "$build_type" "$quick" <<'PY'
import json, os, platform, subprocess, sys
def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
mem_kib = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")))
os_name = next((l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release")
                if l.startswith("PRETTY_NAME=")), "")
def dpkg(p):
    return run("dpkg-query", "-W", "-f=${Version}", p)
json.dump({
    "nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 1048576, 1),
    "kernel": platform.release(), "os": os_name, "build_type": sys.argv[2],
    "quick": sys.argv[3] == "1", "loadavg_start": open("/proc/loadavg").read().split()[:3],
    "date": run("date", "-u", "+%Y-%m-%d %H:%M UTC"),
    "grpc": dpkg("libgrpc++1.51") or dpkg("libgrpc++-dev"), "libcurl": dpkg("libcurl4"),
    "nginx": run("nginx", "-v") or subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True,
                                                     text=True).stderr.strip(),
    "node": run("node", "--version"), "python": run("/usr/bin/python3", "--version"),
    "git": run("git", "rev-parse", "--short", "HEAD") + (" (modified)" if run("git", "status", "--porcelain", "--untracked-files=no") else ""),
}, open(sys.argv[1], "w"), indent=1)
PY

# --- scenario 1: cost against the floor, on a fresh gateway in front of nginx ------------------
start_gateway "$nginx_url" nginx
echo "gateway pid $gateway_pid on 127.0.0.1:$gateway_port -> nginx $nginx_url (worker $nginx_worker)" >&2
common=(--warmup "$warmup" --duration "$window" --timeout 5s --quiet)
loadgen "create-rate-$cost_rate" --target "127.0.0.1:$gateway_port" --rate "$cost_rate" \
  "${common[@]}" --monitor "gateway=$gateway_pid" --monitor "nginx=$nginx_worker"
loadgen "health-rate-$cost_rate" --target "127.0.0.1:$gateway_port" --rpc health \
  --rate "$cost_rate" "${common[@]}" --monitor "gateway=$gateway_pid"
loadgen "direct-rate-$cost_rate" --direct-url "$nginx_url" --rate "$cost_rate" "${common[@]}" \
  --monitor "nginx=$nginx_worker"
profile_gateway "create-rate-$cost_rate" --target "127.0.0.1:$gateway_port" --rate "$cost_rate" \
  --warmup 1s --duration 6s --timeout 5s --quiet

# --- scenario 4: the official Node.js library at the same concurrency, same nginx --------------
loadgen "create-closed-$node_concurrency" --target "127.0.0.1:$gateway_port" \
  --concurrency "$node_concurrency" "${common[@]}" --monitor "gateway=$gateway_pid" \
  --monitor "nginx=$nginx_worker"
echo "== node-twilio-closed-$node_concurrency" >&2
node_args=(--base-url "$nginx_url" --concurrency "$node_concurrency" --warmup "${warmup%s}"
  --duration "${window%s}")
echo "node bench/node/create_load.js ${node_args[*]}" >>"$results/commands.txt"
node bench/node/create_load.js "${node_args[@]}" >"$results/node-twilio-closed-$node_concurrency.json" \
  2>"$results/node-twilio.log"
stop_gateway

# --- scenario 3 and the sweep: latency against offered load, on another fresh gateway ----------
# An overloaded point leaves the gateway's heap grown and its queues full, so the sweep has its
# own gateway, runs last among the nginx scenarios and stops after the first rate it cannot serve.
start_gateway "$nginx_url" nginx-sweep
echo "gateway pid $gateway_pid on 127.0.0.1:$gateway_port -> nginx $nginx_url" >&2
for rate in "${rates[@]}"; do
  if [[ ! -f "$results/create-rate-$rate.json" ]]; then
    loadgen "create-rate-$rate" --target "127.0.0.1:$gateway_port" --rate "$rate" "${common[@]}" \
      --monitor "gateway=$gateway_pid" --monitor "nginx=$nginx_worker"
  fi
  if [[ ! -f "$results/direct-rate-$rate.json" ]]; then
    loadgen "direct-rate-$rate" --direct-url "$nginx_url" --rate "$rate" "${common[@]}" \
      --monitor "nginx=$nginx_worker"
  fi
  if ! /usr/bin/python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if r["ok_per_s"] >= 0.98 * r["rate"] and r["unfinished"] == 0 else 1)' \
      "$results/create-rate-$rate.json" 2>/dev/null; then
    echo "   the gateway did not sustain $rate/s: higher rates skipped" >&2
    break
  fi
done
stop_gateway

# --- scenario 2: 1,000 in flight against a 200 ms upstream ------------------------------------
# Twice: against the Python simulator, and against nginx answering after 200 ms (echo_sleep),
# which shows what the gateway does when the upstream is not the bottleneck.
run_inflight() {  # name, url, upstream pid, [extra gateway env...]
  local name=$1 url=$2 upstream_pid=$3
  shift 3
  start_gateway "$url" "$name" "$@"
  echo "gateway pid $gateway_pid on 127.0.0.1:$gateway_port -> $url $*" >&2
  echo "{\"threads\": $(proc_field "$gateway_pid" Threads), \"rss_kib\": $(proc_field "$gateway_pid" VmRSS)}" \
    >"$results/gateway-idle-start-$name.json"
  # A light warm-up so the idle figure includes what any first request allocates.
  "$loadgen_bin" --target "127.0.0.1:$gateway_port" --rate 50 --warmup 0 --duration 1s --quiet \
    --timeout 5s >/dev/null 2>&1
  echo "{\"threads\": $(proc_field "$gateway_pid" Threads), \"rss_kib\": $(proc_field "$gateway_pid" VmRSS)}" \
    >"$results/gateway-idle-$name.json"
  loadgen "create-inflight-$in_flight-$name" --target "127.0.0.1:$gateway_port" \
    --concurrency "$in_flight" --warmup "$big_warmup" --duration "$big_window" --timeout 10s \
    --quiet --monitor "gateway=$gateway_pid" --monitor "upstream=$upstream_pid"
  echo "{\"threads\": $(proc_field "$gateway_pid" Threads), \"rss_kib\": $(proc_field "$gateway_pid" VmRSS)}" \
    >"$results/gateway-after-$name.json"
  if [[ $name == nginx-delayed ]]; then
    profile_gateway "inflight-$in_flight" --target "127.0.0.1:$gateway_port" \
      --concurrency "$in_flight" --warmup 2s --duration 6s --timeout 10s --quiet
  fi
  stop_gateway
}
run_inflight simulator "$sim_url" "$sim_pid"
loadgen "direct-inflight-$in_flight-simulator" --direct-url "$sim_url" --concurrency "$in_flight" \
  --warmup "$big_warmup" --duration "$big_window" --timeout 10s --quiet --monitor "upstream=$sim_pid"
run_inflight nginx-delayed "$nginx_delayed_url" "$nginx_worker"
loadgen "direct-inflight-$in_flight-nginx-delayed" --direct-url "$nginx_delayed_url" \
  --concurrency "$in_flight" --warmup "$big_warmup" --duration "$big_window" --timeout 10s --quiet \
  --monitor "upstream=$nginx_worker"
# Memory per request in flight without the idempotency store's growth: the store (default
# 100,000 records) keeps about a KiB per completed key, which would otherwise dominate.
run_inflight small-store "$nginx_delayed_url" "$nginx_worker" \
  GATEWAY_IDEMPOTENCY_MAX_ENTRIES=$small_store_entries

# --- report ----------------------------------------------------------------------------------
# Kept with the results, so that rendering them again later shows this run's load, not the
# machine's at that time.
cat /proc/loadavg >"$results/loadavg-end.txt"
doc_args=()
[[ $write_doc -eq 1 ]] && doc_args=(--doc docs/benchmarks.md --plot docs/benchmarks-latency.png)
/usr/bin/python3 bench/report.py --results "$results" --cost-rate "$cost_rate" \
  --latency-rate "$latency_rate" --in-flight "$in_flight" --node-concurrency "$node_concurrency" \
  --delay-ms "$upstream_delay_ms" --command "$invocation" --upstream-limit "$gateway_upstream_limit" \
  --small-store "$small_store_entries" \
  "${doc_args[@]}"

# --- receiving messages (webhook -> Watch): its own script, results and section of the doc -----
# BENCH_WEBHOOK=0 skips it. It runs after report.py, which rewrites docs/benchmarks.md, and
# writes only its own section (between markers) there.
if [[ ${BENCH_WEBHOOK:-1} -eq 1 ]]; then
  webhook_args=(--build-dir "$build_dir")
  [[ $quick -eq 1 ]] && webhook_args+=(--quick)
  [[ $write_doc -eq 0 ]] && webhook_args+=(--no-doc)
  [[ $profile -eq 1 ]] && webhook_args+=(--profile)
  bench/webhook.sh "${webhook_args[@]}"
fi

# --- the Redis store against memory (issue 12): its own script and section of the doc ----------
# BENCH_REDIS=0 skips it; like the webhook's, it writes only its section, after report.py.
if [[ ${BENCH_REDIS:-1} -eq 1 ]]; then
  redis_args=(--build-dir "$build_dir" --no-build)
  [[ $quick -eq 1 ]] && redis_args+=(--quick)
  [[ $write_doc -eq 0 ]] && redis_args+=(--no-doc)
  bench/redis.sh "${redis_args[@]}"
fi
