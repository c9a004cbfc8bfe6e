"""Client overhead per sequential call against the simulator, side by side in one run:
our GatewayClient vs a bare requests.Session vs the official openai client (same calls, same server).

    ./dev bench client [--calls 300] [--rounds 5] [--redis [URL]]

With --redis the client also runs with `redis_url` set (shared breaker, limiter and metrics in Redis,
no limits configured; database 13 by default, emptied before and after: it is the bench's own), and
the Redis round trips per call are counted. Within a round the contestants take turns of 25 calls, so
drift on a shared machine hits all alike; a ratio is the median, over every turn of every round, of
the contestant's turn against the baseline's turn just before it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

REDIS_URL = "redis://127.0.0.1:6379/13"
MODEL = "deepseek-v3.2"
BARE, OURS, OURS_REDIS, OPENAI = "bare requests.Session", "holysheep GatewayClient", "holysheep + redis_url", "openai.OpenAI"


class RoundTrips:
    """Counts the requests this process sends to Redis (a command, a pipeline or a script call is one)."""

    def __init__(self) -> None:
        import redis.connection

        self.count = 0
        self._connection = redis.connection.Connection
        self._send = self._connection.send_packed_command
        counter = self

        def send(conn: object, command: object, check_health: bool = True) -> None:
            counter.count += 1
            counter._send(conn, command, check_health)  # type: ignore[arg-type]

        self._connection.send_packed_command = send  # type: ignore[method-assign]

    def close(self) -> None:
        self._connection.send_packed_command = self._send  # type: ignore[method-assign]


@contextmanager
def own_redis_db(url: str) -> Iterator[None]:
    """The bench's own database, empty before and after (other helpers' tests use other databases)."""
    import redis

    db = redis.Redis.from_url(url)
    db.flushdb()
    try:
        yield
    finally:
        db.flushdb()
        db.close()


CHUNK = 25  # calls per contestant per turn: contestants alternate every few milliseconds within a round


def one_round(chosen: dict[str, Callable[[], object]], calls: int) -> dict[str, list[float]]:
    """ms per call of every contestant in each of its turns of CHUNK calls (`calls` calls in all):
    contestants take turns, so a burst of load from another process falls on every contestant alike,
    and turn i of one contestant is compared with turn i of another."""
    for fn in chosen.values():
        for _ in range(20):  # warm the connection pool and caches
            fn()
    turns: dict[str, list[float]] = {name: [] for name in chosen}
    for _ in range(max(1, calls // CHUNK)):
        for name, fn in chosen.items():
            started = time.perf_counter()
            for _ in range(CHUNK):
                fn()
            turns[name].append((time.perf_counter() - started) * 1000 / CHUNK)
    return turns


def candidates(base_url: str, api_key: str, redis_url: str, with_openai: bool) -> dict[str, Callable[[], object]]:
    import requests

    from gateway import ChatRequest, GatewayClient, GatewayConfig
    from gateway.state.shared import InProcessState

    messages = [{"role": "user", "content": "benchmark prompt"}]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    url = f"{base_url}/chat/completions"

    def bare() -> object:
        response = session.post(url, json={"model": MODEL, "messages": messages})
        return json.loads(response.content)["choices"][0]["message"]["content"]

    ours = GatewayClient(GatewayConfig.from_credentials({"api_key": api_key, "base_url": base_url}), state=InProcessState())
    chosen: dict[str, Callable[[], object]] = {BARE: bare, OURS: lambda: ours.chat(ChatRequest(messages=messages, model=MODEL)).text}
    if redis_url:
        from gateway.client import ClientRegistry

        config = GatewayConfig.from_credentials({"api_key": api_key, "base_url": base_url, "redis_url": redis_url})
        with_redis = ClientRegistry().client(config)  # as the plugin's tools get theirs: state, cache and metrics in Redis
        chosen[OURS_REDIS] = lambda: with_redis.chat(ChatRequest(messages=messages, model=MODEL)).text
    if with_openai:
        import openai

        official = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0)
        chosen[OPENAI] = lambda: official.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content  # type: ignore[arg-type]
    return chosen


def measure(calls: int, rounds: int, redis_url: str = "", with_openai: bool = True) -> dict[str, Any]:
    """ms per call of every contestant, per round, and the Redis round trips per call with redis_url."""
    from simulator.harness import SimulatorProcess

    with SimulatorProcess() as sim, (own_redis_db(redis_url) if redis_url else _nothing()):
        chosen = candidates(sim.base_url, sim.api_key, redis_url, with_openai)
        trips_per_call = None
        if redis_url:
            for _ in range(5):
                chosen[OURS_REDIS]()
            trips = RoundTrips()
            for _ in range(100):
                chosen[OURS_REDIS]()
            trips.close()
            trips_per_call = trips.count / 100
        results: dict[str, list[float]] = {name: [] for name in chosen}
        turns: dict[str, list[float]] = {name: [] for name in chosen}
        for _ in range(rounds):
            for name, ms in one_round(chosen, calls).items():
                results[name].append(statistics.fmean(ms))
                turns[name] += ms
    return {"calls": calls, "rounds": rounds, "ms": results, "turns": turns, "redis_trips_per_call": trips_per_call}


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def main(argv: list[str] | None = None) -> None:
    from bench.ratios import client_ratio

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", nargs="?", const=REDIS_URL, default="", help="also run the client with this redis_url")
    args = parser.parse_args(argv)
    run = measure(args.calls, args.rounds, args.redis)
    baseline = statistics.median(run["ms"][BARE])
    print(f"sequential chat calls against the simulator: {args.calls} calls x {args.rounds} rounds (median)")
    print(f"{'client':28} {'ms/call':>9} {'vs bare requests':>18}")
    for name, values in run["ms"].items():
        median = statistics.median(values)
        print(f"{name:28} {median:9.3f} {median / baseline:17.2f}x")
    if run["redis_trips_per_call"] is not None:
        print(f"Redis round trips per call with redis_url set, no limits: {run['redis_trips_per_call']:.2f}")
    print(client_ratio(run, OURS).line())
    if args.redis:
        print(client_ratio(run, OURS_REDIS).line())


if __name__ == "__main__":
    main()
