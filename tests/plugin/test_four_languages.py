"""Every label, description and option the plugin shows comes in the four languages it ships (issue 25 item 7):
en_US, zh_Hans, ja_JP and pt_BR. Dify falls back to English silently for a missing language, so nothing but
this test notices a parameter another change added in English and Chinese only."""

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.model_options import LANGUAGES, model_options

REPO_ROOT = Path(__file__).resolve().parents[2]
FOUR_LANGUAGES = ("en_US", "zh_Hans", "ja_JP", "pt_BR")
# Every YAML Dify reads text for people from: the manifest, the provider (credentials), the tools, the endpoint
# group (endpoint settings) and the endpoints.
YAML_FILES = sorted(
    [
        REPO_ROOT / "manifest.yaml",
        REPO_ROOT / "provider" / "holysheep.yaml",
        REPO_ROOT / "group" / "holysheep.yaml",
        *(REPO_ROOT / "tools").glob("*.yaml"),
        *(REPO_ROOT / "endpoints").glob("*.yaml"),
    ]
)
# An English word of three or more lower-case letters: a Japanese text equal to an English one holding such a
# word was copied, not translated ("Top P", "VP", "JSONL" may stay as they are).
ENGLISH_WORD = re.compile(r"\b[a-z]{3,}\b")


def i18n_objects(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, mapping) for every mapping with an en_US key, the shape of Dify's I18nObject."""
    if isinstance(node, dict):
        if "en_US" in node:
            yield path, node
            return
        for key, value in node.items():
            yield from i18n_objects(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            name = value.get("name") or value.get("value") if isinstance(value, dict) else None
            yield from i18n_objects(value, f"{path}[{name if name is not None else index}]")


def all_i18n_objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for file in YAML_FILES:
        relative = file.relative_to(REPO_ROOT)
        for path, texts in i18n_objects(yaml.safe_load(file.read_text(encoding="utf-8"))):
            found.append((f"{relative}: {path}", texts))
    return found


def test_the_walk_finds_the_plugin_text() -> None:
    """Guards the test itself: a walk that found nothing would pass vacuously."""
    places = [place for place, _ in all_i18n_objects()]
    assert len(places) > 250
    for expected in (
        "manifest.yaml: label",
        "provider/holysheep.yaml: credentials_for_provider.api_key.help",
        "provider/holysheep.yaml: credentials_for_provider.tls_min_version.options[1.3].label",
        "group/holysheep.yaml: settings[link_secret].placeholder",
        "tools/chat.yaml: parameters[model].options[auto].label",
        "tools/approval_route.yaml: parameters[content].human_description",
        "tools/batch_submit.yaml: description.human",
    ):
        assert expected in places


def test_every_text_is_in_four_languages() -> None:
    problems = []
    for place, texts in all_i18n_objects():
        for language in FOUR_LANGUAGES:
            value = texts.get(language)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{place}: {language} {'missing' if value is None else f'empty or not text: {value!r}'}")
        # A key that is no language is a YAML slip, e.g. an unquoted comma in a flow mapping cutting the text.
        for key in set(texts) - set(FOUR_LANGUAGES):
            problems.append(f"{place}: unexpected key {key!r} (unquoted comma or colon in a flow mapping?)")
    assert not problems, "texts to translate or fix:\n" + "\n".join(problems)


def test_japanese_is_not_english_copied() -> None:
    copies = [
        f"{place}: ja_JP is the English text {texts['en_US']!r}"
        for place, texts in all_i18n_objects()
        # Placeholders are example values (model names, URLs, JSON), the same in every language.
        if not place.endswith(".placeholder") and texts.get("ja_JP") == texts["en_US"] and ENGLISH_WORD.search(texts["en_US"])
    ]
    assert not copies, "\n".join(copies)


def test_the_sdk_keeps_every_language() -> None:
    """dify_plugin's I18nObject has ja_JP and pt_BR fields; it fills a missing one with English, so the text
    reaching Dify must be ours, not the fallback."""
    # In a process of its own: importing dify_plugin monkey-patches this one with gevent, which changes how
    # every later test's threads and sockets behave (the jobs engine's tests among them).
    texts = [{language: texts[language] for language in FOUR_LANGUAGES} for _place, texts in all_i18n_objects()]
    check = (
        "import json, sys\n"
        "from dify_plugin.entities import I18nObject\n"
        "texts = json.load(sys.stdin)\n"
        f"keys = {FOUR_LANGUAGES!r}\n"
        "bad = [t for t in texts if {k: I18nObject(**t).model_dump(by_alias=True)[k] for k in keys} != t]\n"
        "print(json.dumps(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", check], input=json.dumps(texts), capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("option", model_options(), ids=lambda option: option["value"])
def test_generated_model_options_are_in_four_languages(option: dict[str, Any]) -> None:
    """`./dev sync-models` writes these labels; the YAML test above only sees what was last written."""
    assert tuple(LANGUAGES) == FOUR_LANGUAGES
    assert all(isinstance(option["label"].get(language), str) and option["label"][language] for language in FOUR_LANGUAGES)
