"""Batch throughput (issue 4), side by side in one run against one simulator (default: 500 items,
50 ms simulated latency, concurrency 64):

  (a) the `batch_chat` tool through the real plugin runtime (`python -m main`, JSON lines on stdio),
  (b) bare `requests` on a gevent pool (monkey-patched, in a subprocess),
  (c) `openai.AsyncOpenAI` with an asyncio.Semaphore and asyncio.gather (in a subprocess).

Every contestant is warmed up first, the simulator's stats are reset before each timed run, and each
run must send exactly `--items` chat requests. Rounds are interleaved; medians are reported, and the
ratio tool / gevent pool is the median of the per-round ratios (issue 24's target: at least 0.95x).

    ./dev bench batch [--items 500] [--latency-ms 50] [--concurrency 64] [--rounds 5] [--warmup 64] [--no-openai]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL = "deepseek-v3.2"
CHAT_PATH = "/v1/chat/completions"
# gevent must patch before anything else is imported, so the worker is started through -c.
GEVENT_BOOT = "from gevent import monkey; monkey.patch_all()\nimport sys\nfrom bench.bench_batch import main\nmain(sys.argv[1:])"


def body(prompt: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}


# ---------------------------------------------------------------------------- workers (subprocesses)
# Protocol: the worker warms up, prints "ready"; then for every "go" line on stdin it runs the batch
# and prints one JSON line; it exits at EOF.


def gevent_worker(args: argparse.Namespace) -> None:
    import gevent.pool
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.api_key}"
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=args.concurrency, max_retries=0))
    url = f"{args.base_url}/chat/completions"

    def call(prompt: str) -> bool:
        try:
            response = session.post(url, json=body(prompt), timeout=60)
            return response.status_code == 200 and bool(json.loads(response.content)["choices"][0]["message"]["content"])
        except (requests.RequestException, ValueError, KeyError, IndexError):
            return False

    def run(prompts: list[str]) -> list[bool]:
        return list(gevent.pool.Pool(args.concurrency).imap(call, prompts))

    serve(args, run)


def openai_worker(args: argparse.Namespace) -> None:
    import asyncio

    import openai

    async def amain() -> None:
        client = openai.AsyncOpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=60)
        semaphore = asyncio.Semaphore(args.concurrency)

        async def call(prompt: str) -> bool:
            async with semaphore:
                try:
                    completion = await client.chat.completions.create(**body(prompt))
                except openai.OpenAIError:
                    return False
                return bool(completion.choices[0].message.content)

        async def run(prompts: list[str]) -> list[bool]:
            return list(await asyncio.gather(*(call(p) for p in prompts)))

        loop = asyncio.get_running_loop()
        await run([f"warm-up {i}" for i in range(args.warmup)])
        print("ready", flush=True)
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
            started = time.perf_counter()
            ok = await run([f"item {i}" for i in range(args.items)])
            report(started, ok)
        await client.close()

    asyncio.run(amain())


def serve(args: argparse.Namespace, run: Any) -> None:
    run([f"warm-up {i}" for i in range(args.warmup)])
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        started = time.perf_counter()
        ok = run([f"item {i}" for i in range(args.items)])
        report(started, ok)


def report(started: float, ok: list[bool]) -> None:
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "ok": sum(ok), "failed": len(ok) - sum(ok)}), flush=True)


class Worker:
    """A worker subprocess driven over stdin/stdout."""

    def __init__(self, kind: str, sim: Any, args: argparse.Namespace) -> None:
        flags = ["--worker", kind, "--base-url", sim.base_url, "--api-key", sim.api_key]
        flags += ["--items", str(args.items), "--concurrency", str(args.concurrency), "--warmup", str(args.warmup)]
        command = [sys.executable, "-c", GEVENT_BOOT, *flags] if kind == "gevent" else [sys.executable, "-m", "bench.bench_batch", *flags]
        self.kind = kind
        self.proc = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self._line() != "ready":
            raise SystemExit(f"{kind} worker did not start")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.kind} worker exited (code {self.proc.wait()})")
        return line.strip()

    def run(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return dict(json.loads(self._line()))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------- driver


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=64, help="warm-up calls per contestant (default: one per connection)")
    parser.add_argument("--no-openai", dest="openai", action="store_false", help="skip openai.AsyncOpenAI (the ratio needs only the pool)")
    parser.add_argument("--worker", choices=["gevent", "openai-async"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.worker == "gevent":
        gevent_worker(args)
    elif args.worker == "openai-async":
        openai_worker(args)
    else:
        from bench.ratios import batch_ratio

        run = measure(args)
        print_table(args, run)
        print(batch_ratio(run).line())


TOOL, GEVENT, OPENAI = "batch_chat tool (plugin)", "requests + gevent pool", "openai.AsyncOpenAI"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved rounds of every contestant on one simulator: wall seconds per round, by contestant."""
    from devtools.plugin_process import PluginProcess
    from simulator.harness import SimulatorProcess

    n = args.items
    kinds = {GEVENT: "gevent", **({OPENAI: "openai-async"} if args.openai else {})}
    with SimulatorProcess(latency_ms=args.latency_ms) as sim, PluginProcess() as plugin:
        credentials = {"api_key": sim.api_key, "base_url": sim.base_url, "default_model": MODEL}

        def invoke(prompts: list[str]) -> tuple[float, dict[str, Any]]:
            params = {"prompts": json.dumps(prompts), "concurrency": args.concurrency}
            started = time.perf_counter()
            outcome = plugin.invoke_tool("batch_chat", params, credentials).outcome()
            wall = time.perf_counter() - started
            if not outcome.ok:
                raise SystemExit(f"batch_chat failed: {outcome.error_message}")
            return wall, outcome.variables

        invoke([f"warm-up {i}" for i in range(args.warmup)])
        workers = {name: Worker(kind, sim, args) for name, kind in kinds.items()}
        walls: dict[str, list[float]] = {TOOL: [], **{name: [] for name in workers}}
        tool_rps: list[float] = []
        peaks: dict[str, list[int]] = {name: [] for name in walls}
        try:
            for _ in range(args.rounds):  # interleaved rounds, so drift on a shared machine hits all alike
                sim.reset()
                wall, variables = invoke([f"item {i}" for i in range(n)])
                check(sim, TOOL, n, variables["succeeded"], variables["failed"], peaks)
                walls[TOOL].append(wall)
                tool_rps.append(float(variables["requests_per_second"]))
                for name, worker in workers.items():
                    sim.reset()
                    result = worker.run()
                    check(sim, name, n, result["ok"], result["failed"], peaks)
                    walls[name].append(float(result["wall_s"]))
            peak_rss = plugin.peak_rss_bytes
        finally:
            for worker in workers.values():
                worker.close()
    return {"items": n, "walls": walls, "peaks": peaks, "tool_rps": tool_rps, "peak_rss": peak_rss}


