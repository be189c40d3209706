#!/usr/bin/env bash
# Installs the Debian 12 packages the gateway needs to build, run and test; does nothing when
# they are all present. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc grpc-proto
  libcurl4-openssl-dev libabsl-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  python3 python3-grpcio python3-protobuf curl ca-certificates
  libhiredis-dev redis-server
  # Tests of Redis over TLS (tests/integration/redis_tls_test.cc): the stunnel client the
  # deploy/ sidecar runs, and openssl for the test's throwaway CA.
  stunnel4 openssl
  # The server's allocator (service/CMakeLists.txt says why).
  libjemalloc-dev
  # Metrics: prometheus-cpp's core library; the HTTP server of /metrics (and later webhooks).
  prometheus-cpp-dev libmicrohttpd-dev
  # The client packages (client/python, client/go): built, vetted and tested offline.
  python3-venv python3-pip python3-setuptools python3-wheel python3-pytest
  golang-go golang-goprotobuf-dev protoc-gen-go-grpc golang-google-grpc-dev
  golang-google-protobuf-dev
)
# The Node.js client tests need node and npm; a machine may have them from outside Debian
# (NodeSource), where dpkg would not see Debian's npm package, so ask for the commands.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
