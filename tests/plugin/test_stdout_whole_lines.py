"""Every protocol line reaches the daemon whole, even when signals interrupt the pipe writes and the
environment says PYTHONUNBUFFERED=1 (a profiler attached to a plugin process once cut a 170 KB
`batch_results` page this way: the daemon dropped the line and the workflow lost the variable)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.plugin_process import PluginProcess, PluginProcessError

ROOT = Path(__file__).resolve().parents[2]
LINE_CHARS = 1_000_000
LINES = 20

# A process writing as the SDK does (its response writer and its log handler), while a handler for
# SIGUSR1 makes each signal interrupt the write in progress.
WRITER = r"""
import json, logging, signal, sys
sys.path.insert(0, sys.argv[2])
signal.signal(signal.SIGUSR1, lambda *_: None)
if sys.argv[1] == "installed":
    from provider.runtime_stdout import install_whole_line_stdout
    install_whole_line_stdout()
from dify_plugin.config.logger_format import plugin_logger_handler
log = logging.getLogger("whole-lines")
log.addHandler(plugin_logger_handler)
sys.stdout.write("ready\n")
sys.stdout.flush()
line = json.dumps({"event": "session", "data": "a" * int(sys.argv[3])}) + "\n"
for n in range(int(sys.argv[4])):
    sys.stdout.write(line)
    sys.stdout.flush()
    log.warning("after line %d", n)
"""


def written_under_signals(mode: str) -> list[bytes]:
    """The lines a reader gets while SIGUSR1 keeps arriving at the writer."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-c", WRITER, mode, str(ROOT), str(LINE_CHARS), str(LINES)], stdout=subprocess.PIPE, env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    data = bytearray()
    while True:
        if process.poll() is None:
            process.send_signal(signal.SIGUSR1)
        chunk = process.stdout.read1(65536)
        if not chunk:
            break
        data += chunk
    process.wait()
    return bytes(data).split(b"\n")[:-1]


def test_with_the_plugins_stdout_every_line_arrives_whole_and_in_order() -> None:
    lines = written_under_signals("installed")
    messages = [json.loads(line) for line in lines]
    payloads = [m for m in messages if m.get("event") == "session"]
    logs = [m["data"]["message"] for m in messages if m.get("event") == "log"]
    assert len(payloads) == LINES and all(len(m["data"]) == LINE_CHARS for m in payloads)
    assert logs == [f"after line {n}" for n in range(LINES)]  # the SDK's log handler writes through it too
    assert [m.get("event") for m in messages] == ["session", "log"] * LINES


@pytest.mark.skipif(sys.version_info[:2] != (3, 12), reason="documents CPython 3.12's unbuffered text stdout")
def test_without_it_an_interrupted_write_loses_the_rest_of_the_line() -> None:
    # Why it exists: the plain unbuffered stdout drops what a short write did not take.
    lines = written_under_signals("plain")
    assert sum(1 for line in lines if len(line) > LINE_CHARS) < LINES


FAKE_PLUGIN = r"""
import json, sys
request = json.loads(sys.stdin.readline())
sid = request["session_id"]
def say(data):
    sys.stdout.write(json.dumps({"event": "session", "session_id": sid, "data": data}) + "\n")
say({"type": "stream", "data": {"type": "text", "message": {"text": "before"}}})
cut = json.dumps({"event": "session", "session_id": sid, "data": {"type": "stream", "data": {"type": "variable",
    "message": {"variable_name": "results", "variable_value": ["x" * 5000], "stream": False}}}})
sys.stdout.write(cut[:3000] + "\n")
say({"type": "end", "data": {}})
sys.stdout.flush()
sys.stdin.read()
"""


def test_the_harness_fails_a_session_whose_protocol_line_arrives_cut(tmp_path: Path) -> None:
    # The daemon drops a line that is not JSON; a test must not pass with the variable silently gone.
    (tmp_path / "main.py").write_text(FAKE_PLUGIN)
    with PluginProcess(root=tmp_path, timeout=20) as plugin, pytest.raises(PluginProcessError, match="arrived cut"):
        plugin.run_tool("batch_results", {}, {})
