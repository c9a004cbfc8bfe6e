"""The README and the example workflow describe the tools as they are."""

import re
from pathlib import Path

import yaml

from approval.transitions import transition_table_markdown

ROOT = Path(__file__).resolve().parents[2]


def tool_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / "tools" / f"{name}.yaml").read_text())


def test_readme_transition_table_is_the_one_the_code_enforces() -> None:
    assert transition_table_markdown() in (ROOT / "README.md").read_text()


def test_example_workflow_uses_only_real_tool_parameters_and_outputs() -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "approval_workflow.yml").read_text())["workflow"]["graph"]
    nodes = {node["id"]: node["data"] for node in workflow["nodes"]}
    outputs: dict[str, set[str]] = {}
    for node_id, data in nodes.items():
        if data["type"] == "start":
            outputs[node_id] = {v["variable"] for v in data["variables"]}
        elif data["type"] == "tool":
            spec = tool_yaml(data["tool_name"])
            declared = {p["name"] for p in spec["parameters"]}
            used = set(data["tool_parameters"]) | set(data.get("tool_configurations", {}))
            assert used <= declared, (data["tool_name"], used - declared)
            required = {p["name"] for p in spec["parameters"] if p.get("required")}
            assert required <= used, (data["tool_name"], required - used)
            outputs[node_id] = set(spec["output_schema"]["properties"])
    references = []
    for data in nodes.values():
        text = yaml.safe_dump(data)
        references += re.findall(r"\{\{#(\d+)\.(\w+)#\}\}", text)
        conditions = [condition for case in data.get("cases", []) for condition in case["conditions"]]
        for key in ("value_selector", "variable_selector"):
            references += [tuple(item[key]) for item in data.get("outputs", []) + conditions if key in item]
        references += [tuple(p["value"]) for p in data.get("tool_parameters", {}).values() if p["type"] == "variable"]
    assert references
    for node_id, variable in references:
        assert variable in outputs[node_id], f"{node_id}.{variable} is not an output of that node"
    edges = {(e["source"], e["target"]) for e in workflow["edges"]}
    assert all(source in nodes and target in nodes for source, target in edges)
