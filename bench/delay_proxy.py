#!/usr/bin/python3
"""A TCP proxy that adds a fixed delay to every byte in each direction, to measure the gateway
against a Redis (or anything) one network hop away: --delay-ms 0.5 adds 1 ms of round trip.

This kernel has no netem, and a user-space proxy needs no privileges. Each chunk read is written
on the other side `delay` after it arrived, in order, so the proxy adds latency without adding a
round trip of its own. Two threads per direction (reader, delayed writer) and time.sleep, whose
nanosecond timer keeps the delay within about 0.1 ms; asyncio would round every wait up to a
whole millisecond (epoll's timeout unit).

Usage: delay_proxy.py --target HOST:PORT --delay-ms 0.5 [--listen-port P] [--port-file F]
"""
import argparse
import collections
import os
import socket
import threading
import time


def pipe(source, sink, delay):
    """Copies source to sink, each chunk `delay` seconds after it was read."""
    queue = collections.deque()
    ready = threading.Condition()

    def write():
        while True:
            with ready:
                while not queue:
                    ready.wait()
                due, data = queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if data is None:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            try:
                sink.sendall(data)
            except OSError:
                return

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    while True:
        try:
            data = source.recv(65536)
        except OSError:
            data = b""
        with ready:
            queue.append((time.monotonic() + delay, data or None))
            ready.notify()
        if not data:
            break
    writer.join()


def serve(client, target, delay):
    try:
        upstream = socket.create_connection(target)
    except OSError:
        client.close()
        return
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=pipe, args=(upstream, client, delay), daemon=True)
    back.start()
    pipe(client, upstream, delay)
    back.join()
    client.close()
    upstream.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, default=0)
    parser.add_argument("--target", required=True, help="HOST:PORT")
    parser.add_argument("--delay-ms", type=float, required=True, help="one way")
    parser.add_argument("--port-file")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", args.listen_port))
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(listener.getsockname()[1]))
        os.replace(args.port_file + ".tmp", args.port_file)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, (host, int(port)), args.delay_ms / 1000),
                         daemon=True).start()


if __name__ == "__main__":
    main()
