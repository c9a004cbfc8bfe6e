"""./dev bench jobs: batch jobs through the plugin runtime on 1, 2 and 4 plugin processes sharing the
real Redis, against the simulator (fixed latency), every figure against a baseline measured in the
same run:

1. one process against a bare `requests` + gevent pool on the same calls (same concurrency): requests
   per second, and CPU per item;
2. scaling: 1, 2 and 4 processes at a latency where this host has CPU to spare (`--scaling-latency-ms`,
   400 ms: still faster than most real LLM calls), so what is measured is the jobs' design (Redis
   Streams, shared limits and breaker), not the machine: throughput against N x one process;
3. the host's ceiling: N processes at the base latency against N bare pools run side by side. On a
   2-core machine with 100 ms replies both are CPU-bound well before 4 x one process: the ratio
   plugin / bare pools is the figure that says what the plugin costs there;
4. the rate limit binding, and a 100,000-item job on 4 processes with each process's memory sampled.

`--quick` is a shorter run (1,000 items per process, no rate-limit run, no 100,000-item job): the
ratios in about two minutes. Needs Redis on 127.0.0.1:6379 (uses database 10 and empties it)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import redis

from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess

REDIS_URL = "redis://127.0.0.1:6379/10"
BARE_POOL = """
from gevent import monkey; monkey.patch_all()
import json, sys, time, gevent.pool, requests
from requests.adapters import HTTPAdapter
base, key, n, conc, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = requests.Session(); s.headers["Authorization"] = "Bearer " + key
s.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=conc, max_retries=0))
def call(i):
    r = s.post(base + "/chat/completions", json={"model": "deepseek-v3.2", "messages": [{"role": "user", "content": f"bare {i}"}]}, timeout=60)
    return r.status_code == 200 and bool(r.json()["choices"][0]["message"]["content"])
list(gevent.pool.Pool(conc).imap(call, range(conc * 2)))
time.sleep(max(0.0, start_at - time.time()))  # pools run side by side start together
t, cpu = time.perf_counter(), time.process_time()
ok = sum(gevent.pool.Pool(conc).imap(call, range(n)))
wall, cpu = time.perf_counter() - t, time.process_time() - cpu
print(json.dumps({"rps": n / wall, "ok": ok, "cpu_ms": cpu / n * 1000}))
"""

# The same calls through GatewayClient alone (redis_url set: shared breaker, 429 pause and metrics in
# Redis; no jobs engine, no plugin runtime): what the client costs, apart from the engine around it.
CLIENT_POOL = """
from gevent import monkey; monkey.patch_all()
import json, sys, time, gevent.pool
from gateway import CallOptions, ChatRequest, GatewayConfig
from gateway.client import ClientRegistry
base, key, n, conc, redis_url = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
config = GatewayConfig.from_credentials({"api_key": key, "base_url": base, "redis_url": redis_url, "max_retries": "2"})
client = ClientRegistry().client(config)  # as the plugin's tools get theirs: the process's registry, state in Redis
client.ensure_pool(conc)
def call(i):
    return bool(client.chat(ChatRequest.from_prompt(f"client {i}", model="deepseek-v3.2"), CallOptions(tool="batch_submit")).text)