def print_table(args: argparse.Namespace, run: dict[str, Any]) -> None:
    n, walls, peaks = run["items"], run["walls"], run["peaks"]
    print(f"{n} chat items, {args.latency_ms} ms simulated latency, concurrency {args.concurrency}, {args.rounds} rounds (median)")
    ideal_ms = math.ceil(n / args.concurrency) * args.latency_ms
    print(f"ideal (latency-bound): {n} items in {ideal_ms} ms = {n / ideal_ms * 1000:.0f} req/s")
    rps = {name: n / statistics.median(values) for name, values in walls.items()}
    print(f"{'contestant':28} {'req/s':>8} {'wall ms':>9} {'server max conc.':>17}")
    for name, values in walls.items():
        print(f"{name:28} {rps[name]:8.0f} {statistics.median(values) * 1000:9.0f} {statistics.median(peaks[name]):17.0f}")
    print(f"  tool's own figure: requests_per_second {statistics.median(run['tool_rps']):.0f} (timed inside the plugin)")
    if OPENAI in rps:
        print(f"ratio tool / openai-async:  {rps[TOOL] / rps[OPENAI]:.2f}x")
    print(f"plugin process peak RSS: {run['peak_rss'] / 2**20:.1f} MiB")


def check(sim: Any, name: str, n: int, ok: int, failed: int, peaks: dict[str, list[int]]) -> None:
    stats = sim.stats()
    sent = stats["requests_by_path"].get(CHAT_PATH, 0)
    if sent != n or ok != n or failed:
        raise SystemExit(f"{name}: {sent} chat requests reached the simulator, {ok} ok, {failed} failed; expected exactly {n} ok")
    peaks[name].append(int(stats["max_concurrency"]))


if __name__ == "__main__":
    main()
