"""Run a Dify DSL file on graphon, Dify's own workflow engine, with every HolySheep tool node served by
the plugin started as the Dify daemon starts it (`python -m main`, INSTALL_METHOD=local, JSON lines on
stdio; see devtools/plugin_process.py).

graphon loads the DSL with its own loader (`graphon.dsl.loads`: Dify app export, `dependencies`,
`workflow.graph`) and runs its own nodes (Start, Tool, If/Else, Code, Loop, Iteration, Answer, End).
Code nodes run in `SandboxServer` (tests_workflow/sandbox.py), a local stand-in that speaks the
protocol of dify-sandbox, where Dify runs them. The one seam for tools is the
one graphon offers for plugin tools: a tool node's runtime gets its messages from an "action invoker"
(`SlimToolNodeRuntime.action_invoker`), which stands where the plugin daemon stands. `PluginDaemon`
plays that part: it answers the tool declaration from the plugin's own YAML (as the daemon knows it
from the installed package) and forwards `invoke_tool` to the plugin process, yielding each message
as the plugin streams it. graphon's tool node then turns those messages into its outputs and stream
chunk events, exactly as it does in Dify.

graphon does not repeat the Dify API's validation of tool messages (reserved variable names, value
types, line size): `PluginProcess` checks every message against those rules
(devtools/dify_api_rules.py), and a refusal fails the tool node here as it fails it in Dify.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from graphon.dsl import LoadStatus, SlimDslNodeFactory, inspect, loads
from graphon.dsl import importer as dsl_importer
from graphon.dsl.tool_runtime import SlimToolAction, SlimToolNodeRuntime
from graphon.engine import Engine
from graphon.engine.filter import EngineEventFilterContext, ResponseStreamFilter, filter_engine_events
from graphon.engine_events.graph import GraphRunFailedEvent, GraphRunSucceededEvent
from graphon.engine_events.node import (
    NodeRunFailedEvent,
    NodeRunStartedEvent,
    NodeRunStreamChunkEvent,
    NodeRunSucceededEvent,
)
from graphon.nodes.tool.exc import ToolNodeError

from devtools.plugin_process import DifyAPIRefusal, PluginProcess, PluginProcessError
from tests_workflow.sandbox import SandboxServer

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
MANIFEST = yaml.safe_load((REPO_ROOT / "manifest.yaml").read_text())
PLUGIN_ID = f"{MANIFEST['author']}/{MANIFEST['name']}"  # holysheep-labs/holysheep
PROVIDER = yaml.safe_load((REPO_ROOT / "provider" / "holysheep.yaml").read_text())["identity"]["name"]
# The plugin runs from the project's main virtualenv, as `./dev test` creates it: graphon's virtualenv
# has none of the plugin's requirements, and the daemon gives a plugin its own environment too.
PLUGIN_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
# author/name:version@checksum of the package built from this tree (devtools.package, run in the main
# virtualenv, which has the packager's requirements): what Dify's DSL import checks a dependency by.
PLUGIN_UNIQUE_IDENTIFIER = subprocess.run(
    [str(PLUGIN_PYTHON), "-c", "from devtools.package import unique_identifier; print(unique_identifier())"],
    cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120,
).stdout.strip()


def tool_declarations() -> dict[str, dict[str, Any]]:
    """The plugin's tool declarations by tool name, read from the YAML files the provider lists."""
    provider = yaml.safe_load((REPO_ROOT / "provider" / "holysheep.yaml").read_text())
    declarations = {}
    for path in provider["tools"]:
        spec = yaml.safe_load((REPO_ROOT / path).read_text())
        declarations[spec["identity"]["name"]] = spec
    return declarations


# ----------------------------------------------------------------------------- the Dify API's part


def as_dify_api_reads_it(message: Mapping[str, Any]) -> dict[str, Any]:
    """The message as the Dify API's `ToolInvokeMessage` hands it on to the workflow engine: a log
    message's `metadata` of null becomes {} (the SDK sends null by default; the API normalises it)."""
    out = dict(message)
    if out.get("type") == "log" and isinstance(out.get("message"), Mapping):
        out["message"] = {**out["message"], "metadata": out["message"].get("metadata") or {}}
    return out


# ----------------------------------------------------------------------------- the daemon's part


@dataclass
class ToolCall:
    """One tool invocation as the plugin received and answered it."""

    tool: str
    parameters: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    started: float = 0.0
    finished: float = 0.0


