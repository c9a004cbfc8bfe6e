"""The approval tools' YAML: what an agent and a person see (issue 9 item 6)."""

from pathlib import Path

import pytest
import yaml

TOOLS = Path(__file__).resolve().parents[2] / "tools"
RESERVED = {"text", "json", "files"}


@pytest.mark.parametrize("tool", ["approval_route", "approval_transition", "approval_status", "approval_dead_letters"])
def test_every_parameter_is_described_for_agents_and_people(tool: str) -> None:
    spec = yaml.safe_load((TOOLS / f"{tool}.yaml").read_text())
    for param in spec["parameters"]:
        assert {"en_US", "zh_Hans"} <= set(param["label"]), param["name"]
        assert {"en_US", "zh_Hans"} <= set(param["human_description"]), param["name"]
        if param["form"] == "llm":
            assert isinstance(param.get("llm_description"), str) and param["llm_description"].strip(), param["name"]
        if param["type"] == "boolean":
            assert param.get("default") in (None, False), param["name"]  # arrives as 0.0; bool_param reads it
    assert not RESERVED & set(spec["output_schema"]["properties"])


# Who acts, at which level, and the state a request is in are the workflow's to set, never an agent's to fill
# from the conversation (issue 21): an agent could otherwise name anyone, claim any level, or invent a state.
SET_BY_THE_WORKFLOW = {
    "approval_transition": {"actor_id", "actor_level", "state", "required_level", "requester_id"},
    "approval_route": {"requester_id"},
    "approval_dead_letters": {"action"},
}


@pytest.mark.parametrize("tool", sorted(SET_BY_THE_WORKFLOW))
def test_identity_and_state_parameters_are_set_by_the_workflow_not_an_agent(tool: str) -> None:
    spec = yaml.safe_load((TOOLS / f"{tool}.yaml").read_text())
    forms = {param["name"]: param["form"] for param in spec["parameters"]}
    assert {name: forms[name] for name in SET_BY_THE_WORKFLOW[tool]} == dict.fromkeys(SET_BY_THE_WORKFLOW[tool], "form")
