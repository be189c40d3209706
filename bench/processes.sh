# Sourced by the benchmark scripts: the processes they start (killed on exit) and their ports.
# Usage: pids+=($!) after starting one; free_port; wait_for_port PORT WHAT.
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for_port() {  # port, what, [tries 0.1 s apart, default 100]
  for _ in $(seq "${3:-100}"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$(basename "$0"): $2 did not start on port $1" >&2
  exit 1
}