class PluginDaemon:
    """graphon's action invoker for the HolySheep plugin: `(plugin_id, action, data) -> payloads`."""

    def __init__(self, plugin: PluginProcess, *, timeout: float = 120.0) -> None:
        self.plugin = plugin
        self.timeout = timeout
        self.declarations = tool_declarations()
        self.calls: list[ToolCall] = []
        self._lock = threading.Lock()

    def __call__(self, plugin_id: str, action: str, data: Mapping[str, Any]) -> Iterator[Any]:
        if not plugin_id.startswith(f"{PLUGIN_ID}:"):
            raise ToolNodeError(f"no plugin installed for {plugin_id!r}")
        if data.get("provider") != PROVIDER:
            raise ToolNodeError(f"plugin {plugin_id} has no tool provider {data.get('provider')!r}")
        tool = str(data.get("tool"))
        if tool not in self.declarations:
            raise ToolNodeError(f"provider {PROVIDER} has no tool {tool!r}")
        if action == SlimToolAction.GET_TOOL_RUNTIME_PARAMETERS:
            # The daemon knows a tool's parameters from the package's declaration.
            yield {"parameters": self.declarations[tool]["parameters"]}
            return
        if action != SlimToolAction.INVOKE_TOOL:
            raise ToolNodeError(f"unsupported plugin action {action!r}")
        yield from self._invoke(tool, data)

    def _invoke(self, tool: str, data: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        call = ToolCall(tool, dict(data.get("tool_parameters") or {}), started=time.monotonic())
        with self._lock:
            self.calls.append(call)
        invocation = self.plugin.invoke_tool(tool, call.parameters, dict(data.get("credentials") or {}), timeout=self.timeout)
        try:
            for message in invocation:
                call.messages.append(message)
                yield as_dify_api_reads_it(message)
            call.error = invocation.outcome().error
        except DifyAPIRefusal as refusal:
            raise ToolNodeError(f"refused by the Dify API: {refusal}") from refusal
        except PluginProcessError as exc:  # the plugin died or did not answer in time
            raise ToolNodeError(str(exc)) from exc
        finally:
            call.finished = time.monotonic()
        if call.error is not None:
            # Dify fails the node with the plugin's error message.
            raise ToolNodeError(f"{call.error.get('error_type', 'PluginInvokeError')}: {call.error.get('message', '')}")


def _node_factory_class(daemon: PluginDaemon) -> type[SlimDslNodeFactory]:
    """graphon's own DSL node factory, with its tool runtimes wired to `daemon` instead of a Slim
    binary (which is a Go build of the plugin daemon that cannot be installed here)."""

    class PluginDaemonNodeFactory(SlimDslNodeFactory):
        def _create_tool_runtime(self, node_data: Any) -> SlimToolNodeRuntime:
            plugin_id, provider, credential = self._resolve_tool_runtime_settings(node_data)
            return SlimToolNodeRuntime(
                config=self.slim_client_config,
                plugin_id=plugin_id,
                provider=provider,
                provider_id=node_data.provider_id,
                tool_name=node_data.tool_name,
                credentials=credential.values,
                credential_type=credential.credential_type,
                action_invoker=daemon,
            )

    return PluginDaemonNodeFactory


# ----------------------------------------------------------------------------- loading and running


def read_dsl(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


def check_loadable(dsl: str) -> None:
    """graphon's DSL loader accepts the file as an executable Dify app with this plugin as a dependency."""
    plan = inspect(dsl)
    assert plan.load_status == LoadStatus.LOADABLE, plan.load_reason
    identifiers = [d.plugin_unique_identifier or "" for d in plan.dependencies]
    assert any(i.startswith(f"{PLUGIN_ID}:") for i in identifiers), identifiers


def start_form(dsl: str) -> list[dict[str, Any]]:
    """The start node's input form (its `variables`)."""
    graph = yaml.safe_load(dsl)["workflow"]["graph"]
    starts = [n["data"] for n in graph["nodes"] if n["data"]["type"] == "start"]
    assert len(starts) == 1, "a Dify workflow or chatflow has exactly one start node"
    return list(starts[0].get("variables") or [])


def validate_start_inputs(dsl: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What Dify's app generator checks before it hands the inputs to the engine (graphon's start node
    does not): required fields, select values among the options, text within max_length, numbers. An
    optional text, paragraph or select field left empty goes on as "" (Dify passes it, so a reference to
    it reads as empty); an optional number left empty is left out."""
    cleaned = dict(inputs)
    for field_spec in start_form(dsl):
        name, kind = field_spec["variable"], field_spec["type"]
        value = inputs.get(name)
        if value is None or value == "":
            if field_spec.get("required"):
                raise ValueError(f"{name} is required in input form")
            if kind in ("text-input", "paragraph", "select"):
                cleaned[name] = ""
            else:
                cleaned.pop(name, None)
            continue
        if kind == "select" and value not in field_spec.get("options", []):
            raise ValueError(f"{name} in input form must be one of the following: {field_spec.get('options')}")
        if kind in ("text-input", "paragraph", "select"):
            if not isinstance(value, str):
                raise ValueError(f"{name} in input form must be a string")
            if field_spec.get("max_length") and len(value) > field_spec["max_length"]:
                raise ValueError(f"{name} in input form must be less than {field_spec['max_length']} characters")
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"{name} in input form must be a valid number")
            number = float(value)
            cleaned[name] = int(number) if number.is_integer() else number
    return cleaned


@dataclass
class WorkflowRun:
    """Everything one run produced, in the order graphon emitted it (after Dify's response filter)."""

    events: list[Any]
    calls: list[ToolCall]
    exception: BaseException | None = None
    received_at: list[float] = field(default_factory=list)  # time.monotonic() when each event came out

    @property
    def succeeded(self) -> bool:
        return any(isinstance(e, GraphRunSucceededEvent) for e in self.events)

    @property
    def outputs(self) -> dict[str, Any]:
        for event in self.events:
            if isinstance(event, GraphRunSucceededEvent):
                return dict(event.outputs)
        failed = [e for e in self.events if isinstance(e, GraphRunFailedEvent | NodeRunFailedEvent)]
        raise AssertionError(f"the workflow did not succeed: {self.error!r} {[getattr(e, 'error', e) for e in failed]}")

    @property
    def error(self) -> str:
        for event in self.events:
            if isinstance(event, GraphRunFailedEvent):
                return str(event.error)
        return "" if self.exception is None else str(self.exception)

    def node_outputs(self, node_id: str) -> dict[str, Any]:
        for event in self.events:
            if isinstance(event, NodeRunSucceededEvent) and event.node_id == node_id:
                return dict(event.node_run_result.outputs)
        raise AssertionError(f"node {node_id} did not succeed")

    def ran(self, node_id: str) -> bool:
        return any(isinstance(e, NodeRunStartedEvent) and e.node_id == node_id for e in self.events)

    def stream_chunks(self, selector: list[str] | None = None) -> list[NodeRunStreamChunkEvent]:
        return [
            e for e in self.events
            if isinstance(e, NodeRunStreamChunkEvent) and (selector is None or list(e.selector) == selector)
        ]

    def index(self, event_type: type, node_id: str) -> int:
        for position, event in enumerate(self.events):
            if isinstance(event, event_type) and event.node_id == node_id:
                return position
        raise AssertionError(f"no {event_type.__name__} for node {node_id}")


_SANDBOX: SandboxServer | None = None
_SANDBOX_LOCK = threading.Lock()


def code_sandbox() -> SandboxServer:
    """The tier's dify-sandbox stand-in, started on first use and kept for the test session."""
    global _SANDBOX
    with _SANDBOX_LOCK:
        if _SANDBOX is None:
            _SANDBOX = SandboxServer().__enter__()
        return _SANDBOX


def tool_credentials(credentials: Mapping[str, Any]) -> dict[str, Any]:
    """graphon's credentials document: the provider's credentials for every HolySheep tool node, and
    where Code nodes run (the sandbox stand-in, as Dify's CODE_EXECUTION_ENDPOINT / _API_KEY)."""
    return {
        "tool_credentials": [{"plugin_unique_identifier": None, "provider": PROVIDER, "values": dict(credentials)}],
        "code": code_sandbox().settings(),
    }


def load_engine(dsl: str, *, daemon: PluginDaemon, credentials: Mapping[str, Any], inputs: Mapping[str, Any] | None = None) -> Engine:
    """graphon's `loads`: the DSL parsed, every node built and validated, tool nodes bound to `daemon`."""
    with mock.patch.object(dsl_importer, "SlimDslNodeFactory", _node_factory_class(daemon)):
        return loads(dsl, credentials=tool_credentials(credentials), start_inputs=dict(inputs or {}), workers=2)


def run_workflow(
    dsl: str,
    inputs: Mapping[str, Any],
    *,
    plugin: PluginProcess,
    credentials: Mapping[str, Any],
    timeout: float = 120.0,
) -> WorkflowRun:
    """Load `dsl` with graphon's loader and run it to the end; `inputs` are the start form's values
    (and `query` the chat message for a chatflow: graphon puts start inputs under `sys` too)."""
    inputs = validate_start_inputs(dsl, inputs)
    daemon = PluginDaemon(plugin, timeout=timeout)
    engine = load_engine(dsl, daemon=daemon, credentials=credentials, inputs=inputs)
    # Dify's response coordinator: routes stream chunks to the Answer/End nodes that reference them.
    events = filter_engine_events(engine.run(), context=EngineEventFilterContext.from_engine(engine), filters=[ResponseStreamFilter()])
    run = WorkflowRun(events=[], calls=daemon.calls)
    try:
        for event in events:
            run.events.append(event)
            run.received_at.append(time.monotonic())
    except Exception as exc:  # graphon re-raises a failed run's error after its failure events
        run.exception = exc
    return run
