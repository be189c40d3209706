#!/bin/sh
# What WAIT costs the Redis idempotency store: starts a master and a replica on loopback and runs
# bench/redis_store_bench.cc against the master without WAIT and with WAIT 1.
#
# Usage: bench/redis_wait.sh BUILD_DIR [SECONDS]   (from the repository root)
set -eu
build=${1:?usage: $0 BUILD_DIR [SECONDS]}
seconds=${2:-5}
dir=$(mktemp -d)
master=26401
replica=26402
trap 'redis-cli -p $master shutdown nosave >/dev/null 2>&1 || true;
      redis-cli -p $replica shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
redis-server --port $master --bind 127.0.0.1 --save "" --dir "$dir" --logfile "$dir/m.log" \
  --repl-diskless-sync-delay 0 --daemonize yes
redis-server --port $replica --bind 127.0.0.1 --save "" --dir "$dir" --logfile "$dir/r.log" \
  --replicaof 127.0.0.1 $master --daemonize yes
until redis-cli -p $master info replication | grep -q 'state=online'; do sleep 0.1; done
for in_flight in 1 64 256; do
  for acks in 0 1; do
    "$build/bench/redis-store-bench" $master $acks $in_flight "$seconds"
  done
done
