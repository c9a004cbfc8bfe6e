"""The golden file of every tool's messages: what each runtime test's invocations answered, recorded before a
refactor and replayed after it, so a move that changes a single byte a workflow receives fails the suite.

Volatile values (ports, ids, times, durations) are normalised; what still differs between two recordings of an
unchanged tree (concurrency, timing) is left out of the golden file by `./dev golden record`, which records three times.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

GOLDEN_FILE = Path(__file__).resolve().parent.parent / "tests" / "golden" / "tool_messages.jsonl"
OUT_ENV = "HOLYSHEEP_GOLDEN_OUT"  # set: every finished invocation is appended there (recording)
MAX_STORED_CHARS = 4000
# Tests whose answers depend on the wall clock or on which concurrent call wins: a loaded machine can change
# the answer (a file cut by the deadline before its size is known) without any change to the code. Named ones
# seen differ in a loaded full run (2026-12-07), steady alone: which of 4 concurrent items finish before the
# batch budget runs out; whether a 200,000-item job's first items finish before its cancel lands; which of two
# identical prompts in flight at once is sent and which is the cache hit.
TIMING_DEPENDENT = re.compile(
    r"bounded_time|deadline|in_time|a_second|concurrent|parallel|two_processes|slow"
    r"|batch_items_over_the_batch_budget|file_near_the_cap_with_the_most_items|batch_of_repeated_prompts",
    re.I,
)

_SUBSTITUTIONS = [
    (re.compile(r"(127\.0\.0\.1|localhost|\[::1\]):\d+"), r"\1:PORT"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "<uuid>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{6,11}\b"), "<hex>"),  # short random ids (uuid4().hex[:8])
    (re.compile(r"\b(s\d+-\d+)\b"), "<session>"),
]
_VOLATILE_KEY = re.compile(r"(_ms|_s|seconds?|latency|ttft|elapsed|duration|_at|time|deadline|expires|age|pid)$", re.I)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: ("<num>" if _VOLATILE_KEY.search(k) and _is_number(v) else _scrub(v)) for k, v in value.items()}
        # A Dify variable message: the name says whether its value is a duration.
        if _VOLATILE_KEY.search(str(value.get("variable_name", ""))) and _is_number(value.get("variable_value")):
            out["variable_value"] = "<num>"
        return out
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        for pattern, replacement in _SUBSTITUTIONS:
            value = pattern.sub(replacement, value)
        return value
    return value


def normalise(value: Any) -> Any:
    return _scrub(value)


class Recorder:
    """Collects the invocations of this process; appends them to `$HOLYSHEEP_GOLDEN_OUT` when that is set."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: Counter[tuple[str, str]] = Counter()
        self.entries: list[dict[str, Any]] = []

    def record(self, request: dict[str, Any], messages: list[dict[str, Any]], error: dict[str, Any] | None) -> None:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        if not test:
            return
        request = normalise(request)
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
        with self._lock:
            self._seen[(test, digest)] += 1
            entry = {"key": f"{test}#{digest}#{self._seen[(test, digest)]}", "messages": normalise(messages), "error": normalise(error)}
            self.entries.append(entry)
            out = os.environ.get(OUT_ENV)
            if out:
                with open(out, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, sort_keys=True) + "\n")


RECORDER = Recorder()


def load(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    # split on "\n" only: str.splitlines() would also cut at U+2028 or U+0085 inside a recorded message
    return {e["key"]: e for e in (json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip())}


def stable(*recordings: Path) -> list[dict[str, Any]]:
    """The entries every recording agrees on, byte for byte after normalisation. A test with any invocation that
    differed (or was missing) between them is left out whole: its answers depend on timing (which of two
    concurrent calls took the budget first), and another run could order them otherwise."""
    runs = [{k: {**e, "messages": normalise(e["messages"]), "error": normalise(e["error"])} for k, e in load(p).items()} for p in recordings]
    first, others = runs[0], runs[1:]
    unsteady = {key.split("#", 1)[0] for run in others for key in first.keys() ^ run.keys()}
    unsteady |= {key.split("#", 1)[0] for run in others for key in first.keys() & run.keys() if first[key] != run[key]}
    steady = (key for key in sorted(first) if key.split("#", 1)[0] not in unsteady and all(key in run for run in others))
    return [first[key] for key in steady if not TIMING_DEPENDENT.search(key.split("#", 1)[0])]


def fingerprint(entry: dict[str, Any]) -> str:
    """A digest of what the invocation answered: the golden file keeps it in place of large answers (the
    message-limit tests answer megabytes), so a comparison stays byte for byte without storing them."""
    answered = json.dumps({"messages": entry["messages"], "error": entry["error"]}, sort_keys=True)
    return hashlib.sha256(answered.encode()).hexdigest()


def stored(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as the golden file keeps it: whole when small (a failure can be read), else its fingerprint."""
    if len(json.dumps(entry)) <= MAX_STORED_CHARS:
        return entry
    return {"key": entry["key"], "fingerprint": fingerprint(entry)}


def differences(entries: list[dict[str, Any]], golden: dict[str, dict[str, Any]]) -> list[str]:
    """Keys of this run's entries whose messages or error differ from the golden file's."""
    out = []
    for entry in entries:
        want = golden.get(entry["key"])
        if want is None or TIMING_DEPENDENT.search(entry["key"].split("#", 1)[0]):
            continue
        same = want.get("fingerprint") == fingerprint(entry) if "fingerprint" in want else want == entry
        if not same:
            out.append(entry["key"])
    return out


RECORDED_TESTS = ["tests/runtime", "tests/packaging", "tests/plugin/test_redis_cluster_through_runtime.py"]


def record(times: int) -> int:
    """Run the runtime tests `times` times on this tree, recording, and keep what every run agreed on."""
    import subprocess
    import sys
    import tempfile

    outs = [Path(tempfile.mkdtemp()) / f"run{n}.jsonl" for n in range(times)]
    for out in outs:
        env = {**os.environ, OUT_ENV: str(out)}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *RECORDED_TESTS], env=env, check=False)
    return main(["merge", *map(str, outs)])


def main(argv: list[str]) -> int:
    if argv[:1] == ["record"]:
        return record(int(argv[1]) if len(argv) > 1 else 3)
    if argv[:1] == ["merge"] and len(argv) >= 3:
        kept = stable(*map(Path, argv[1:]))
        total = len(load(Path(argv[1])))
        GOLDEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN_FILE.write_text("".join(json.dumps(stored(e), sort_keys=True) + "\n" for e in kept), encoding="utf-8")
        print(f"golden file: {len(kept)} of {total} invocations were identical in every recording -> {GOLDEN_FILE}")
        return 0
    print("usage: ./dev golden record [TIMES]  |  ./dev golden merge FIRST.jsonl SECOND.jsonl [MORE.jsonl ...]")
    return 2


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
