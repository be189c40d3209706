#!/usr/bin/python3
"""Turns the raw results of bench/run.sh into a table on stdout and docs/benchmarks.md.

Reads the JSON files that gateway-loadgen (--json) and bench/node/create_load.js wrote into the
results folder, computes the ratios of issue 5 and, with --doc, writes the document and draws
the latency plot with gnuplot. Standard library only. Every figure printed comes from a file in
the results folder; nothing is estimated.
"""
import argparse
import json
import os
import subprocess
import sys


def load(results, name):
    path = os.path.join(results, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read().strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(text.splitlines()[-1])  # a result line after other output


def ms(us):
    return f"{us / 1000:.3f}"


def per_request_us(cpu_s, requests):
    return cpu_s * 1e6 / requests if requests else float("nan")


def busiest(monitored, window_s, limit=4):
    """'name/tid 45%, ...' of a monitored process's busiest threads over the window."""
    threads = monitored.get("busiest_threads", [])[:limit]
    return ", ".join(f"{t['name']} {100 * t['cpu_s'] / window_s:.0f}%" for t in threads) or "n/a"


def verdict(ok):
    return "**met**" if ok else "**not met**"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--cost-rate", type=int, required=True)
    ap.add_argument("--latency-rate", type=int, required=True)
    ap.add_argument("--in-flight", type=int, required=True)
    ap.add_argument("--node-concurrency", type=int, required=True)
    ap.add_argument("--delay-ms", type=int, required=True)
    ap.add_argument("--command", default="bench/run.sh")
    ap.add_argument("--upstream-limit", type=int, default=0)
    ap.add_argument("--small-store", type=int, default=0)
    ap.add_argument("--doc")
    ap.add_argument("--plot")
    args = ap.parse_args()
    r = args.results

    machine = load(r, "machine") or {}
    # run.sh records the load average when the last scenario ends; else it is read now.
    end_file = os.path.join(r, "loadavg-end.txt")
    with open(end_file if os.path.exists(end_file) else "/proc/loadavg") as f:
        machine["loadavg_end"] = f.read().split()[:3]
    rows = []  # (scenario, goal, measured, verdict)

    # 1. CPU per Create against the floor.
    create = load(r, f"create-rate-{args.cost_rate}")
    health = load(r, f"health-rate-{args.cost_rate}")
    direct = load(r, f"direct-rate-{args.cost_rate}")
    cost = None
    if create and health and direct:
        c = per_request_us(create["monitored"]["gateway"]["cpu_s"], create["requests"])
        h = per_request_us(health["monitored"]["gateway"]["cpu_s"], health["requests"])
        d = per_request_us(direct["client_cpu_s"], direct["requests"])
        cost = {"create": c, "health": h, "curl": d, "floor": h + d, "ratio": c / (h + d),
                "client_grpc": per_request_us(create["client_cpu_s"], create["requests"]),
                "nginx_create": per_request_us(create["monitored"]["nginx"]["cpu_s"],
                                               create["requests"]),
                "nginx_direct": per_request_us(direct["monitored"]["nginx"]["cpu_s"],
                                               direct["requests"])}
        rows.append(("1. gateway CPU per Create / floor", "≤ 1.3x",
                     f"{cost['ratio']:.2f}x ({c:.0f} µs vs {h:.0f} + {d:.0f} µs)",
                     verdict(cost["ratio"] <= 1.3)))

    # 2. 1,000 in flight against a 200 ms upstream, per upstream.
    little = args.in_flight / (args.delay_ms / 1000)
    bigs = {}
    for upstream, label in (("simulator", "simulator"), ("nginx-delayed", "nginx"),
                            ("small-store", f"nginx, store of {args.small_store:,} keys")):
        inflight = load(r, f"create-inflight-{args.in_flight}-{upstream}")
        if not inflight:
            continue
        direct_inflight = load(r, f"direct-inflight-{args.in_flight}-{upstream}")
        idle = load(r, f"gateway-idle-{upstream}") or {}
        g = inflight["monitored"]["gateway"]
        up = inflight["monitored"].get("upstream", {})
        big = {
            "result": inflight, "label": label,
            "throughput": inflight["ok_per_s"], "share": inflight["ok_per_s"] / little,
            "threads_fresh": (load(r, f"gateway-idle-start-{upstream}") or {}).get("threads"),
            "threads_idle": idle.get("threads"), "threads_max": g["threads_max"],
            "threads_after": (load(r, f"gateway-after-{upstream}") or {}).get("threads"),
            "rss_max_mib": g["rss_kib_max"] / 1024, "rss_max_bytes": g["rss_kib_max"] * 1024,
            "rss_idle_mib": idle.get("rss_kib", 0) / 1024,
            "per_request_kib": (g["rss_kib_max"] - idle.get("rss_kib", 0)) / args.in_flight,
            "up_cpu_share": up.get("cpu_s", 0) / inflight["duration_s"],
            "gw_cpu_share": g["cpu_s"] / inflight["duration_s"],
            "gw_cpu_us": per_request_us(g["cpu_s"], inflight["requests"]),
            "client_cpu_share": inflight["client_cpu_s"] / inflight["duration_s"],
            "direct": direct_inflight,
        }
        if direct_inflight:
            big["direct_up_share"] = (direct_inflight["monitored"]["upstream"]["cpu_s"]
                                      / direct_inflight["duration_s"])
            big["direct_client_share"] = (direct_inflight["client_cpu_s"]
                                          / direct_inflight["duration_s"])
        bigs[upstream] = big
        if upstream == "small-store":
            rows.append((f"2. memory per request in flight (idempotency store capped at "
                         f"{args.small_store:,} keys)", "reported",
                         f"{big['per_request_kib']:.1f} KiB ({big['rss_max_bytes'] / 1e6:.1f} MB "
                         f"max RSS at {big['throughput']:,.0f}/s)", ""))
            continue
        rows.append((f"2. throughput, {args.in_flight} in flight, {args.delay_ms} ms {label}",
                     f"≥ 90% of {little:,.0f}/s",
                     f"{big['throughput']:,.0f}/s ({big['share'] * 100:.0f}%; direct libcurl: "
                     + (f"{direct_inflight['ok_per_s']:,.0f}/s)" if direct_inflight else "n/a)"),
                     verdict(big["share"] >= 0.9)))
        grew = big["threads_max"] - big["threads_idle"]
        rows.append((f"2. gateway threads ({label})", "small and fixed",
                     f"{big['threads_idle']} idle, {big['threads_max']} max, "
                     f"{big['threads_after']} after",
                     verdict(True) if grew == 0 else
                     f"**small, not fixed** (+{grew})" if big["threads_max"] <= 32 else
                     verdict(False)))
        rows.append((f"2. gateway resident memory ({label})", "≤ 100 MB",
                     f"{big['rss_max_bytes'] / 1e6:.1f} MB max ({big['per_request_kib']:.1f} KiB "
                     f"per request in flight)", verdict(big["rss_max_bytes"] <= 100e6)))

    # 3. Added latency at a fixed rate.
    lat_gw = load(r, f"create-rate-{args.latency_rate}")
    lat_direct = load(r, f"direct-rate-{args.latency_rate}")
    added = None
    if lat_gw and lat_direct:
        added = {k: (lat_gw["latency_us"][k] - lat_direct["latency_us"][k]) / 1000
                 for k in ("p50", "p90", "p99", "p99.9")}
        rows.append((f"3. added latency p50 at {args.latency_rate}/s", "≤ 0.3 ms",
                     f"{added['p50']:.3f} ms", verdict(added["p50"] <= 0.3)))
        rows.append((f"3. added latency p99 at {args.latency_rate}/s", "≤ 1 ms",
                     f"{added['p99']:.3f} ms", verdict(added["p99"] <= 1.0)))

    # 4. Against the official Node.js library.
    gw_closed = load(r, f"create-closed-{args.node_concurrency}")
    node = load(r, f"node-twilio-closed-{args.node_concurrency}")
    vs_node = None
    if gw_closed and node:
        gw_rps_cpu = gw_closed["requests"] / gw_closed["monitored"]["gateway"]["cpu_s"]
        node_rps_cpu = node["requests"] / node["cpu_s"]
        vs_node = {"gw": gw_rps_cpu, "node": node_rps_cpu, "ratio": gw_rps_cpu / node_rps_cpu}
        rows.append((f"4. requests per CPU-second, gateway / Node `twilio` "
                     f"({args.node_concurrency} in flight)", "≥ 5x",
                     f"{vs_node['ratio']:.1f}x ({gw_rps_cpu:,.0f} vs {node_rps_cpu:,.0f})",
                     verdict(vs_node["ratio"] >= 5)))

    # Sweep.
    sweep = []
    for name in sorted(os.listdir(r)):
        if name.startswith("create-rate-") and name.endswith(".json"):
            rate = int(name[len("create-rate-"):-5])
            sweep.append((rate, load(r, f"create-rate-{rate}"), load(r, f"direct-rate-{rate}")))
    sweep.sort(key=lambda x: x[0])

    # --- stdout table ---
    width = max((len(x[0]) for x in rows), default=10)
    print()
    print(f"{'scenario':<{width}}  {'goal':<18}  {'measured':<48}  result")
    for scenario, goal, measured, v in rows:
        print(f"{scenario:<{width}}  {goal:<18}  {measured:<48}  {v.replace('*', '')}")
    print()
    print("offered/s  gateway p50 / p99 / p99.9 (ms)   direct p50 / p99 / p99.9 (ms)   gateway µs CPU/req")
    for rate, gw, d in sweep:
        gl, dl = gw["latency_us"], (d or {}).get("latency_us", {})
        cpu = per_request_us(gw["monitored"]["gateway"]["cpu_s"], gw["requests"])
        print(f"{rate:>9}  {ms(gl['p50']):>8} {ms(gl['p99']):>8} {ms(gl['p99.9']):>9}      "
              f"{ms(dl.get('p50', 0)):>8} {ms(dl.get('p99', 0)):>8} {ms(dl.get('p99.9', 0)):>9}"
              f"      {cpu:8.1f}")
    print(f"\nload average at start {' '.join(machine.get('loadavg_start', []))}, "
          f"at end {' '.join(machine['loadavg_end'])} ({machine.get('nproc')} CPUs)")

    if not args.doc:
        return

    # --- plot ---
    os.makedirs(os.path.dirname(os.path.abspath(args.doc)), exist_ok=True)
    plot_name = None
    if args.plot and sweep:
        data = os.path.join(r, "latency.dat")
        with open(data, "w") as f:
            for rate, gw, d in sweep:
                if d is None:
                    continue
                f.write(f"{rate} {ms(gw['latency_us']['p50'])} {ms(gw['latency_us']['p99'])} "
                        f"{ms(d['latency_us']['p50'])} {ms(d['latency_us']['p99'])}\n")
        plot_gp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot.gp")
        subprocess.run(["gnuplot", "-e", f"datafile='{data}'; outfile='{args.plot}'", plot_gp],
                       check=True)
        plot_name = os.path.basename(args.plot)

    with open(os.path.join(r, "commands.txt")) as f:
        commands = f.read().strip()
    profiles = []
    for name in sorted(os.listdir(r)):
        if name.startswith("perf-") and name.endswith(".txt") and not name.endswith(".log"):
            with open(os.path.join(r, name)) as f:
                text = f.read().strip()
            if text:
                profiles.append((name[len("perf-"):-4], text))

    out = []
    w = out.append
    w("# Benchmarks")
    w("")
    w(f"Generated by `{args.command}` on {machine.get('date', '?')}; do not edit by hand, run it "
      "again. Figures are from one run on the machine below, everything on loopback. The "
      "issue 5 goals are ratios measured within this one run.")
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("|---|---|")
    w(f"| CPUs (`nproc`) | {machine.get('nproc')} |")
    w(f"| CPU | {machine.get('cpu')} |")
    w(f"| memory | {machine.get('memory_gib')} GiB |")
    w(f"| kernel | {machine.get('kernel')} |")
    w(f"| OS | {machine.get('os')} |")
    w(f"| load average (1, 5, 15 min) at start / end | {' '.join(machine.get('loadavg_start', []))}"
      f" / {' '.join(machine['loadavg_end'])} |")
    w(f"| gateway build | CMake `{machine.get('build_type')}`, commit {machine.get('git')} |")
    w(f"| gRPC / libcurl | {machine.get('grpc')} / {machine.get('libcurl')} |")
    w(f"| upstreams | {machine.get('nginx')}; {machine.get('python')} (simulator) |")
    w(f"| Node.js baseline | {machine.get('node')}, npm `twilio` "
      f"{node.get('twilio_version') if node else '?'} |")
    w("")
    w("The load generator, the gateway and the upstream share the same cores. A load average "
      "above the core count means other work ran at the same time, which inflates latency and "
      "CPU figures.")
    w("")
    w("## Goals")
    w("")
    w("| scenario | goal | measured | |")
    w("|---|---|---|---|")
    for row in rows:
        w("| " + " | ".join(row) + " |")
    w("")
    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(analysis):
        w("## Analysis")
        w("")
        with open(analysis) as f:
            w(f.read().strip())
        w("")


    if cost:
        w(f"## 1. Cost against the floor ({args.cost_rate}/s, nginx upstream)")
        w("")
        w("CPU time of the gateway process (utime + stime from `/proc/<pid>/stat`, all threads) "
          "over the measurement window, divided by the requests measured, at a fixed open-loop "
          "rate. The floor is what the gateway cannot avoid: a minimal unary gRPC call on the "
          "same server (`grpc.health.v1.Health/Check`) plus one bare libcurl keep-alive POST of "
          "the same request to the same nginx (the load generator's own CPU in `--direct-url` "
          "mode, which also includes its scheduling and histogram: the floor is slightly high).")
        w("")
        w("| | CPU per request |")
        w("|---|---|")
        w(f"| gateway, `Create` | {cost['create']:.1f} µs |")
        w(f"| gateway, health check | {cost['health']:.1f} µs |")
        w(f"| libcurl client, direct POST | {cost['curl']:.1f} µs |")
        w(f"| floor (health + libcurl) | {cost['floor']:.1f} µs |")
        w(f"| **ratio** | **{cost['ratio']:.2f}x** (goal ≤ 1.3x) |")
        w(f"| for reference: load generator (gRPC client) per `Create` | {cost['client_grpc']:.1f} µs |")
        w(f"| for reference: nginx per request, via gateway / direct | "
          f"{cost['nginx_create']:.1f} / {cost['nginx_direct']:.1f} µs |")
        w("")

    for upstream, big in bigs.items():
        inflight = big["result"]
        w(f"## 2. {args.in_flight} calls in flight against a {args.delay_ms} ms upstream: "
          f"{big['label']}")
        w("")
        if upstream == "simulator":
            w(f"Closed loop at {args.in_flight} in flight; upstream the Twilio simulator "
              f"(`--delay-ms {args.delay_ms}`, one Python asyncio process).")
        elif upstream == "small-store":
            w(f"As the nginx run, but with `GATEWAY_IDEMPOTENCY_MAX_ENTRIES={args.small_store}`, so "
              "that the in-memory idempotency store, which keeps about a KiB per completed key "
              "(100,000 by default), does not hide the memory that requests in flight take. "
              f"The store's own share is then at most a few MB (≤ {args.small_store:,} records).")
        else:
            w(f"Closed loop at {args.in_flight} in flight; upstream nginx answering after "
              f"{args.delay_ms} ms (`echo_sleep`, a timer in one C worker process).")
        out[-1] += f" Little's law allows {little:,.0f}/s."
        w("")
        w("| | |")
        w("|---|---|")
        w(f"| gateway throughput (OK/s) | {big['throughput']:,.0f}/s ({big['share'] * 100:.1f}% "
          f"of {little:,.0f}) |")
        w(f"| latency p50 / p99 / max | {ms(inflight['latency_us']['p50'])} / "
          f"{ms(inflight['latency_us']['p99'])} / {ms(inflight['latency_us']['max'])} ms |")
        w(f"| status codes | {', '.join(f'{k} {v}' for k, v in inflight['codes'].items())} |")
        w(f"| gateway threads: fresh / after warm-up / max under load / after | "
          f"{big['threads_fresh']} / {big['threads_idle']} / {big['threads_max']} / "
          f"{big['threads_after']} |")
        w(f"| gateway RSS: after warm-up / max under load | {big['rss_idle_mib']:.1f} / "
          f"{big['rss_max_mib']:.1f} MiB ({big['rss_max_bytes'] / 1e6:.1f} MB) |")
        w(f"| memory per request in flight, upper bound | {big['per_request_kib']:.1f} KiB "
          f"((max − warm idle) / {args.in_flight}) |")
        w(f"| gateway CPU per request | {big['gw_cpu_us']:.0f} µs |")
        w(f"| gateway's busiest threads (% of one core) | "
          f"{busiest(inflight['monitored']['gateway'], inflight['duration_s'])} |")
        w(f"| CPU use in the window: gateway / upstream / load generator | "
          f"{big['gw_cpu_share'] * 100:.0f}% / {big['up_cpu_share'] * 100:.0f}% / "
          f"{big['client_cpu_share'] * 100:.0f}% of one core |")
        d = big["direct"]
        if d:
            w(f"| same load straight to the upstream with libcurl (no gateway) | "
              f"{d['ok_per_s']:,.0f}/s, p50 {ms(d['latency_us']['p50'])} ms, upstream at "
              f"{big['direct_up_share'] * 100:.0f}% and load generator at "
              f"{big['direct_client_share'] * 100:.0f}% of one core |")
        w("")
    if bigs:
        w("The memory figure per request in flight is an upper bound: the difference also holds "
          "whatever the gateway keeps per completed request (its in-memory idempotency store "
          "keeps a record per key, bounded by entries and bytes).")
        w("")

    if added:
        w(f"## 3. Added latency at {args.latency_rate}/s (nginx upstream)")
        w("")
        w("Open loop, latency from each request's intended send time. The gateway path is load "
          "generator → gRPC → gateway → libcurl → nginx; the floor is the same POST sent by the "
          "load generator with libcurl multi straight to nginx, at the same rate.")
        w("")
        w("| | p50 | p90 | p99 | p99.9 | max |")
        w("|---|---|---|---|---|---|")
        lat_health = load(r, f"health-rate-{args.latency_rate}")

        def latency_row(label, res):
            l = res["latency_us"]
            w(f"| {label} | {ms(l['p50'])} | {ms(l['p90'])} | {ms(l['p99'])} | {ms(l['p99.9'])} "
              f"| {ms(l['max'])} |")

        latency_row("gateway `Create`", lat_gw)
        latency_row("direct libcurl", lat_direct)
        w(f"| **added** | **{added['p50']:.3f}** | {added['p90']:.3f} | **{added['p99']:.3f}** "
          f"| {added['p99.9']:.3f} | |")
        if lat_health:
            latency_row("gateway health check (the gRPC hop alone)", lat_health)
        w("")
        w("All in ms." + (
            f" The health check is the same gRPC call from the same load generator with no "
            f"upstream behind it: its p50 ({ms(lat_health['latency_us']['p50'])} ms) is what the "
            f"gRPC hop alone adds on this machine, against the goal of 0.3 ms for the whole "
            f"gateway." if lat_health else ""))
        w("")

    if vs_node:
        w(f"## 4. Against the official Node.js library ({args.node_concurrency} in flight, nginx "
          "upstream)")
        w("")
        w("The npm package `twilio` (bench/node, `client.api.baseUrl` pointed at nginx) creating "
          "the same subscriptions in one Node.js process, closed loop, versus the load generator "
          "driving the gateway at the same concurrency. CPU is each process's own (Node's "
          "`process.cpuUsage()`, the gateway's `/proc` times) over the window.")
        w("")
        w("| | requests/s | p50 | p99 | max | CPU-seconds | requests per CPU-second |")
        w("|---|---|---|---|---|---|---|")
        gl, nl = gw_closed["latency_us"], node["latency_us"]
        w(f"| gateway (`Create` over gRPC) | {gw_closed['ok_per_s']:,.0f} | {ms(gl['p50'])} | "
          f"{ms(gl['p99'])} | {ms(gl['max'])} | {gw_closed['monitored']['gateway']['cpu_s']:.2f} | "
          f"{vs_node['gw']:,.0f} |")
        w(f"| Node.js `twilio` {node.get('twilio_version')} | {node['ok_per_s']:,.0f} | "
          f"{ms(nl['p50'])} | {ms(nl['p99'])} | {ms(nl['max'])} | {node['cpu_s']:.2f} | "
          f"{vs_node['node']:,.0f} |")
        w(f"| **ratio** | | | | | | **{vs_node['ratio']:.1f}x** (goal ≥ 5x) |")
        w("")
        w(f"Node's peak RSS in the window: {node.get('rss_kib_max', 0) / 1024:.0f} MiB; the "
          f"gateway's: {gw_closed['monitored']['gateway']['rss_kib_max'] / 1024:.0f} MiB. "
          "Latency is in ms; the gateway's includes the gRPC hop from the load generator.")
        w("")

    if sweep:
        w("## Latency against offered load (nginx upstream)")
        w("")
        if plot_name:
            w(f"![latency against offered load]({plot_name})")
            w("")
        w("| offered/s | gateway OK/s | gateway p50 | p90 | p99 | p99.9 | max | direct p50 | p99 "
          "| p99.9 | gateway CPU/req | gateway CPU, busiest threads (% of a core) | errors |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for rate, gw, d in sweep:
            gl = gw["latency_us"]
            dl = d["latency_us"] if d else {"p50": 0, "p99": 0, "p99.9": 0}
            cpu = per_request_us(gw["monitored"]["gateway"]["cpu_s"], gw["requests"])
            errs = ", ".join(f"{k} {v}" for k, v in gw["codes"].items() if k != "OK") or "0"
            g = gw["monitored"]["gateway"]
            w(f"| {rate:,} | {gw['ok_per_s']:,.0f} | {ms(gl['p50'])} | {ms(gl['p90'])} | "
              f"{ms(gl['p99'])} | {ms(gl['p99.9'])} | {ms(gl['max'])} | {ms(dl['p50'])} | "
              f"{ms(dl['p99'])} | {ms(dl['p99.9'])} | {cpu:.0f} µs | "
              f"{100 * g['cpu_s'] / gw['duration_s']:.0f}%: {busiest(g, gw['duration_s'], 3)} | "
              f"{errs}{'; ' + str(gw['unfinished']) + ' never answered' if gw['unfinished'] else ''} |")
        w("")
        w("Latency in ms, from the intended send time (open loop: a stall is charged to every "
          f"request scheduled behind it). The {args.cost_rate:,}/s point is scenario 1's run; the "
          "others ran on a second, fresh gateway, in increasing order, stopping after the first "
          "rate it did not sustain.")
        w("")

    for name, text in profiles:
        w(f"## Profile: gateway during `{name}`")
        w("")
        w("A separate run under `perf record -F 199 --call-graph dwarf -p <gateway>`; inclusive "
          "(children) share of the gateway's samples by symbol, user space, ≥ 3%. Debian's gRPC "
          "and libcurl have no symbols for internal functions, which show as addresses and are "
          "left out.")
        w("")
        w("```")
        w(text)
        w("```")
        w("")

    w("## Commands")
    w("")
    w(f"`{args.command}` started nginx (`bench/nginx.conf`, one worker, a fixed 201), the "
      f"simulator (`--delay-ms {args.delay_ms}`) and the gateway on 127.0.0.1 ports chosen at "
      "run time, then ran (`$RESULTS` is the raw results folder, `<build>/bench-results`):")
    w("")
    w("```sh")
    w(commands)
    w("```")
    w("")
    w("Every `gateway-loadgen` run also had `--json --label NAME`; `--monitor NAME=PID` reads "
      "that process's CPU time, threads and RSS from `/proc` at the window's start and end. "
      "The gateway ran with its defaults except `GATEWAY_ACCOUNT_LIMIT_ADAPTIVE=false "
      f"GATEWAY_MAX_UPSTREAM_IN_FLIGHT={args.upstream_limit}`: its per-account limit on upstream "
      "requests in flight (adaptive, at most 100, queueing the rest) would otherwise cap "
      "scenario 2 at 100 / 0.2 s = 500/s, and the Node.js library has no such limit.")
    w("")
    with open(args.doc, "w") as f:
        f.write("\n".join(out))
    print(f"\nwrote {args.doc}" + (f" and {args.plot}" if plot_name else ""))


if __name__ == "__main__":
    sys.exit(main())
