"""`SimulatorProcess`: run `python -m simulator` as a subprocess and drive its control API."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

from simulator.server import DEFAULT_API_KEY

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 20.0
# Options the CLI accepts at start-up; reset() returns the server to exactly these.
_CLI_FLAGS = {
    "latency_ms": "--latency-ms",
    "rpm_limit": "--rpm-limit",
    "tpm_limit": "--tpm-limit",
    "fault_rate": "--fault-rate",
    "fault_mix": "--fault-mix",
    "fault": "--fault",
    "seed": "--seed",
}


class SimulatorProcess:
    """Context manager: `with SimulatorProcess(latency_ms=5) as sim: sim.base_url, sim.configure(...)`."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, **global_options: Any) -> None:
        unknown = set(global_options) - set(_CLI_FLAGS)
        if unknown:
            raise TypeError(f"unknown simulator options: {sorted(unknown)}")
        self.api_key = api_key
        self.options = global_options
        self.port = 0
        self.base_url = ""
        self._proc: subprocess.Popen[str] | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        cmd = [sys.executable, "-m", "simulator", "--port", "0", "--api-key", self.api_key]
        for name, value in self.options.items():
            if value is None:
                continue
            if name == "fault_mix" and not isinstance(value, str):
                value = ",".join(str(v) for v in value)
            cmd += [_CLI_FLAGS[name], str(value)]
        return cmd

    def start(self) -> SimulatorProcess:
        self._proc = subprocess.Popen(self._command(), cwd=REPO_ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line: list[str] = []
        # readline() has no timeout; a reader thread keeps a hung start-up from hanging the tests.
        reader = threading.Thread(target=lambda: line.append(self._proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError("the simulator did not start (no address line on stdout)")
        info = json.loads(line[0])
        self.port = int(info["port"])
        self.base_url = str(info["base_url"])
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- control API

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(f"{self.root_url}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def configure(self, **options: Any) -> dict[str, Any]:
        """Merge global options (fault, latency_ms, rpm_limit, fault_rate, fault_mix, seed)."""
        return dict(self._call("POST", "/_sim/config", options))

    def script(self, replies: list[str]) -> None:
        """Queue exact reply texts, used in order by the next chat completions whatever the prompt."""
        self._call("POST", "/_sim/script", {"replies": list(replies)})

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/_sim/stats"))

    def reset(self) -> None:
        """Clear stats, config (back to the start-up options), scripts, xN counters and the rate limiter."""
        self._call("POST", "/_sim/reset", {})
