"""./dev bench profile [batch|bare-pool|client|client-redis|bare-client|jobs|all] [--seconds 15] [--out DIR]:
run one of the four ratio workloads under py-spy (installed in .venv) and summarise where OUR code
spends its samples, so a change can be profiled before and after the same way.

- batch: batch_chat (500 items, 50 ms, concurrency 64) in a loop; py-spy attached to the plugin process;
  bare-pool: the bare requests + gevent pool of the batch ratio on the same calls, for comparison;
- client / client-redis / bare-client: sequential chat calls in this process (GatewayClient without and
  with redis_url on database 13, or a bare requests.Session for comparison); py-spy attached to it;
- jobs: one job of many items worked by one plugin process (100 ms, concurrency 16, database 13).

The raw stacks go to DIR/<name>.txt (py-spy's collapsed format, one stack and its count per line; feed
them to flamegraph.pl or speedscope for a picture). The summary prints, over samples with the GIL held
and the process not idle: the top functions of ours by self time (the frame running), by cumulative
time (anywhere on the stack), and the top leaves anywhere (library code included) charged to the
nearest function of ours that called them; each as a share of the samples and as microseconds of
GIL-held time per chat call (the calls that reached the simulator while sampled).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PY_SPY = Path(sys.executable).parent / "py-spy"
REDIS_URL = "redis://127.0.0.1:6379/13"
CHAT_PATH = "/v1/chat/completions"
OURS = ("gateway/", "jobs/", "tools/", "approval/", "provider/", "main.py", "group/", "endpoints/")


RATE = 250  # samples per second: one sample stands for 4 ms of time holding the GIL


def record(sim: Any, pid: int, seconds: float, out: Path, work: Callable[[], object]) -> int:
    """Sample `pid` for `seconds` while `work` runs again and again in a thread; the chat calls that
    reached the simulator meanwhile."""
    command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(RATE)]
    command += ["--format", "raw", "--full-filenames", "--function", "--gil", "--output", str(out)]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            work()

    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)  # attached before the counting starts
    sim.reset()
    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    _, err = proc.communicate()
    calls = int(sim.stats()["requests_by_path"].get(CHAT_PATH, 0))
    stop.set()
    worker.join()
    if proc.returncode:
        raise SystemExit(f"py-spy failed: {err.decode(errors='replace')}")
    return calls


def profile_batch(seconds: float, out: Path) -> int:
    from devtools.plugin_process import PluginProcess
    from simulator.harness import SimulatorProcess

    with SimulatorProcess(latency_ms=50) as sim, PluginProcess() as plugin:
        credentials = {"api_key": sim.api_key, "base_url": sim.base_url, "default_model": "deepseek-v3.2"}
        params = {"prompts": json.dumps([f"item {i}" for i in range(500)]), "concurrency": 64}
        plugin.run_tool("batch_chat", params, credentials)
        assert plugin.process is not None
        return record(sim, plugin.process.pid, seconds, out, lambda: plugin.run_tool("batch_chat", params, credentials))


def profile_bare_pool(seconds: float, out: Path) -> int:
    from bench.bench_batch import Worker, parser
    from simulator.harness import SimulatorProcess

    with SimulatorProcess(latency_ms=50) as sim:
        worker = Worker("gevent", sim, parser().parse_args([]))
        try:
            return record(sim, worker.proc.pid, seconds, out, worker.run)
        finally:
            worker.close()


def profile_jobs(seconds: float, out: Path) -> int:
    from bench.bench_client import own_redis_db
    from bench.bench_jobs import creds, run_job
    from devtools.plugin_process import PluginProcess
    from simulator.harness import SimulatorProcess

    with SimulatorProcess(latency_ms=100) as sim, own_redis_db(REDIS_URL), PluginProcess() as plugin:
        credentials = creds(sim, REDIS_URL)
        run_job([plugin], credentials, 64, 16)
        assert plugin.process is not None
        # Jobs of about ten seconds (one process does about 150 requests a second here).
        return record(sim, plugin.process.pid, seconds, out, lambda: run_job([plugin], credentials, 1500, 16))


def profile_client(kind: str, seconds: float, out: Path) -> int:
    from bench.bench_client import BARE, OURS_REDIS, candidates, own_redis_db
    from bench.bench_client import OURS as CLIENT
    from simulator.harness import SimulatorProcess

    redis_url = REDIS_URL if kind == "client-redis" else ""
    name = {"client": CLIENT, "client-redis": OURS_REDIS, "bare-client": BARE}[kind]
    with SimulatorProcess() as sim, own_redis_db(REDIS_URL):
        call = candidates(sim.base_url, sim.api_key, redis_url, with_openai=False)[name]
        for _ in range(50):
            call()
        return record(sim, os.getpid(), seconds, out, call)


def ours(frame: str) -> bool:
    path = frame.rsplit("(", 1)[-1].rstrip(")")
    relative = path.removeprefix(str(REPO_ROOT) + "/")
    return relative != path and relative.startswith(OURS) and "/.venv/" not in path


def short(frame: str) -> str:
    """'name (/abs/path/file.py:12)' -> 'path/file.py:name'."""
    name, _, where = frame.rpartition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    path = path.removeprefix(str(REPO_ROOT) + "/")
    for marker in ("site-packages/", "/lib/python3.12/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{name}"


def summarise(raw: Path, calls: int, top: int = 15) -> str:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append((stack.split(";"), int(count)))
    total = sum(count for _, count in stacks) or 1
    own_self: collections.Counter[str] = collections.Counter()
    cumulative: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    in_ours = 0
    for frames, count in stacks:
        mine = [f for f in frames if ours(f)]
        if mine:
            in_ours += count
        if ours(frames[-1]):
            own_self[short(frames[-1])] += count
        for name in {short(f) for f in mine}:
            cumulative[name] += count
        caller = short(mine[-1]) if mine else "(no frame of ours)"
        leaves[f"{short(frames[-1])}  <- {caller}"] += count
    per_call_us = 1e6 / RATE / max(calls, 1)  # GIL-held time one sample stands for, spread over the calls
    lines = [
        f"{raw.name}: {total} samples (GIL held), {calls} chat calls: {total * per_call_us:.0f} us of GIL per call; "
        f"{in_ours / total:.1%} of samples with a frame of ours on the stack"
    ]
    for title, counter in (("self, ours", own_self), ("cumulative, ours", cumulative), ("leaf <- nearest caller of ours", leaves)):
        lines.append(f"  top {title} (share of samples, us per call):")
        lines += [f"    {count / total:6.1%} {count * per_call_us:7.1f}  {name}" for name, count in counter.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    kinds = ["batch", "bare-pool", "client", "client-redis", "bare-client", "jobs"]
    parser = argparse.ArgumentParser(prog="./dev bench profile", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="?", default="all", choices=[*kinds, "all"])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--out", type=Path, default=Path("/tmp/holysheep-profiles"))
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    if not PY_SPY.exists():
        sys.exit(f"py-spy not found at {PY_SPY} (pip install py-spy into the dev virtualenv)")
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in kinds if args.which == "all" else [args.which]:
        out = args.out / f"{kind}.txt"
        if kind == "batch":
            calls = profile_batch(args.seconds, out)
        elif kind == "bare-pool":
            calls = profile_bare_pool(args.seconds, out)
        elif kind == "jobs":
            calls = profile_jobs(args.seconds, out)
        else:
            calls = profile_client(kind, args.seconds, out)
        print(summarise(out, calls, args.top), flush=True)
        print()


if __name__ == "__main__":
    main()