list(gevent.pool.Pool(conc).imap(call, range(conc * 2)))
t = time.perf_counter(); ok = sum(gevent.pool.Pool(conc).imap(call, range(n))); wall = time.perf_counter() - t
print(json.dumps({"rps": n / wall, "ok": ok}))
"""


def creds(sim: SimulatorProcess, redis_url: str = REDIS_URL) -> dict[str, Any]:
    return {"api_key": sim.api_key, "base_url": sim.base_url, "redis_url": redis_url, "max_retries": "2"}


def tool(plugin: PluginProcess, name: str, params: dict[str, Any], credentials: dict[str, Any]) -> dict[str, Any]:
    outcome = plugin.run_tool(name, params, credentials, timeout=600)
    if not outcome.ok:
        raise RuntimeError(outcome.error_message)
    return outcome.variables


def run_job(
    plugins: list[PluginProcess], credentials: dict[str, Any], items: int, concurrency: int, *, rpm: int = 0, sample: bool = False
) -> dict[str, Any]:
    prompts = json.dumps([f"item {i}" for i in range(items)])
    cpu = sum(p.cpu_seconds for p in plugins)
    started = time.perf_counter()
    job = tool(plugins[0], "batch_submit", {"prompts": prompts, "concurrency": concurrency, "rpm_limit": rpm}, credentials)
    submitted = time.perf_counter() - started
    for plugin in plugins[1:]:
        tool(plugin, "batch_status", {"job_id": job["job_id"]}, credentials)
    samples: list[tuple[float, list[float]]] = []
    while True:
        status = tool(plugins[0], "batch_status", {"job_id": job["job_id"]}, credentials)
        if sample:
            rss = [p.rss_bytes / 2**20 for p in plugins]
            if not samples or status["progress"] - samples[-1][0] >= 0.1 or status["finished"]:
                samples.append((status["progress"], rss))
        if status["finished"]:
            break
        time.sleep(0.5)
    wall = time.perf_counter() - started
    cpu_ms = (sum(p.cpu_seconds for p in plugins) - cpu) / items * 1000  # the polling tool calls included
    # Input order: the whole job, page by page, must come back as submitted.
    offset, in_order = 0, True
    while offset < items:
        page = tool(plugins[-1], "batch_results", {"job_id": job["job_id"], "offset": offset, "limit": 1000, "files": "none"}, credentials)
        if "results" not in page:
            raise RuntimeError(f"batch_results at offset {offset} gave no results variable: {sorted(page)}")
        in_order &= [r["id"] for r in page["results"]] == [str(i) for i in range(offset, offset + len(page["results"]))]
        offset = page.get("next_offset", items)
    return {"status": status, "wall_s": wall, "submit_s": submitted, "in_order": in_order, "samples": samples, "cpu_ms": cpu_ms}


def jobs_on(n: int, credentials: dict[str, Any], items: int, concurrency: int, **kwargs: Any) -> dict[str, Any]:
    plugins = [PluginProcess().start() for _ in range(n)]
    try:
        return run_job(plugins, credentials, items, concurrency, **kwargs)
    finally:
        for plugin in plugins:
            plugin.close()


def bare_pools(sim: SimulatorProcess, n: int, items: int, concurrency: int, start_in: float = 0.0) -> dict[str, float]:
    """`n` bare pools side by side, each `items` calls: summed requests per second, mean CPU per item."""
    start_at = time.time() + (start_in or 3.0 + n)  # after every pool has started and warmed up
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BARE_POOL, sim.base_url, sim.api_key, str(items), str(concurrency), str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    results = [json.loads(p.communicate()[0]) for p in procs]
    return {"rps": sum(r["rps"] for r in results), "cpu_ms": sum(r["cpu_ms"] for r in results) / n}


def cpu_per_request(redis_url: str, *, rounds: int, items: int, concurrency: int, latency_ms: int) -> dict[str, Any]:
    """Issue 24's jobs ratio: CPU ms per request of one plugin process working a job (batch_submit, the
    worker, the batch_status polls every 0.5 s) and of a bare requests + gevent pool on the same calls,
    per round, rounds interleaved. One plugin process serves every round, warmed by a small job first,
    as the pool warms its connections first; only the timed calls count on either side."""
    from bench.bench_client import own_redis_db

    jobs_ms: list[float] = []
    bare_ms: list[float] = []
    with SimulatorProcess(latency_ms=latency_ms) as sim, own_redis_db(redis_url), PluginProcess() as plugin:
        credentials = creds(sim, redis_url)
        run_job([plugin], credentials, concurrency * 4, concurrency)
        for _ in range(rounds):
            bare_ms.append(bare_pools(sim, 1, items, concurrency, start_in=1.5)["cpu_ms"])
            job = run_job([plugin], credentials, items, concurrency)
            if job["status"]["succeeded"] != items or not job["in_order"]:
                raise SystemExit(f"jobs: {job['status']['succeeded']} of {items} succeeded, in order {job['in_order']}")
            jobs_ms.append(job["cpu_ms"])
    return {"items": items, "concurrency": concurrency, "latency_ms": latency_ms, "jobs_cpu_ms": jobs_ms, "bare_cpu_ms": bare_ms}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="./dev bench jobs")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--scaling-latency-ms", type=int, default=400, help="latency of the scaling run (the host has CPU to spare)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--per-process-items", type=int, default=3000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--big-processes", type=int, default=4)
    parser.add_argument("--processes", default="1,2,4", help="process counts to run, comma-separated (the first is the reference)")
    parser.add_argument("--no-limit-run", action="store_true", help="skip the rpm_limit run")
    parser.add_argument("--quick", action="store_true", help="1,000 items per process, no rate-limit run, no big job")
    parser.add_argument("--client-pool", action="store_true", help="also time GatewayClient (redis_url set) in a bare gevent pool")
    args = parser.parse_args(argv)
    if args.quick:
        args.per_process_items, args.big, args.no_limit_run = 1000, 0, True
    counts = [int(x) for x in args.processes.split(",")]
    items, conc = args.per_process_items, args.concurrency
    redis.Redis.from_url(REDIS_URL).flushdb()
    with SimulatorProcess(latency_ms=args.latency_ms) as sim:
        credentials = creds(sim)
        print(f"latency {args.latency_ms} ms, concurrency {conc} per process, {os.cpu_count()} CPUs")
        bare = bare_pools(sim, 1, items, conc)
        one = jobs_on(1, credentials, items, conc)
        rps = one["status"]["requests_per_second"]
        print(
            f"one process, {items} items: {rps:.1f} req/s = {rps / bare['rps']:.2f}x a bare requests + gevent pool ({bare['rps']:.1f} req/s); "
            f"CPU per item {one['cpu_ms']:.2f} ms = {one['cpu_ms'] / bare['cpu_ms']:.2f}x the pool's {bare['cpu_ms']:.2f} ms; "
            f"in order {one['in_order']}, ok {one['status']['succeeded']}"
        )
        if args.client_pool:
            pool = json.loads(
                subprocess.run(
                    [sys.executable, "-c", CLIENT_POOL, sim.base_url, sim.api_key, str(items), str(conc), REDIS_URL],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            ratio = pool["rps"] / bare["rps"]
            print(f"GatewayClient (redis_url) + gevent pool (one process, no engine): {pool['rps']:.1f} req/s = {ratio:.2f}x bare")

        sim.configure(latency_ms=args.scaling_latency_ms)
        print(f"scaling, latency {args.scaling_latency_ms} ms (CPU to spare: the jobs' design, not the host):")
        reference = None
        for n in counts:
            result = jobs_on(n, credentials, items * n, conc)
            rps = result["status"]["requests_per_second"]
            reference = reference or rps / n
            print(
                f"  {n} process(es), {items * n} items: {rps:.1f} req/s = {rps / reference:.2f}x one process ({rps / reference / n:.2f} x N); "
                f"wall {result['wall_s']:.1f} s, in order {result['in_order']}, ok {result['status']['succeeded']}"
            )
        sim.configure(latency_ms=args.latency_ms)

        top = max(counts)
        print(f"the host's ceiling, latency {args.latency_ms} ms, {top} processes against {top} bare pools side by side:")
        pools = bare_pools(sim, top, items, conc)
        result = jobs_on(top, credentials, items * top, conc)
        rps = result["status"]["requests_per_second"]
        print(
            f"  {top} bare pools: {pools['rps']:.1f} req/s = {pools['rps'] / bare['rps']:.2f}x one pool ({pools['rps'] / bare['rps'] / top:.2f} x N)"
        )
        print(
            f"  {top} plugin processes: {rps:.1f} req/s = {rps / one['status']['requests_per_second']:.2f}x one process "
            f"({rps / one['status']['requests_per_second'] / top:.2f} x N) = {rps / pools['rps']:.2f}x the {top} bare pools; "
            f"CPU per item {result['cpu_ms']:.2f} ms against {pools['cpu_ms']:.2f} ms; in order {result['in_order']}"
        )
        if args.no_limit_run:
            return
        limited = jobs_on(2, credentials, 600, conc, rpm=3000)
        print(
            f"2 processes, rpm_limit 3000 (50/s): {limited['status']['requests_per_second']:.1f} req/s, "
            f"429s {sim.stats()['responses_by_status'].get('429', 0)}"
        )
        if not args.big:
            return
        big = jobs_on(args.big_processes, credentials, args.big, conc, sample=True)
        status = big["status"]
        print(
            f"{args.big} items on {args.big_processes} processes: {status['succeeded']} ok, {status['failed']} failed, "
            f"in order {big['in_order']}, {status['requests_per_second']:.1f} req/s, wall {big['wall_s']:.0f} s (submit {big['submit_s']:.1f} s), "
            f"p50 {status['latency_p50_ms']} ms p99 {status['latency_p99_ms']} ms"
        )
        for progress, rss in big["samples"]:
            print(f"  at {progress:5.1%}: RSS per process (MiB) " + ", ".join(f"{r:.1f}" for r in rss))


if __name__ == "__main__":
    main(sys.argv[1:])
