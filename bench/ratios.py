"""`./dev bench` with no argument: issue 24's four speed ratios in one run, each against a baseline
measured in the same run on the same local simulator, each with its target and PASS / FAIL.

1. batch_chat through the plugin runtime (`python -m main`, JSON lines on stdio, as Dify starts it)
   against a bare `requests` + gevent pool on the same calls: throughput, target >= 0.95x;
2. `GatewayClient.chat` against a bare `requests.Session` doing the same POSTs: time per sequential
   call, target <= 1.05x;
3. the same client with `redis_url` (real Redis, database 13, emptied before and after) against the
   bare Session: target <= 1.3x;
4. a batch job (batch_submit, then worked by the plugin process) against the bare pool: CPU seconds
   per request, target <= 1.5x.

Stability: every measurement is repeated in interleaved rounds (contestant and baseline back to back,
so drift on a shared machine hits both alike); the ratio printed is the median of the per-round
ratios, with the lowest and highest round after it. The client's contestants take turns of 25 calls
within a round: its ratios are the median over every turn (and the quartiles after it).
About a minute and a half on two cores.

    ./dev bench [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

REDIS_URL = "redis://127.0.0.1:6379/13"


@dataclass(frozen=True)
class Ratio:
    """One contestant against its same-run baseline: the median of the per-round ratios."""

    name: str
    samples: list[float]  # one ratio per round (per turn of 25 calls for the client)
    target: float
    at_least: bool  # True: the ratio must reach the target (throughput); False: stay under it (cost)
    detail: str

    @property
    def value(self) -> float:
        return statistics.median(self.samples)

    @property
    def passed(self) -> bool:
        return self.value >= self.target if self.at_least else self.value <= self.target

    def line(self) -> str:
        bound = ">=" if self.at_least else "<="
        low, high = statistics.quantiles(self.samples, n=4)[0::2] if len(self.samples) >= 8 else (min(self.samples), max(self.samples))
        spread = f"{'quartiles' if len(self.samples) >= 8 else 'rounds'} {low:.2f}-{high:.2f}"
        verdict = "PASS" if self.passed else "FAIL"
        return f"{self.name:36} {self.value:5.2f}x  (target {bound} {self.target:.2f}x)  {verdict}  {spread}; {self.detail}"


def batch_ratio(run: dict[str, Any]) -> Ratio:
    from bench.bench_batch import GEVENT, TOOL

    tool, pool = run["walls"][TOOL], run["walls"][GEVENT]
    n = run["items"]
    detail = f"{n / statistics.median(tool):.0f} vs {n / statistics.median(pool):.0f} req/s"
    # Throughput ratio = pool wall / tool wall, per round.
    return Ratio("batch_chat (runtime) / gevent pool", [p / t for t, p in zip(tool, pool, strict=True)], 0.95, True, detail)


def client_ratio(run: dict[str, Any], name: str) -> Ratio:
    from bench.bench_client import BARE, OURS

    ours, bare = run["ms"][name], run["ms"][BARE]
    detail = f"{statistics.median(ours):.3f} vs {statistics.median(bare):.3f} ms/call (median round)"
    if run.get("redis_trips_per_call") is not None and name != OURS:
        detail += f", {run['redis_trips_per_call']:.2f} Redis round trips per call"
    label, target = ("client / requests.Session", 1.05) if name == OURS else ("client+redis_url / requests.Session", 1.3)
    # Per turn of 25 calls, not per round: adjacent turns share the machine's load of the moment.
    turns = [o / b for o, b in zip(run["turns"][name], run["turns"][BARE], strict=True)]
    return Ratio(label, turns, target, False, detail)


def jobs_ratio(run: dict[str, Any]) -> Ratio:
    jobs, bare = run["jobs_cpu_ms"], run["bare_cpu_ms"]
    detail = f"{statistics.median(jobs):.2f} vs {statistics.median(bare):.2f} CPU ms/request"
    return Ratio("jobs CPU / gevent pool CPU", [j / b for j, b in zip(jobs, bare, strict=True)], 1.5, False, detail)


def main(argv: list[str] | None = None) -> None:
    import os

    from bench import bench_batch, bench_client, bench_jobs

    parser = argparse.ArgumentParser(prog="./dev bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the batch and client ratios (jobs: 3, or fewer if this is lower)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, fewer calls and items: a rough look")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    started = time.perf_counter()
    batch_args = bench_batch.parser().parse_args(["--rounds", str(rounds), "--no-openai"])
    jobs_rounds = min(rounds, 3)
    print(f"{os.cpu_count()} CPUs; {rounds} interleaved rounds (jobs: {jobs_rounds}); each ratio is the median of its per-round ratios", flush=True)
    print("(client: of its per-turn ratios, 25 calls a turn), with the spread after it", flush=True)
    batch = batch_ratio(bench_batch.measure(batch_args))
    print(f"  batch: {batch_args.items} items, {batch_args.latency_ms} ms simulated latency, concurrency {batch_args.concurrency}", flush=True)
    client = bench_client.measure(150 if args.quick else 300, rounds, REDIS_URL, with_openai=False)
    print(f"  client: {client['calls']} sequential calls per round, no simulated latency", flush=True)
    settings = SimpleNamespace(items=600 if args.quick else 1000, concurrency=16, latency_ms=100)
    jobs = bench_jobs.cpu_per_request(REDIS_URL, rounds=jobs_rounds, **vars(settings))
    print(f"  jobs: {settings.items} items per job, one plugin process, concurrency {settings.concurrency}, {settings.latency_ms} ms latency")
    ratios = [batch, client_ratio(client, bench_client.OURS), client_ratio(client, bench_client.OURS_REDIS), jobs_ratio(jobs)]
    print()
    for ratio in ratios:
        print(ratio.line())
    failed = sum(not r.passed for r in ratios)
    print(f"{len(ratios) - failed} of {len(ratios)} targets met, in {time.perf_counter() - started:.0f} s")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"warning: load average {load:.1f} on {os.cpu_count()} CPUs: other work shared the machine, the ratios are noisy")
