"""./dev bench jobs: batch jobs through the plugin runtime on 1, 2 and 4 plugin processes sharing the
real Redis, against the simulator (fixed latency): throughput per process count, against a bare
`requests` + gevent pool on the same calls (same concurrency, measured in the same run), the rate
limit binding, and a 100,000-item job on 4 processes with each process's memory sampled as it runs.

`--quick` is a shorter run (1,000 items per process, no rate-limit run, no 100,000-item job): the
ratios in about a minute. Needs Redis on 127.0.0.1:6379 (uses database 10 and empties it)."""

from __future__ import annotations

import argparse
import json
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
base, key, n, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = requests.Session(); s.headers["Authorization"] = "Bearer " + key
s.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=conc, max_retries=0))
def call(i):
    r = s.post(base + "/chat/completions", json={"model": "deepseek-v3.2", "messages": [{"role": "user", "content": f"bare {i}"}]}, timeout=60)
    return r.status_code == 200 and bool(r.json()["choices"][0]["message"]["content"])
list(gevent.pool.Pool(conc).imap(call, range(conc * 2)))
t = time.perf_counter(); ok = sum(gevent.pool.Pool(conc).imap(call, range(n))); wall = time.perf_counter() - t
print(json.dumps({"rps": n / wall, "ok": ok}))
"""

# The same calls through GatewayClient alone (redis_url set: shared breaker, 429 pause and metrics in
# Redis; no jobs engine, no plugin runtime): what the client costs, apart from the engine around it.
CLIENT_POOL = """
from gevent import monkey; monkey.patch_all()
import json, sys, time, gevent.pool
from gateway import CallOptions, ChatRequest, GatewayClient, GatewayConfig
from gateway.backends import state_for
base, key, n, conc, redis_url = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
config = GatewayConfig.from_credentials({"api_key": key, "base_url": base, "redis_url": redis_url, "max_retries": "2"})
client = GatewayClient(config, state=state_for(redis_url))
client.ensure_pool(conc)
def call(i):
    return bool(client.chat(ChatRequest.from_prompt(f"client {i}", model="deepseek-v3.2"), CallOptions(tool="batch_submit")).text)
list(gevent.pool.Pool(conc).imap(call, range(conc * 2)))
t = time.perf_counter(); ok = sum(gevent.pool.Pool(conc).imap(call, range(n))); wall = time.perf_counter() - t
print(json.dumps({"rps": n / wall, "ok": ok}))
"""


def creds(sim: SimulatorProcess) -> dict[str, Any]:
    return {"api_key": sim.api_key, "base_url": sim.base_url, "redis_url": REDIS_URL, "max_retries": "2"}


def tool(plugin: PluginProcess, name: str, params: dict[str, Any], credentials: dict[str, Any]) -> dict[str, Any]:
    outcome = plugin.run_tool(name, params, credentials, timeout=600)
    if not outcome.ok:
        raise RuntimeError(outcome.error_message)
    return outcome.variables


def run_job(
    plugins: list[PluginProcess], credentials: dict[str, Any], items: int, concurrency: int, *, rpm: int = 0, sample: bool = False
) -> dict[str, Any]:
    prompts = json.dumps([f"item {i}" for i in range(items)])
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
    # Input order: the whole job, page by page, must come back as submitted.
    offset, in_order = 0, True
    while offset < items:
        page = tool(plugins[-1], "batch_results", {"job_id": job["job_id"], "offset": offset, "limit": 1000, "files": "none"}, credentials)
        in_order &= [r["id"] for r in page["results"]] == [str(i) for i in range(offset, offset + len(page["results"]))]
        offset = page.get("next_offset", items)
    return {"status": status, "wall_s": wall, "submit_s": submitted, "in_order": in_order, "samples": samples}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="./dev bench jobs")
    parser.add_argument("--latency-ms", type=int, default=100)
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
    redis.Redis.from_url(REDIS_URL).flushdb()
    with SimulatorProcess(latency_ms=args.latency_ms) as sim:
        credentials = creds(sim)
        bare = json.loads(
            subprocess.run(
                [sys.executable, "-c", BARE_POOL, sim.base_url, sim.api_key, str(args.per_process_items), str(args.concurrency)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        print(f"latency {args.latency_ms} ms, concurrency {args.concurrency} per process")
        print(f"bare requests + gevent pool (one process): {bare['rps']:.1f} req/s")
        if args.client_pool:
            pool = json.loads(
                subprocess.run(
                    [sys.executable, "-c", CLIENT_POOL, sim.base_url, sim.api_key, str(args.per_process_items), str(args.concurrency), REDIS_URL],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            ratio = pool["rps"] / bare["rps"]
            print(f"GatewayClient (redis_url) + gevent pool (one process, no engine): {pool['rps']:.1f} req/s = {ratio:.2f}x bare")
        one = None
        for n in (int(x) for x in args.processes.split(",")):
            plugins = [PluginProcess().start() for _ in range(n)]
            try:
                result = run_job(plugins, credentials, args.per_process_items * n, args.concurrency)
            finally:
                for plugin in plugins:
                    plugin.close()
            rps = result["status"]["requests_per_second"]
            one = one or rps
            print(
                f"{n} process(es), {args.per_process_items * n} items: {rps:.1f} req/s = {rps / one:.2f}x one process "
                f"({rps / one / n:.2f} x N), one process vs bare pool {one / bare['rps']:.2f}x; "
                f"wall {result['wall_s']:.1f} s, in order {result['in_order']}, ok {result['status']['succeeded']}"
            )
        if args.no_limit_run:
            return
        plugins = [PluginProcess().start() for _ in range(2)]
        try:
            limited = run_job(plugins, credentials, 600, args.concurrency, rpm=3000)
        finally:
            for plugin in plugins:
                plugin.close()
        print(
            f"2 processes, rpm_limit 3000 (50/s): {limited['status']['requests_per_second']:.1f} req/s, "
            f"429s {sim.stats()['responses_by_status'].get('429', 0)}"
        )
        if not args.big:
            return
        plugins = [PluginProcess().start() for _ in range(args.big_processes)]
        try:
            big = run_job(plugins, credentials, args.big, args.concurrency, sample=True)
        finally:
            for plugin in plugins:
                plugin.close()
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
