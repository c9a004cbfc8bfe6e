"""How a spec declares the parameters it reads, so the tool YAML's parameter blocks are generated from the
specs (`./dev sync-models`, devtools/model_options.py) and a test fails while a YAML disagrees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Dify shows a label in the user's interface language; these are the four the plugin ships.
LANGUAGES = ("en_US", "zh_Hans", "ja_JP", "pt_BR")


def texts(en_us: str, zh_hans: str, ja_jp: str, pt_br: str) -> tuple[tuple[str, str], ...]:
    """One text in the four languages, in LANGUAGES order."""
    return tuple(zip(LANGUAGES, (en_us, zh_hans, ja_jp, pt_br), strict=True))


@dataclass(frozen=True)
class Option:
    value: str
    label: tuple[tuple[str, str], ...]


# The model select's options are the price table's models, filled in when the YAML is generated.
MODEL_OPTIONS = (Option("<priced models>", ()),)


@dataclass(frozen=True)
class Param:
    """One tool parameter as Dify's tool YAML declares it."""

    name: str
    type: str
    form: str
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    label: tuple[tuple[str, str], ...] = ()
    human_description: tuple[tuple[str, str], ...] = ()
    llm_description: str | None = None
    options: tuple[Option, ...] = ()

    def as_yaml(self, model_options: list[dict[str, Any]]) -> dict[str, Any]:
        """The parameter as its YAML mapping, in the key order the tool YAML writes it."""
        entry: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if self.default is not None:
            entry["default"] = self.default
        entry["form"] = self.form
        for key in ("min", "max"):
            if getattr(self, key) is not None:
                entry[key] = getattr(self, key)
        entry["label"] = dict(self.label)
        entry["human_description"] = dict(self.human_description)
        if self.llm_description is not None:
            entry["llm_description"] = self.llm_description
        if self.options is MODEL_OPTIONS:
            entry["options"] = model_options
        elif self.options:
            entry["options"] = [{"value": option.value, "label": dict(option.label)} for option in self.options]
        return entry
