"""Client overhead per sequential call against the simulator, side by side in one run:
our GatewayClient vs a bare requests.Session vs the official openai client (same calls, same server).

    ./dev bench client [--calls 300] [--rounds 3] [--redis [URL]]

With --redis the client also runs with `redis_url` set (shared breaker, limiter and metrics in Redis,
no limits configured), and the Redis round trips per call are counted (database 10 by default).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import openai
import requests

from gateway import ChatRequest, GatewayClient, GatewayConfig
from gateway.state.shared import InProcessState
from simulator.harness import SimulatorProcess

REDIS_URL = "redis://127.0.0.1:6379/10"


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


def per_call_ms(fn: Callable[[int], object], calls: int) -> float:
    for i in range(20):  # warm the connection pool and caches
        fn(i)
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) * 1000 / calls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", nargs="?", const=REDIS_URL, default="", help="also run the client with this redis_url")
    args = parser.parse_args(argv)
    with SimulatorProcess() as sim:
        ours = GatewayClient(GatewayConfig.from_credentials({"api_key": sim.api_key, "base_url": sim.base_url}), state=InProcessState())
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {sim.api_key}"
        official = openai.OpenAI(api_key=sim.api_key, base_url=sim.base_url, max_retries=0)
        messages = [{"role": "user", "content": "benchmark prompt"}]
        trips = None
        if args.redis:
            from gateway.state.backends import state_for

            config = GatewayConfig.from_credentials({"api_key": sim.api_key, "base_url": sim.base_url, "redis_url": args.redis})
            with_redis = GatewayClient(config, state=state_for(args.redis))
            for _ in range(5):
                with_redis.chat(ChatRequest(messages=messages, model="deepseek-v3.2"))
            trips = RoundTrips()
            for _ in range(100):
                with_redis.chat(ChatRequest(messages=messages, model="deepseek-v3.2"))
            trips.close()

        def bare(i: int) -> object:
            response = session.post(f"{sim.base_url}/chat/completions", json={"model": "deepseek-v3.2", "messages": messages})
            return json.loads(response.content)["choices"][0]["message"]["content"]

        candidates: dict[str, Callable[[int], object]] = {
            "bare requests.Session": bare,
            "holysheep GatewayClient": lambda i: ours.chat(ChatRequest(messages=messages, model="deepseek-v3.2")).text,
            **(
                {"holysheep + redis_url": lambda i: with_redis.chat(ChatRequest(messages=messages, model="deepseek-v3.2")).text} if args.redis else {}
            ),
            "openai.OpenAI": lambda i: official.chat.completions.create(model="deepseek-v3.2", messages=messages).choices[0].message.content,
        }
        results: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.rounds):  # interleaved rounds, so drift on a shared machine hits all alike
            for name, fn in candidates.items():
                results[name].append(per_call_ms(fn, args.calls))
    baseline = statistics.median(results["bare requests.Session"])
    print(f"sequential chat calls against the simulator: {args.calls} calls x {args.rounds} rounds (median)")
    print(f"{'client':28} {'ms/call':>9} {'vs bare requests':>18}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:28} {median:9.3f} {median / baseline:17.2f}x")
    if trips is not None:
        print(f"Redis round trips per call with redis_url set, no limits: {trips.count / 100:.2f}")


if __name__ == "__main__":
    main()
