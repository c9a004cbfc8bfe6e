"""Pacing over one real minute, through the plugin runtime, against the simulator (run on demand:
`./dev bench pacing`, about two minutes).

1. rpm_limit 600 against a gateway that accepts 10 requests per fixed one-second window: rejections,
   the most requests in any fixed second and in any sliding 1 s / 10 s / 60 s window, and the share of
   the limit used over the first minute.
2. No limit configured, the gateway accepting 5 per fixed second and saying so in x-ratelimit-*
   headers: 429s over the batch and the share of 5/s used.
"""

from __future__ import annotations

import json
import time
from typing import Any

from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess


def most_in_window(arrivals: list[float], length: float) -> int:
    most, start = 0, 0
    for end, t in enumerate(arrivals):
        while t - arrivals[start] >= length:
            start += 1
        most = max(most, end - start + 1)
    return most


def run(plugin: PluginProcess, sim: SimulatorProcess, items: int, params: dict[str, Any], timeout: str, **config: Any) -> dict[str, Any]:
    sim.reset()
    sim.configure(**config)
    creds = {"api_key": sim.api_key, "base_url": sim.base_url, "timeout_seconds": timeout}
    prompts = json.dumps([f"pace {n}" for n in range(items)])
    started = time.monotonic()
    outcome = plugin.run_tool("batch_chat", {"prompts": prompts, "concurrency": 32, **params}, creds, timeout=300)
    wall = time.monotonic() - started
    stats = sim.stats()
    arrivals = sorted(stats["arrivals"])
    first_minute = [t for t in arrivals if t - arrivals[0] < 60.0]
    per_second: dict[int, int] = {}
    for t in arrivals:
        per_second[int(t)] = per_second.get(int(t), 0) + 1
    return {
        "succeeded": outcome.variables.get("succeeded"),
        "wall_s": round(wall, 1),
        "rejected_429": stats["rate_limited"],
        "max_in_a_fixed_second": max(per_second.values()),
        "max_in_sliding_1s": most_in_window(arrivals, 1.0),
        "max_in_sliding_10s": most_in_window(arrivals, 10.0),
        "max_in_sliding_60s": most_in_window(arrivals, 60.0),
        "sent_in_first_minute": len(first_minute),
        "rate_used": round((len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), 3),
    }


def main(argv: list[str]) -> None:
    with SimulatorProcess() as sim, PluginProcess() as plugin:
        configured = run(plugin, sim, 620, {"rpm_limit": 600}, "240", window_limit=10, window_seconds=1)
        print("rpm_limit 600, gateway: 10 per fixed second")
        for name, value in configured.items():
            print(f"  {name}: {value}")
        print(f"  share of the limit used over the first minute: {configured['sent_in_first_minute'] / 600:.1%}")
        adaptive = run(plugin, sim, 300, {}, "239", window_limit=5, window_seconds=1, ratelimit_headers=True)
        print("no limit set, gateway: 5 per fixed second, with x-ratelimit-* headers")
        for name, value in adaptive.items():
            print(f"  {name}: {value}")
        print(f"  share of 5/s used: {adaptive['rate_used'] / 5:.1%}")
