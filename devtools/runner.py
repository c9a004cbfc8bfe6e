"""Local runner: try the plugin's tools without a Dify instance, through the real runtime.

    ./dev run validate
    ./dev run chat prompt="Hello" model=gpt-4.1
    ./dev run stream_chat prompt="Tell me a story"
    ./dev run batch_chat prompts='["a", "b", "c"]' concurrency=2
    ./dev run chat prompt=hi --repeat 20          # 20 concurrent invocations
    ./dev run chat --params params.json
    ./dev run serve-endpoints --settings '{"link_secret": "...", "redis_url": "redis://127.0.0.1:6379/0"}'

Without --base-url the bundled simulated gateway is used (no key, no network): one local simulator on
127.0.0.1:8791 (HOLYSHEEP_SIM_PORT), started on first use and left running, so separate runs share a
gateway (batch_submit, then batch_status, then batch_results); --fresh-simulator starts a private one.
With HOLYSHEEP_API_KEY (or --api-key) set and no --simulator, the real gateway is used.
Values are parsed as JSON when they look like JSON (numbers, true/false, arrays, objects).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from devtools.plugin_process import PluginProcess, ToolOutcome
from gateway.errors import register_secret

DEFAULT_BASE_URL = "https://api.holysheep.ai/v1"
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_SIMULATOR_PORT = int(os.environ.get("HOLYSHEEP_SIM_PORT", "8791"))
# A run's plugin process exits when the run ends, so between runs nothing works on a batch job (in Dify
# the plugin process lives on). batch_status therefore works on the job for a while before answering,
# as it does for serverless plugins, unless the run says otherwise: submit, status, results in three runs.
RUNNER_DEFAULTS: dict[str, dict[str, Any]] = {"batch_status": {"work_seconds": 10}}
RUNNER_COMMANDS = {"validate": "check the credentials", "serve-endpoints": "serve the approval and metrics endpoints on 127.0.0.1"}


def tool_catalog() -> dict[str, tuple[str, list[str]]]:
    """Every tool the provider declares: name -> (one-line description, parameter names), read from the YAML."""
    provider = yaml.safe_load((REPO_ROOT / "provider" / "holysheep.yaml").read_text(encoding="utf-8"))
    catalog: dict[str, tuple[str, list[str]]] = {}
    for path in provider.get("tools") or []:
        tool = yaml.safe_load((REPO_ROOT / path).read_text(encoding="utf-8"))
        summary = str(((tool.get("description") or {}).get("human") or {}).get("en_US") or "").split(". ")[0].rstrip(".")
        catalog[tool["identity"]["name"]] = (summary, [str(p["name"]) for p in tool.get("parameters") or []])
    return catalog


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f": did you mean {' or '.join(close)}?" if close else ""


def check_invocation(tool: str, params: dict[str, Any], catalog: dict[str, tuple[str, list[str]]]) -> None:
    """Refuse an unknown tool or parameter with the closest names, before anything starts."""
    if tool not in catalog and tool not in RUNNER_COMMANDS:
        names = sorted([*catalog, *RUNNER_COMMANDS])
        raise SystemExit(f"unknown tool '{tool}'{_did_you_mean(tool, names)}\ntools: {', '.join(names)}")
    if tool in RUNNER_COMMANDS:
        return
    known = catalog[tool][1]
    for name in params:
        if name not in known:
            raise SystemExit(f"unknown parameter '{name}' for {tool}{_did_you_mean(name, known)}\nparameters of {tool}: {', '.join(known)}")


def tools_help(catalog: dict[str, tuple[str, list[str]]]) -> str:
    width = max(len(name) for name in [*catalog, *RUNNER_COMMANDS])
    lines = [f"  {name.ljust(width)}  {summary}" for name, (summary, _params) in catalog.items()]
    lines += [f"  {name.ljust(width)}  {summary}" for name, summary in RUNNER_COMMANDS.items()]
    return "tools:\n" + "\n".join(lines)


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


def shared_simulator(port: int = SHARED_SIMULATOR_PORT) -> dict[str, Any]:
    """Credentials for the runner's one local simulator on `port`, started (detached, so it outlives this
    run) when nothing answers there yet. Separate runs share it, and so share jobs and their results."""
    from simulator.server import DEFAULT_API_KEY

    credentials = {"api_key": DEFAULT_API_KEY, "base_url": f"http://127.0.0.1:{port}/v1"}
    if _simulator_answers(port):
        return credentials
    log = simulator_file(port, "log")
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "simulator", "--port", str(port), "--api-key", DEFAULT_API_KEY], cwd=REPO_ROOT,
                         stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    simulator_file(port, "pid").write_text(str(process.pid))
    for _ in range(100):
        if _simulator_answers(port):
            print(f"started the local simulator on 127.0.0.1:{port} (it keeps running; log {log})", file=sys.stderr)
            return credentials
        time.sleep(0.1)
    raise SystemExit(f"the local simulator did not start on port {port} (see {log}); set HOLYSHEEP_SIM_PORT to another port")


def simulator_file(port: int, kind: str) -> Path:
    """The shared simulator's log or pid file (`kill $(cat ...pid)` stops it)."""
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"holysheep-simulator-{port}.{kind}"


