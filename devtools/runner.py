"""Local runner: try the plugin's tools without a Dify instance, through the real runtime.

    ./dev run validate
    ./dev run chat prompt="Hello" model=gpt-4.1
    ./dev run stream_chat prompt="Tell me a story"
    ./dev run batch_chat prompts='["a", "b", "c"]' concurrency=2
    ./dev run chat prompt=hi --repeat 20          # 20 concurrent invocations
    ./dev run chat --params params.json
    ./dev run serve-endpoints --settings '{"link_secret": "...", "redis_url": "redis://127.0.0.1:6379/0"}'

Without --base-url the bundled simulated gateway is started (no key, no network). With
HOLYSHEEP_API_KEY (or --api-key) set and no --simulator, the real gateway is used.
Values are parsed as JSON when they look like JSON (numbers, true/false, arrays, objects).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devtools.plugin_process import PluginProcess, ToolOutcome
from gateway.errors import register_secret

DEFAULT_BASE_URL = "https://api.holysheep.ai/v1"


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"parameter '{pair}' must look like name=value")
        params[name] = _parse_value(raw)
    return params


def _parse_value(raw: str) -> Any:
    if raw[:1] in "[{" or raw in ("true", "false", "null") or raw.lstrip("-").replace(".", "", 1).isdigit():
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw


@contextlib.contextmanager
def gateway(api_key: str = "", base_url: str = "", **simulator_options: Any) -> Iterator[tuple[dict[str, Any], Any]]:
    """(credentials, simulator): the real gateway when a key is given (simulator None), else a freshly
    started bundled simulator. Used by the runner and the demo."""
    if api_key:
        register_secret(api_key)
        yield {"api_key": api_key, "base_url": base_url or os.environ.get("HOLYSHEEP_BASE_URL", DEFAULT_BASE_URL)}, None
        return
    from simulator.harness import SimulatorProcess

    with SimulatorProcess(**simulator_options) as sim:
        yield {"api_key": sim.api_key, "base_url": base_url or sim.base_url}, sim


class ProgressBar:
    """Renders the batch tool's progress log messages on stderr."""

    def __init__(self, stream: Any = sys.stderr) -> None:
        self.stream = stream
        self.active = False

    def update(self, finished: int, total: int) -> None:
        width = 30
        filled = width * finished // max(total, 1)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {finished}/{total}")
        self.stream.flush()
        self.active = finished < total
        if not self.active:
            self.stream.write("\n")


def run_one(plugin: PluginProcess, tool: str, params: dict[str, Any], credentials: dict[str, Any], live: bool) -> ToolOutcome:
    invocation = plugin.invoke_tool(tool, params, credentials)
    bar = ProgressBar()
    text_started = False
    for message in invocation:
        if not live:
            continue
        body = message.get("message") or {}
        if message.get("type") == "text":
            if not text_started:
                sys.stdout.write("text: ")
                text_started = True
            sys.stdout.write(body["text"])  # the node's `text` output, chunk by chunk as it arrives
            sys.stdout.flush()
        elif message.get("type") == "log" and isinstance(body.get("data"), dict) and "total" in body["data"]:
            bar.update(int(body["data"]["finished"]), int(body["data"]["total"]))
    return invocation.outcome()


def print_outcome(outcome: ToolOutcome, *, streamed: bool) -> None:
    if streamed and outcome.text:
        print()
    if not outcome.ok:
        print(f"error: {outcome.error_message}")
        return
    if outcome.text and not streamed:
        print(f"text: {outcome.text}")  # the node's built-in `text` output
    print("variables:")
    for name, value in outcome.variables.items():
        shown = json.dumps(value, ensure_ascii=False)
        print(f"  {name} = {shown if len(shown) < 400 else shown[:400] + '...'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", help="validate, or a tool name: chat, stream_chat, batch_chat, approval_route, approval_transition")
    parser.add_argument("params", nargs="*", help="tool parameters as name=value")
    parser.add_argument("--params", dest="params_file", type=Path, help="a JSON file with the tool parameters")
    parser.add_argument("--api-key", default="", help="gateway key (default: $HOLYSHEEP_API_KEY)")
    parser.add_argument("--base-url", default="", help="gateway base URL")
    parser.add_argument("--credentials", default="", help="extra provider credentials as JSON, e.g. '{\"redis_url\": ...}'")
    parser.add_argument("--simulator", action="store_true", help="use the bundled simulator even if a key is set")
    parser.add_argument("--sim-latency-ms", type=int, default=0, help="simulated gateway latency")
    parser.add_argument("--repeat", type=int, default=1, help="run N invocations concurrently")
    parser.add_argument("--json", action="store_true", help="print the raw protocol messages")
    parser.add_argument("--settings", default="", help="serve-endpoints: the endpoint settings as JSON (link_secret, redis_url)")
    parser.add_argument("--port", type=int, default=8790, help="serve-endpoints: port on 127.0.0.1 (default 8790)")
    args = parser.parse_args(argv)
    if args.tool == "serve-endpoints":  # the plugin's endpoints on 127.0.0.1, as the daemon serves them
        from devtools.endpoint_server import serve

        return serve(json.loads(args.settings) if args.settings else {}, args.port)

    params = json.loads(args.params_file.read_text()) if args.params_file else {}
    params.update(parse_assignments(args.params))
    api_key = "" if args.simulator else (args.api_key or os.environ.get("HOLYSHEEP_API_KEY", "").strip())
    simulator_options = {"latency_ms": args.sim_latency_ms} if args.sim_latency_ms else {}
    with gateway(api_key, args.base_url, **simulator_options) as (credentials, _sim), PluginProcess() as plugin:
        credentials.update(json.loads(args.credentials) if args.credentials else {})
        if args.tool == "validate":
            ok, message = plugin.validate(credentials)
            print("credentials accepted" if ok else f"credentials rejected: {message}")
            return 0 if ok else 1
        started = time.perf_counter()
        if args.repeat <= 1:
            outcome = run_one(plugin, args.tool, params, credentials, live=not args.json)
            outcomes = [outcome]
        else:
            with ThreadPoolExecutor(args.repeat) as pool:
                outcomes = list(pool.map(lambda _: run_one(plugin, args.tool, params, credentials, False), range(args.repeat)))
        for index, outcome in enumerate(outcomes):
            if len(outcomes) > 1:
                print(f"--- invocation {index + 1}")
            if args.json:
                print(json.dumps({"messages": outcome.messages, "error": outcome.error}, ensure_ascii=False, indent=1))
            else:
                print_outcome(outcome, streamed=len(outcomes) == 1)
        if len(outcomes) > 1:
            elapsed = time.perf_counter() - started
            failed = sum(not o.ok for o in outcomes)
            print(f"{len(outcomes)} invocations in {elapsed:.2f}s, {failed} failed")
        return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
