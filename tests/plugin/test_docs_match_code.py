"""The README and the example workflow describe the tools as they are."""

import re
from pathlib import Path

import pytest
import yaml

from approval.transitions import transition_table_markdown

ROOT = Path(__file__).resolve().parents[2]


def tool_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / "tools" / f"{name}.yaml").read_text())


def test_readme_transition_table_is_the_one_the_code_enforces() -> None:
    assert transition_table_markdown() in (ROOT / "docs" / "approval.md").read_text()


EXAMPLES = sorted((ROOT / "examples").glob("*.yml"))
# A tool node's built-in outputs in Dify, next to the variables the tool declares.
TOOL_NODE_BUILTINS = {"text", "json", "files"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_workflow_uses_only_real_tool_parameters_and_outputs(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())["workflow"]["graph"]
    nodes = {node["id"]: node["data"] for node in workflow["nodes"]}
    outputs: dict[str, set[str]] = {}
    for node_id, data in nodes.items():
        if data["type"] == "start":
            outputs[node_id] = {v["variable"] for v in data["variables"]}
        elif data["type"] == "tool":
            spec = tool_yaml(data["tool_name"])
            params = {p["name"]: p for p in spec["parameters"]}
            configured, passed = set(data.get("tool_configurations", {})), set(data["tool_parameters"])
            # Dify's tool node: form parameters are configured on the node, llm parameters are its inputs.
            assert configured <= {n for n, p in params.items() if p["form"] == "form"}, (data["tool_name"], configured)
            assert passed <= {n for n, p in params.items() if p["form"] == "llm"}, (data["tool_name"], passed)
            required = {n for n, p in params.items() if p.get("required")}
            assert required <= configured | passed, (data["tool_name"], required - configured - passed)
            for name, setting in data.get("tool_configurations", {}).items():
                value = setting["value"] if isinstance(setting, dict) else setting
                constant = not isinstance(setting, dict) or setting.get("type", "constant") == "constant"
                if params[name]["type"] == "select" and constant:  # a select bound to a variable is checked at run time
                    assert value in {o["value"] for o in params[name]["options"]}, (data["tool_name"], name, value)
            outputs[node_id] = set(spec["output_schema"]["properties"]) | TOOL_NODE_BUILTINS
        elif data["type"] == "code":
            outputs[node_id] = set(data["outputs"])
        elif data["type"] == "iteration":  # `item` and `index` inside, `output` (the collected outputs) after
            outputs[node_id] = {"item", "index", "output"}
        elif data["type"] == "loop":
            outputs[node_id] = {v["label"] for v in data.get("loop_variables", [])} | {"index"}
    references = []
    for data in nodes.values():
        text = yaml.safe_dump(data)
        references += re.findall(r"\{\{#(\d+)\.(\w+)#\}\}", text)
        conditions = [condition for case in data.get("cases", []) for condition in case["conditions"]]
        conditions += data.get("break_conditions", [])
        selected = (data["outputs"] if isinstance(data.get("outputs"), list) else []) + data.get("variables", []) + conditions
        for key in ("value_selector", "variable_selector"):
            references += [tuple(item[key]) for item in selected if key in item]
        references += [tuple(data[key]) for key in ("iterator_selector", "output_selector") if key in data]
        references += [tuple(p["value"]) for p in data.get("tool_parameters", {}).values() if p["type"] == "variable"]
    assert references
    for node_id, variable in references:
        assert variable in outputs[node_id], f"{node_id}.{variable} is not an output of that node"
    edges = {(e["source"], e["target"]) for e in workflow["edges"]}
    assert all(source in nodes and target in nodes for source, target in edges)


def test_the_approval_form_offers_only_events_the_transition_tool_takes() -> None:
    graph = yaml.safe_load((ROOT / "examples" / "approval_workflow.yml").read_text())["workflow"]["graph"]
    start = next(n["data"] for n in graph["nodes"] if n["data"]["type"] == "start")
    decision = next(v for v in start["variables"] if v["variable"] == "decision")
    events = next(p for p in tool_yaml("approval_transition")["parameters"] if p["name"] == "event")
    assert set(decision["options"]) <= {o["value"] for o in events["options"]}
    # escalate from `escalated` is always refused and the route escalates what needs it: not offered.
    assert "escalate" not in decision["options"]