def _simulator_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/stats", timeout=0.5) as reply:
            return reply.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def gateway(api_key: str = "", base_url: str = "", *, shared: bool = False, **simulator_options: Any) -> Iterator[tuple[dict[str, Any], Any]]:
    """(credentials, simulator): the real gateway when a key is given (simulator None), else the runner's
    shared local simulator (`shared`, simulator None) or a freshly started bundled simulator. Used by the
    runner and the demo."""
    if api_key:
        register_secret(api_key)
        yield {"api_key": api_key, "base_url": base_url or os.environ.get("HOLYSHEEP_BASE_URL", DEFAULT_BASE_URL)}, None
        return
    if shared and not simulator_options and not base_url:
        yield shared_simulator(), None
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
    for line in failed_items(outcome.variables):
        print(line)


def failed_items(variables: dict[str, Any]) -> list[str]:
    """One line per failed item of a batch's results, whole: the shortened `results` line may hide them."""
    lines = []
    for name, value in variables.items():
        if not isinstance(value, list):
            continue
        for position, item in enumerate(value):
            if isinstance(item, dict) and item.get("error"):
                label = item.get("id", position)
                lines.append(f"  failed {name}[{position}] (id {json.dumps(label, ensure_ascii=False)}): {item['error']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    catalog = tool_catalog()
    parser = argparse.ArgumentParser(prog="./dev run", description=__doc__, epilog=tools_help(catalog),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", help="a tool name (listed below), validate or serve-endpoints")
    parser.add_argument("params", nargs="*", help="tool parameters as name=value")
    parser.add_argument("--params", dest="params_file", type=Path, help="a JSON file with the tool parameters")
    parser.add_argument("--api-key", default="", help="gateway key (default: $HOLYSHEEP_API_KEY)")
    parser.add_argument("--base-url", default="", help="gateway base URL")
    parser.add_argument("--credentials", default="", help="extra provider credentials as JSON, e.g. '{\"redis_url\": ...}'")
    parser.add_argument("--simulator", action="store_true", help="use the bundled simulator even if a key is set")
    parser.add_argument("--fresh-simulator", action="store_true", help="start a private simulator for this run instead of the shared one")
    parser.add_argument("--sim-latency-ms", type=int, default=0, help="simulated gateway latency")
    parser.add_argument("--repeat", type=int, default=1, help="run N invocations concurrently")
    parser.add_argument("--json", action="store_true", help="print the raw protocol messages")
    parser.add_argument("--settings", default="", help="serve-endpoints: the endpoint settings as JSON (link_secret, redis_url)")
    parser.add_argument("--port", type=int, default=8790, help="serve-endpoints: port on 127.0.0.1 (default 8790)")
    args = parser.parse_args(argv)
    params = json.loads(args.params_file.read_text()) if args.params_file else {}
    params.update(parse_assignments(args.params))
    check_invocation(args.tool, params, catalog)
    params = {**RUNNER_DEFAULTS.get(args.tool, {}), **params}
    if args.tool == "serve-endpoints":  # the plugin's endpoints on 127.0.0.1, as the daemon serves them
        from devtools.endpoint_server import serve

        return serve(json.loads(args.settings) if args.settings else {}, args.port)

    api_key = "" if args.simulator else (args.api_key or os.environ.get("HOLYSHEEP_API_KEY", "").strip())
    simulator_options = {"latency_ms": args.sim_latency_ms} if args.sim_latency_ms else {}
    shared = not args.fresh_simulator
    with gateway(api_key, args.base_url, shared=shared, **simulator_options) as (credentials, _sim), PluginProcess() as plugin:
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
