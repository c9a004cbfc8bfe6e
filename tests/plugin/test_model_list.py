"""The price table is the one list of models: every other place that names models agrees with it, so
adding a model is one edit to gateway/data/prices.yaml, `./dev sync-models`, and a test run."""

import re
from pathlib import Path
from typing import Any

import yaml

from devtools.model_options import MODEL_SELECT_TOOLS, model_options, priced_models
from gateway.config import DEFAULT_MODEL
from gateway.spend.pricing import PriceTable
from simulator.server import MODELS as SIMULATOR_MODELS

ROOT = Path(__file__).resolve().parents[2]
# Parameter blocks the chat tools share and must declare identically (labels, limits, help text).
SHARED_BLOCKS = {
    ("chat", "stream_chat"): {"prompt", "system_prompt", "model", "custom_model", "temperature", "max_tokens", "top_p", "seed", "stop",
                              "json_output", "json_schema", "cache", "max_cost_usd", "budgets"},
    ("chat", "batch_chat"): {"system_prompt", "model", "custom_model", "temperature", "max_tokens", "json_output", "json_schema",
                             "cache", "max_cost_usd", "budgets"},
}


def parameters(tool: str) -> dict[str, dict[str, Any]]:
    spec = yaml.safe_load((ROOT / "tools" / f"{tool}.yaml").read_text(encoding="utf-8"))
    return {p["name"]: p for p in spec["parameters"]}


def test_every_model_select_lists_the_price_table_with_its_prices() -> None:
    expected = model_options()
    assert [o["value"] for o in expected[2:]] and set(o["value"] for o in expected[2:]) == set(PriceTable.bundled().models)
    for tool in MODEL_SELECT_TOOLS:
        assert parameters(tool)["model"]["options"] == expected, f"tools/{tool}.yaml is out of date: run ./dev sync-models"


def test_labels_quote_the_prices_the_cost_is_computed_with() -> None:
    table = PriceTable.bundled()
    for option in model_options()[2:]:
        price = table.resolve(option["value"])
        assert price is not None
        for label in option["label"].values():
            shown = re.search(r"\$([\d.]+) / \$([\d.]+)", label)
            assert shown and (float(shown[1]), float(shown[2])) == (price.input, price.output), label


def test_shared_parameter_blocks_are_identical_across_the_chat_tools() -> None:
    for (first, second), names in SHARED_BLOCKS.items():
        a, b = parameters(first), parameters(second)
        for name in names:
            assert a[name] == b[name], f"parameter '{name}' differs between tools/{first}.yaml and tools/{second}.yaml"


def test_the_simulator_routing_and_defaults_use_only_the_price_tables_models() -> None:
    priced = set(priced_models())
    assert priced <= set(SIMULATOR_MODELS)
    assert not set(SIMULATOR_MODELS[len(priced):]) & priced  # the extras are the unpriced ones
    routing = yaml.safe_load((ROOT / "gateway" / "data" / "routing.yaml").read_text(encoding="utf-8"))
    assert set(routing["candidates"]) <= priced and routing["strong_model"] in priced
    assert DEFAULT_MODEL in priced
    provider = yaml.safe_load((ROOT / "provider" / "holysheep.yaml").read_text(encoding="utf-8"))["credentials_for_provider"]
    assert provider["default_model"]["default"] == DEFAULT_MODEL
    assert {m.strip() for m in provider["fallback_models"]["placeholder"]["en_US"].split(",")} <= priced


def test_the_readme_price_table_lists_every_model_at_its_price() -> None:
    readme = (ROOT / "docs" / "spend-control.md").read_text(encoding="utf-8")
    rows = {cells[0]: cells[1:] for line in readme.splitlines() if (cells := [c.strip() for c in line.strip("|").split("|")])}
    for name, entry in priced_models().items():
        assert name in rows, f"README's price table has no row for {name}"
        shown = [float(value) for value in rows[name][:3]]
        assert shown == [entry["input"], entry["cached_input"], entry["output"]], name
