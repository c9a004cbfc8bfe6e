"""The tool YAML's generated parts: the `parameters:` blocks of the tools whose specs declare them
(specs/tool_parameters.py), with the model selects from the price table (`gateway/data/prices.yaml`), the
one list of models. `./dev sync-models` rewrites them after a parameter's declaration changed or a model was
added or repriced; a test fails while any tool YAML disagrees (tests/specs/test_tool_yaml_from_specs.py,
tests/plugin/test_model_list.py).

    ./dev sync-models
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from specs.declare import LANGUAGES  # the four languages the plugin ships

REPO_ROOT = Path(__file__).resolve().parent.parent
PRICES = REPO_ROOT / "gateway" / "data" / "prices.yaml"
# Tools whose `model` parameter is the select of priced models (approval_route's is free text).
MODEL_SELECT_TOOLS = ("chat", "stream_chat", "batch_chat")

FIXED_OPTIONS = [
    {
        "value": "default",
        "label": {
            "en_US": "Provider default",
            "zh_Hans": "默认模型",
            "ja_JP": "プロバイダーのデフォルト",
            "pt_BR": "Padrão do provedor",
        },
    },
    {
        "value": "auto",
        "label": {
            "en_US": "Auto (route by prompt)",
            "zh_Hans": "自动（按提示词路由）",
            "ja_JP": "自動（プロンプトでルーティング）",
            "pt_BR": "Automático (roteia pelo prompt)",
        },
    },
]


def priced_models() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(PRICES.read_text(encoding="utf-8"))["models"]


def _usd(value: float) -> str:
    return f"${value:g}" if float(value).is_integer() else f"${value:.2f}"


def price_label(label: str, price: str) -> dict[str, str]:
    """A model's option label with its input / output price per million tokens, in every language."""
    return {
        "en_US": f"{label} ({price} per M)",
        "zh_Hans": f"{label}（每百万 {price}）",
        "ja_JP": f"{label}（100万トークンあたり {price}）",
        "pt_BR": f"{label} ({price} por milhão de tokens)",
    }


def model_options() -> list[dict[str, Any]]:
    """`default`, `auto`, then every priced model, cheapest first, labelled with its prices."""
    models = sorted(priced_models().items(), key=lambda item: (item[1]["input"] + item[1]["output"], item[0]))
    options = [dict(option) for option in FIXED_OPTIONS]
    for name, entry in models:
        price = f"{_usd(entry['input'])} / {_usd(entry['output'])}"
        label = entry.get("label") or name
        options.append({"value": name, "label": price_label(label, price)})
    return options


def options_yaml(options: list[dict[str, Any]], indent: str) -> str:
    lines = [f"{indent}options:"]
    for option in options:
        label = option["label"]
        lines.append(f"{indent}  - value: {option['value']}")
        texts = ", ".join(f"{language}: {label[language]}" for language in LANGUAGES)
        lines.append(f"{indent}    label: {{{texts}}}")
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    """A YAML scalar, quoted only where YAML needs it."""
    return yaml.safe_dump(value, allow_unicode=True, width=1_000_000, default_flow_style=True).removesuffix("\n...\n").strip()


def _flow(mapping: dict[str, Any]) -> str:
    return yaml.safe_dump(mapping, allow_unicode=True, width=1_000_000, default_flow_style=True, sort_keys=False).strip()


def parameter_yaml(entry: dict[str, Any]) -> str:
    """One parameter's YAML, as the tool YAML writes it (option labels one line each)."""
    lines = [f"  - name: {_scalar(entry['name'])}"]
    for key, value in entry.items():
        if key == "name":
            continue
        if key in ("label", "human_description"):
            lines.append(f"    {key}:")
            lines += [f"      {language}: {_scalar(text)}" for language, text in value.items()]
        elif key == "options":
            lines.append("    options:")
            for option in value:
                lines.append(f"      - value: {_scalar(option['value'])}")
                lines.append(f"        label: {_flow(option['label'])}")
        else:
            lines.append(f"    {key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def parameters_yaml(tool: str) -> str:
    """The `parameters:` block of tools/<tool>.yaml, generated from the specs' declarations."""
    from specs.tool_parameters import TOOL_PARAMETERS

    options = model_options()
    return "parameters:\n" + "".join(parameter_yaml(param.as_yaml(options)) for param in TOOL_PARAMETERS[tool])


_PARAMETERS_BLOCK = re.compile(r"^parameters:\n(?:[ -].*\n|\n)*", re.MULTILINE)


def sync_parameters(tool: str) -> bool:
    """Rewrites the `parameters:` block of tools/<tool>.yaml from the specs; True if it changed."""
    path = REPO_ROOT / "tools" / f"{tool}.yaml"
    text = path.read_text(encoding="utf-8")
    updated, count = _PARAMETERS_BLOCK.subn(lambda _m: parameters_yaml(tool), text, count=1)
    if count != 1:
        raise SystemExit(f"{path}: no `parameters:` block found")
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


_MODEL_OPTIONS = re.compile(r"(  - name: model\n(?:    (?!options:).*\n)*)(    options:\n(?:      .*\n)*)")


def sync(tool: str) -> bool:
    """Rewrites the `model` options of tools/<tool>.yaml from the price table; True if it changed."""
    path = REPO_ROOT / "tools" / f"{tool}.yaml"
    text = path.read_text(encoding="utf-8")
    updated, count = _MODEL_OPTIONS.subn(lambda m: m.group(1) + options_yaml(model_options(), "    "), text, count=1)
    if count != 1:
        raise SystemExit(f"{path}: no `model` parameter with options found")
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


def main() -> int:
    from specs.tool_parameters import TOOL_PARAMETERS

    for tool in TOOL_PARAMETERS:
        print(f"tools/{tool}.yaml: {'updated' if sync_parameters(tool) else 'already in line with the specs'}")
    for tool in MODEL_SELECT_TOOLS:
        if tool not in TOOL_PARAMETERS:  # a select outside the generated blocks
            print(f"tools/{tool}.yaml: {'updated' if sync(tool) else 'already in line with the price table'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
