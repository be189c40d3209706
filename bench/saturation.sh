#!/usr/bin/env bash
# Issue 14's measure: the CPU one Create costs the gateway at saturation, against the floor,
# for one or more gateway binaries run alternately against the same nginx (a fixed 201).
#   Create:  h2load, 4 connections x 64 streams of SubscriptionService/Create (no idempotency
#            key: the gateway draws one, so every request is a new Create);
#   health:  the same h2load against grpc.health.v1.Health/Check on the same server;
#   POST:    gateway-loadgen --direct-url, a bare libcurl multi keep-alive POST to the same
#            nginx at 256 in flight, its own CPU per request.
# CPU is the gateway's utime + stime from /proc over the h2load run; floor = health + POST.
#
# Usage: bench/saturation.sh BINARY [BINARY...] [-- ROUNDS [REQUESTS]]
#   ROUNDS    rounds over the binaries, alternating (default 3)
#   REQUESTS  per h2load run (default 20000)
# Needs h2load (nghttp2-client), nginx-light, libnginx-mod-http-echo and a built gateway-loadgen
# (LOADGEN, default build/bench/gateway-loadgen). Prints one line per run and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
bins=()
while [[ $# -gt 0 && "$1" != -- ]]; do bins+=("$(realpath "$1")"); shift; done
[[ ${#bins[@]} -ge 1 ]] || { sed -n '2,16p' "$0"; exit 2; }
[[ "${1:-}" == -- ]] && shift
rounds=${1:-3}; requests=${2:-20000}
loadgen=${LOADGEN:-build/bench/gateway-loadgen}
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
command -v h2load >/dev/null || { echo "bench/saturation.sh: needs h2load (nghttp2-client)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for_port() {
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench/saturation.sh: nothing listens on $1" >&2; exit 1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

nginx_port=$(free_port)
sed -e "s|@PORT@|$nginx_port|g" -e "s|@DELAYED_PORT@|$(free_port)|g" -e "s|@DELAY_S@|0.2|g" \
  -e "s|@PREFIX@|$work|g" bench/nginx.conf >"$work/nginx.conf"
"$nginx_bin" -c "$work/nginx.conf" -p "$work" -e "$work/error.log" &
pids+=($!)
wait_for_port "$nginx_port"

# gRPC frames: a 5-byte prefix (uncompressed, length) and the message. Create carries the
# loadgen's call SID and callback; the health check's request is empty.
/usr/bin/python3 - "$work" <<'PY'
import struct, sys
def field(n, s):
    b = s.encode()
    return bytes([n << 3 | 2, len(b)]) + b
msg = field(1, "CA0123456789abcdef0123456789abcdef") + field(2, "https://example.com/twilio/messages")
open(sys.argv[1] + "/create.bin", "wb").write(b"\0" + struct.pack(">I", len(msg)) + msg)
open(sys.argv[1] + "/health.bin", "wb").write(b"\0\0\0\0\0")
PY

h2() {  # port, path, body, requests
  h2load -n "$4" -c 4 -m 64 -H 'content-type: application/grpc' -H 'te: trailers' -d "$3" \
    "http://127.0.0.1:$1$2" 2>&1
}

hz=$(getconf CLK_TCK)
run() {  # label, binary
  local port; port=$(free_port)
  # The simulator's built-in test credentials (nginx ignores them); not secrets.
  env -u TWILIO_AUTH_TOKEN -u TWILIO_EDGE -u TWILIO_REGION GATEWAY_MAX_UPSTREAM_IN_FLIGHT=4000 \
    TWILIO_BASE_URL="http://127.0.0.1:$nginx_port" TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
    TWILIO_API_KEY=SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_API_SECRET=simulator-api-secret \
    "$2" --listen "127.0.0.1:$port" >/dev/null 2>"$work/gateway.log" &
  local pid=$!
  wait_for_port "$port"
  local result="$1"
  for what in create health; do
    local path=/twilio_gateway.v1.SubscriptionService/Create
    [[ $what == health ]] && path=/grpc.health.v1.Health/Check
    h2 "$port" "$path" "$work/$what.bin" 2000 >/dev/null  # warm-up
    local before; before=$(cpu_ticks "$pid")
    h2 "$port" "$path" "$work/$what.bin" "$requests" >"$work/h2load.txt"
    local after; after=$(cpu_ticks "$pid")
    local ok rps
    ok=$(awk '/^status codes:/ { print $3 }' "$work/h2load.txt")
    rps=$(awk '/^finished in/ { print $4 }' "$work/h2load.txt")
    result+=" ${what}_us=$(( (after - before) * 1000000 / hz / requests )) ${what}_per_s=${rps%.*}"
    [[ "$ok" == "$requests" ]] || result+=" ${what}_2xx=$ok"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local oks; oks=$(grep -c '"msg":"audit".*"rpc":"Create".*"code":"OK"' "$work/gateway.log" || true)
  [[ "$oks" -ge "$requests" ]] || result+=" create_ok=$oks(!)"
  "$loadgen" --direct-url "http://127.0.0.1:$nginx_port" --concurrency 256 --warmup 1s \
    --duration 5s --quiet --json >"$work/direct.json" 2>/dev/null
  result+=" post_us=$(/usr/bin/python3 -c 'import json, sys
r = json.load(open(sys.argv[1])); print(round(r["client_cpu_s"] * 1e6 / r["requests"]))' "$work/direct.json")"
  echo "$result"
}

for _ in $(seq "$rounds"); do
  for i in "${!bins[@]}"; do run "bin$i" "${bins[$i]}" | tee -a "$work/results"; done
done
/usr/bin/python3 - "$work/results" "${bins[@]}" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    label, *fields = line.split()
    for f in fields:
        k, _, v = f.partition("=")
        if v.lstrip("-").isdigit():
            runs[label][k].append(int(v))
for i, binary in enumerate(sys.argv[2:]):
    r = runs[f"bin{i}"]
    ratios = [c / (h + p) for c, h, p in zip(r["create_us"], r["health_us"], r["post_us"])]
    med = {k: statistics.median(v) for k, v in r.items()}
    print(f"bin{i} {binary}: median Create {med['create_us']:.0f} µs, health {med['health_us']:.0f}, "
          f"POST {med['post_us']:.0f}; ratio to the floor, median of runs "
          f"{statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)}); "
          f"Creates/s {med['create_per_s']:.0f}")
PY
