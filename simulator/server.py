"""An OpenAI-compatible gateway simulator with scriptable faults (stdlib only).

Faults are requested per call with a `[[sim: a, b=1]]` directive in the last user message, with the
`X-Sim-Fault` header, or globally through `POST /_sim/config` (see `simulator/__init__.py`).
"""

from __future__ import annotations

import base64
import collections
import email.utils
import json
import math
import random
import re
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEFAULT_API_KEY = "sim-key-0123456789abcdef"
PRICES_FILE = Path(__file__).resolve().parent.parent / "gateway" / "data" / "prices.yaml"
# Served but not in the price table: how tests reach a model with no known price.
UNPRICED_MODELS = ["qwen3-coder", "mystery-1"]


def priced_models() -> list[str]:
    """The model names of the plugin's price table, the one list of models (read without a YAML library:
    the simulator runs on the standard library alone)."""
    names: list[str] = []
    in_models = False
    for line in PRICES_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#")):
            in_models = line.rstrip() == "models:"
        elif in_models and (entry := re.match(r"^  ([^\s#][^:]*):\s*$", line)):
            names.append(entry.group(1))
    return names


MODELS = [*priced_models(), *UNPRICED_MODELS]
OWNER = "holysheep-sim"
HTML_BODY = b"<html><body>Welcome to nginx</body></html>"
SPLIT_UTF8_SUFFIX = " café 🙂 中文"
SEPARATORS_SUFFIX = " a\u2028b\u0085c"
# `lone_surrogate`: what a gateway sends as the JSON escapes "\ud800" and "\u0000" (Python's and JavaScript's
# JSON writers do): a reply no UTF-8 encoder takes as it is.
LONE_SURROGATE_SUFFIX = " broken \ud800 and nul \x00 end"
RECEIVED_KEEP = 50
RECEIVED_HEADERS_KEEP = 5000
CONFIG_KEYS = ("fault", "latency_ms", "rpm_limit", "tpm_limit", "fault_rate", "fault_mix", "seed", "script_rules", "batch_delay_ms")
# Fixed-window enforcement and rate-limit headers (window_limit per window_seconds, ratelimit_headers).
CONFIG_KEYS = (*CONFIG_KEYS, "window_limit", "window_seconds", "ratelimit_headers")
ARRIVALS_KEEP = 20_000
REASONING_TEXT = "Let me think step by step about this request."

_DIRECTIVE = re.compile(r"\[\[sim:(.*?)\]\]", re.DOTALL)
_COUNTED = re.compile(r"^(\d{3}|[a-z_]+)x(\d+)$")
_STATUS = re.compile(r"^\d{3}$")
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


# ----------------------------------------------------------------------------- fault specs


@dataclass(frozen=True)
class Fault:
    """One parsed fault token: `name`, optional `value` (after `=`), optional `times` (from `xN`)."""

    token: str
    name: str
    value: str | None = None
    times: int | None = None


def parse_faults(spec: str | None) -> list[Fault]:
    """Parse `"429x2, retry_after_ms=20, cut"` into faults (unknown names are kept and ignored later)."""
    faults: list[Fault] = []
    for raw in (spec or "").split(","):
        token = raw.strip()
        if not token:
            continue
        if "=" in token:
            name, _, value = token.partition("=")
            faults.append(Fault(token, name.strip().lower(), value.strip()))
            continue
        counted = _COUNTED.match(token.lower())
        if counted:
            faults.append(Fault(token, counted.group(1), times=int(counted.group(2))))
        else:
            faults.append(Fault(token, token.lower()))
    return faults


def split_directives(text: str) -> tuple[str, str]:
    """Return (text without directives, stripped; joined directive specs)."""
    specs = [m.group(1) for m in _DIRECTIVE.finditer(text)]
    return _DIRECTIVE.sub("", text).strip(), ",".join(specs)


class FaultSet:
    """The faults that apply to one request, merged from global config, header and directive (later wins)."""

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = faults
        self.flags: dict[str, str | None] = {}
        for fault in faults:
            if fault.times is None:
                self.flags[fault.name] = fault.value

    def has(self, name: str) -> bool:
        return name in self.flags

    def number(self, name: str, default: float = 0.0) -> float:
        value = self.flags.get(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            return default

    def text(self, name: str) -> str | None:
        return self.flags.get(name)


# ----------------------------------------------------------------------------- shared state


class TokenBucket:
    """A requests-per-minute limiter with a burst of one second's worth (at least one token)."""

    def __init__(self, rpm: float) -> None:
        self.rate = rpm / 60.0
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def take(self) -> float:
        """Take a token; return 0 on success, else the milliseconds until the next token."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return max(1.0, (1.0 - self.tokens) / self.rate * 1000.0)


class TokenBudget:
    """A tokens-per-minute limit as gateways enforce it: a request is admitted while the minute's budget
    is not spent, and its real usage is charged when it is served (the budget may go into debt)."""

    def __init__(self, tpm: float) -> None:
        self.rate = tpm / 60.0
        self.capacity = float(tpm)
        self.level = self.capacity
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def admit(self) -> float:
        """0 when a request may start, else the milliseconds until the budget is positive again."""
        self._refill()
        return 0.0 if self.level > 0 else max(1.0, -self.level / self.rate * 1000.0 + 1.0)

    def charge(self, tokens: int) -> None:
        self._refill()
        self.level -= tokens


class FixedWindow:
    """At most `limit` requests per fixed window of `seconds` (windows start at multiples of `seconds` of
    the monotonic clock), as gateways that count per second enforce it: the 1st..limit-th arrival of a
    window is served, every further one gets 429 until the next window starts."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.index = -1
        self.count = 0

    def take(self) -> tuple[float, int, float]:
        """(0 or the milliseconds until the next window, remaining after this request, seconds to reset)."""
        now = time.monotonic()
        index = int(now // self.seconds)
        if index != self.index:
            self.index, self.count = index, 0
        reset = (index + 1) * self.seconds - now
        if self.count >= self.limit:
            return max(1.0, reset * 1000.0), 0, reset
        self.count += 1
        return 0.0, self.limit - self.count, reset


@dataclass
class Stats:
    requests_by_path: collections.Counter[str] = field(default_factory=collections.Counter)
    responses_by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    chat_requests_by_prompt: collections.Counter[str] = field(default_factory=collections.Counter)
    max_concurrency: int = 0
    in_flight: int = 0
    rate_limited: int = 0
    window_rejections: int = 0
    arrivals: list[float] = field(default_factory=list)  # monotonic times of chat requests served (not 429)
    connection_resets: int = 0
    received: collections.deque[Any] = field(default_factory=lambda: collections.deque(maxlen=RECEIVED_KEEP))
    # Per chat request: the X-Request-Id it came with (None without one) and the x-request-id answered.
    received_headers: collections.deque[Any] = field(default_factory=lambda: collections.deque(maxlen=RECEIVED_HEADERS_KEEP))


class SimulatorState:
    """Everything the handlers share; every mutation happens under one lock."""

    def __init__(self, api_key: str, options: dict[str, Any]) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.initial = self._clean(options)
        self.config: dict[str, Any] = {}
        self.stats = Stats()
        self.scripts: collections.deque[str] = collections.deque()
        self.counters: collections.Counter[tuple[str, str]] = collections.Counter()
        self.bucket: TokenBucket | None = None
        self.budget: TokenBudget | None = None
        self.window: FixedWindow | None = None
        self.rng = random.Random()
        self.reset()

    @staticmethod
    def _clean(options: dict[str, Any]) -> dict[str, Any]:
        unknown = set(options) - set(CONFIG_KEYS)
        if unknown:
            raise ValueError(f"unknown simulator options: {sorted(unknown)}")
        return {k: v for k, v in options.items() if v is not None}

    def _apply(self, options: dict[str, Any]) -> None:
        self.config.update(options)
        if "rpm_limit" in options:
            rpm = float(options["rpm_limit"] or 0)
            self.bucket = TokenBucket(rpm) if rpm > 0 else None
        if "tpm_limit" in options:
            tpm = float(options["tpm_limit"] or 0)
            self.budget = TokenBudget(tpm) if tpm > 0 else None
        if "window_limit" in options or "window_seconds" in options:
            limit = int(self.config.get("window_limit") or 0)
            seconds = float(self.config.get("window_seconds") or 1.0)
            self.window = FixedWindow(limit, seconds) if limit > 0 else None
        if "seed" in options:
            self.rng.seed(options["seed"])

    def reset(self) -> None:
        with self.lock:
            self.config = {}
            self.stats = Stats()
            self.scripts.clear()
            self.counters.clear()
            self.bucket = None
            self.budget = None
            self.window = None
            self.rng.seed(self.initial.get("seed"))
            self._apply(dict(self.initial))

    def configure(self, options: dict[str, Any]) -> dict[str, Any]:
        clean = self._clean(options)
        with self.lock:
            self._apply(clean)
            return dict(self.config)

    def script(self, replies: list[str]) -> int:
        with self.lock:
            self.scripts.extend(str(r) for r in replies)
            return len(self.scripts)

    def next_script(self) -> str | None:
        with self.lock:
            return self.scripts.popleft() if self.scripts else None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            s = self.stats
            return {
                "requests_by_path": dict(s.requests_by_path),
                "responses_by_status": dict(s.responses_by_status),
                "chat_requests_by_prompt": dict(s.chat_requests_by_prompt),
                "max_concurrency": s.max_concurrency,
                "in_flight": s.in_flight,
                "rate_limited": s.rate_limited,
                "window_rejections": s.window_rejections,
                "arrivals": list(s.arrivals),
                "connection_resets": s.connection_resets,
                "received": list(s.received),
                "received_headers": list(s.received_headers),
                "scripts_left": len(self.scripts),
                "config": dict(self.config),
            }

    def global_faults(self) -> list[Fault]:
        with self.lock:
            return parse_faults(self.config.get("fault"))

    def fire_counted(self, key: str, faults: list[Fault]) -> Fault | None:
        """The first `xN` fault whose budget for this key is not used up yet (consuming one use)."""
        with self.lock:
            for fault in faults:
                if fault.times is None:
                    continue
                slot = (key, fault.token.lower())
                if self.counters[slot] < fault.times:
                    self.counters[slot] += 1
                    return fault
        return None

    def rate_limit(self) -> float:
        """0 when the request is within the RPM and TPM limits, else the milliseconds to wait."""
        return self.rate_limit_with_headers()[0]

    def rate_limit_with_headers(self) -> tuple[float, dict[str, str]]:
        """As rate_limit, with the x-ratelimit-* headers to send (config `ratelimit_headers`: the fixed
        window's limit, what is left of it and when it resets, OpenAI's names and formats)."""
        with self.lock:
            wait = self.budget.admit() if self.budget is not None else 0.0
            if not wait and self.bucket is not None:
                wait = self.bucket.take()
            headers: dict[str, str] = {}
            if not wait and self.window is not None:
                wait, remaining, reset = self.window.take()
                if wait:
                    self.stats.window_rejections += 1
                if self.config.get("ratelimit_headers"):
                    headers = {
                        "x-ratelimit-limit-requests": str(self.window.limit),
                        "x-ratelimit-remaining-requests": str(remaining),
                        "x-ratelimit-reset-requests": f"{math.ceil(reset * 1000)}ms",
                    }
                    if self.budget is not None:
                        spent = max(0.0, self.budget.capacity - self.budget.level)
                        headers.update({
                            "x-ratelimit-limit-tokens": str(int(self.budget.capacity)),
                            "x-ratelimit-remaining-tokens": str(max(0, int(self.budget.level))),
                            "x-ratelimit-reset-tokens": f"{math.ceil(spent / self.budget.rate)}s",
                        })
            if wait:
                self.stats.rate_limited += 1
            elif len(self.stats.arrivals) < ARRIVALS_KEEP:
                self.stats.arrivals.append(time.monotonic())
            return wait, headers

    def charge_tokens(self, tokens: int) -> None:
        with self.lock:
            if self.budget is not None:
                self.budget.charge(tokens)

    def random_fault(self) -> Fault | None:
        with self.lock:
            rate = float(self.config.get("fault_rate") or 0)
            mix = self.config.get("fault_mix") or ["429", "500", "503", "reset_before"]
            if isinstance(mix, str):
                mix = [m for m in (p.strip() for p in mix.split(",")) if m]
            if rate <= 0 or self.rng.random() >= rate:
                return None
            picked = parse_faults(str(self.rng.choice(mix)))
        return Fault(picked[0].token, picked[0].name, picked[0].value) if picked else None


# ----------------------------------------------------------------------------- reply helpers


def content_text(content: Any) -> str:
    """A message's text: strings as-is, content-part lists joined by their text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return ""


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


# A sensible model's yes/no answers: a field that says something is fine or allowed is true, one about
# suspicion, risk or anything to flag is false (so an approval assessment on the simulator reads as a
# routine request, not an attack). Tests that need a fooled or failing model script the answer.
_AFFIRMATIVE_FIELD_WORDS = ("ok", "approve", "valid", "safe", "allowed", "success")


def _sensible_boolean(name: str) -> bool:
    words = name.lower().replace("-", "_").split("_")
    return any(word in _AFFIRMATIVE_FIELD_WORDS for word in words)


def sample_for_schema(schema: Any, root: Any = None, depth: int = 0, name: str = "") -> Any:
    """A JSON value valid for a (simple) JSON schema, as a sensible model would answer: every property
    present, the first enum value (the lowest risk or level, as schemas list them), yes/no by the field's
    name (`_sensible_boolean`)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 20:
        return "sample"
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return sample_for_schema(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            options = [s for s in schema[key] if not (isinstance(s, dict) and s.get("type") == "null")]
            return sample_for_schema((options or schema[key])[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        props = schema.get("properties") or {}
        return {key: sample_for_schema(sub, root, depth + 1, key) for key, sub in props.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [sample_for_schema(schema.get("items", {}), root, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 1)) if "minimum" in schema else 1
    if kind == "number":
        return schema.get("minimum", 0.5) if "minimum" in schema else 0.5
    if kind == "boolean":
        return _sensible_boolean(name)
    if kind == "null":
        return None
    return "sample"


def stream_pieces(reply: str, words: int = 3) -> list[str]:
    """Split into ~`words`-word pieces keeping every character, so "".join(pieces) == reply."""
    tokens = [t for t in re.split(r"(?<=\s)(?=\S)", reply) if t]
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def wire_json(payload: Any, **options: Any) -> str:
    """JSON as a gateway writes it: UTF-8 text as is, but a lone surrogate as its escape (it has no UTF-8)."""
    text = json.dumps(payload, ensure_ascii=False, **options)
    if re.search("[\ud800-\udfff]", text):
        return json.dumps(payload, ensure_ascii=True, **options)
    return text


def echoed_authorization(authorization: str) -> str:
    """`echo_auth`: the Authorization header echoed into the reply the ways a careless gateway or a model
    shown it would: as sent, base64 of it, base64 of the key alone, and the key percent-encoded."""
    _, _, key = authorization.partition(" ")
    b64 = base64.b64encode
    return (
        f" [echo] Authorization: {authorization} | b64: {b64(authorization.encode()).decode()}"
        f" | key b64: {b64(key.encode()).decode()} | url: https://x.test/?key={urllib.parse.quote(key, safe='')} end"
    )


def error_body(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def redact(key: str) -> str:
    return f"{key[:3]}...{key[-4:]}" if len(key) >= 8 else "***"


class ConnectionAborted(Exception):
    """Raised by a handler after it reset the connection on purpose; nothing more may be written."""


# ----------------------------------------------------------------------------- HTTP handler


class Handler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes: with Nagle on, the body waits for the client's delayed
    # ACK (~40 ms), which would swamp every latency the tests and benchmarks measure.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: SimServer
    server_version = "holysheep-sim/1.0"

    # ---- plumbing

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and benches read stdout
        return

    @property
    def state(self) -> SimulatorState:
        return self.server.state

    @property
    def path_only(self) -> str:
        return self.path.split("?", 1)[0]

    def is_control(self) -> bool:
        return self.path_only.startswith("/_sim/")

    def send_response(self, code: int, message: str | None = None) -> None:
        if not self.is_control():
            with self.state.lock:
                getattr(self, "request_stats", self.state.stats).responses_by_status[str(code)] += 1
        super().send_response(code, message)

    def read_body(self) -> bytes:
        """Read the whole body (always, so keep-alive connections stay in sync)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = wire_json(payload).encode("utf-8")
        self.send_bytes(status, body, "application/json", headers)

    def send_error_json(self, status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None) -> None:
        kind, default_code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
        self.send_json(status, error_body(message, kind, code or default_code), headers)

    def reset_connection(self) -> None:
        """Close with SO_LINGER 0 so the peer sees a TCP RST, not a clean FIN."""
        with self.state.lock:
            self.state.stats.connection_resets += 1
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # The fd really closes when rfile (a makefile reference) is closed in finish().
            self.connection.close()
        except OSError:
            pass
        raise ConnectionAborted

    # ---- dispatch

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        try:
            body = self.read_body()
            path = self.path_only
            if path.startswith("/_sim/"):
                self.control(method, path, body)
                return
            with self.state.lock:
                # The stats this request counts in: a reset while it is in flight (a test that gave up on a
                # slow answer) must not count its late response in the next test's figures.
                self.request_stats = self.state.stats
                self.request_stats.requests_by_path[path] += 1
            if path == "/v1/models" and method == "GET":
                self.models()
            elif path == "/v1/chat/completions" and method == "POST":
                self.chat(body)
            elif path.startswith(("/v1/files", "/v1/batches")):  # the OpenAI Batch API (files, batches)
                self.batch_api(method, path, body)
            elif path.startswith("/v1/") and self.header_and_global_faults().has("html"):
                self.send_bytes(200, HTML_BODY, "text/html")
            else:
                self.send_error_json(404, f"Not found: {path}", code="not_found")
        except ConnectionAborted:
            return
        except (BrokenPipeError, ConnectionResetError):  # the client went away mid-answer
            self.close_connection = True

    # ---- control API

    def control(self, method: str, path: str, body: bytes) -> None:
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            self.send_error_json(400, "invalid JSON body")
            return
        if path == "/_sim/stats" and method == "GET":
            self.send_json(200, self.state.snapshot())
        elif path == "/_sim/config" and method == "POST":
            try:
                self.send_json(200, self.state.configure(dict(data)))
            except (ValueError, TypeError) as exc:
                self.send_error_json(400, str(exc))
        elif path == "/_sim/script" and method == "POST":
            replies = data.get("replies") if isinstance(data, dict) else data
            if not isinstance(replies, list):
                self.send_error_json(400, "expected {'replies': [...]}")
                return
            self.send_json(200, {"queued": self.state.script(replies)})
        elif path == "/_sim/reset" and method == "POST":
            self.state.reset()
            self.send_json(200, {"ok": True})
        else:
            self.send_error_json(404, f"Not found: {path}", code="not_found")

    # ---- /v1 endpoints

    def header_and_global_faults(self, directive: str = "") -> FaultSet:
        faults = self.state.global_faults() + parse_faults(self.headers.get("X-Sim-Fault")) + parse_faults(directive)
        return FaultSet(faults)

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def check_auth(self, faults: FaultSet, headers: dict[str, str]) -> bool:
        """Answer 401 (and return False) for a missing or wrong key, or for the echo_key fault."""
        key = self.bearer() or ""
        if faults.has("echo_key"):
            self.send_error_json(401, f"Incorrect API key provided: {key}", headers, code="invalid_api_key")
            return False
        if key != self.state.api_key:
            self.send_error_json(401, f"Incorrect API key provided: {redact(key)}", headers, code="invalid_api_key")
            return False
        return True

    def sleep_latency(self, faults: FaultSet) -> None:
        with self.state.lock:
            base = float(self.state.config.get("latency_ms") or 0)
        delay = faults.number("latency", base)
        if delay > 0:
            time.sleep(delay / 1000.0)

    def fault_status(self, fault: Fault, faults: FaultSet, headers: dict[str, str]) -> None:
        """Answer a status fault (or reset) with the retry hint headers the request asked for."""
        if fault.name in ("reset_before", "reset"):
            self.reset_connection()
        status = int(fault.name)
        out = dict(headers)
        if status in (429, 503):
            if faults.has("retry_after"):
                out["Retry-After"] = str(faults.text("retry_after"))
            if faults.has("retry_after_ms"):
                out["retry-after-ms"] = str(faults.text("retry_after_ms"))
            if faults.has("retry_after_date"):
                out["Retry-After"] = email.utils.formatdate(time.time() + faults.number("retry_after_date"), usegmt=True)
        self.send_error_json(status, f"simulated {status} error", out)

    def pending_status_fault(self, key: str, faults: FaultSet, include_counted: bool = True) -> Fault | None:
        for fault in faults.faults:
            if fault.times is None and (_STATUS.match(fault.name) or fault.name == "reset_before"):
                return fault
        if include_counted:
            counted = [f for f in faults.faults if _STATUS.match(f.name) or f.name == "reset_before"]
            return self.state.fire_counted(key, counted)
        return None

    def models(self) -> None:
        request_id = f"req-{uuid.uuid4().hex}"
        headers = {"x-request-id": request_id}
        # Global faults are meant for chat traffic; only html/echo_key/latency from them reach /v1/models.
        header_faults = FaultSet(parse_faults(self.headers.get("X-Sim-Fault")))
        faults = self.header_and_global_faults()
        if faults.has("html"):
            self.send_bytes(200, HTML_BODY, "text/html")
            return
        if not self.check_auth(faults, headers):
            return
        self.sleep_latency(faults)
        fault = self.pending_status_fault(self.path_only, header_faults)
        if fault is not None:
            self.fault_status(fault, faults, headers)
            return
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": OWNER} for m in MODELS]
        self.send_json(200, {"object": "list", "data": data}, headers)

    def chat(self, raw_body: bytes) -> None:
        state = self.state
        with state.lock:
            state.stats.in_flight += 1
            state.stats.max_concurrency = max(state.stats.max_concurrency, state.stats.in_flight)
        try:
            self.chat_inner(raw_body)
        finally:
            with state.lock:
                state.stats.in_flight -= 1

    def chat_inner(self, raw_body: bytes) -> None:
        state = self.state
        headers = {"x-request-id": f"req-{uuid.uuid4().hex}"}
        with state.lock:
            state.stats.received_headers.append({"x_request_id": self.headers.get("X-Request-Id"), "request_id": headers["x-request-id"]})
        try:
            body: Any = json.loads(raw_body)
        except ValueError:
            body = None
        messages = body.get("messages") if isinstance(body, dict) else None
        raw_prompt = ""
        if isinstance(messages, list):
            users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
            raw_prompt = content_text(users[-1].get("content")) if users else ""
        prompt, directive = split_directives(raw_prompt)
        # --- script_rules (approval guard tests) -------------------------------------------------
        # configure(script_rules=[{"system_contains": "...", "reply": "...", "fault": "503x99"}]): a call
        # whose system message contains the text gets that reply (every time, the FIFO script is left
        # alone) and that fault spec, so two kinds of call in one request can be scripted apart.
        rule = self.script_rule(messages)
        if rule and rule.get("fault"):
            directive = f"{directive},{rule['fault']}" if directive.strip() else str(rule["fault"])
        # --- end script_rules ----------------------------------------------------------------------
        faults = self.header_and_global_faults(directive)
        with state.lock:
            if body is not None:
                state.stats.received.append(body)
                state.stats.chat_requests_by_prompt[raw_prompt] += 1

        if faults.has("html"):
            self.send_bytes(200, HTML_BODY, "text/html")
            return
        if not self.check_auth(faults, headers):
            return
        if not isinstance(body, dict):
            self.send_error_json(400, "We could not parse the JSON body of your request.", headers)
            return
        self.sleep_latency(faults)

        wait_ms, limit_headers = state.rate_limit_with_headers()
        headers.update(limit_headers)
        if wait_ms:
            retry = {**headers, "retry-after-ms": str(math.ceil(wait_ms)), "Retry-After": str(math.ceil(wait_ms / 1000))}
            self.send_error_json(429, "Rate limit reached (simulated rpm/tpm limit)", retry)
            return
        random_fault = state.random_fault()
        if random_fault is not None:
            if random_fault.name == "429":
                self.send_error_json(429, "simulated 429 error", {**headers, "retry-after-ms": "20"})
                return
            if _STATUS.match(random_fault.name) or random_fault.name == "reset_before":
                self.fault_status(random_fault, faults, headers)
                return
            faults = FaultSet([*faults.faults, random_fault])
        fault = self.pending_status_fault(raw_prompt, faults)
        if fault is not None:
            self.fault_status(fault, faults, headers)
            return

        model = body.get("model")
        if not isinstance(model, str) or model not in MODELS:
            self.send_error_json(404, f"The model `{model}` does not exist", headers, code="model_not_found")
            return
        if not isinstance(messages, list) or not messages:
            self.send_error_json(400, "'messages' must be a non-empty array", headers)
            return
        stream = bool(body.get("stream"))
        if faults.has("reject_stream_options") and "stream_options" in body:
            self.send_error_json(400, "Unrecognized request argument supplied: stream_options", headers)
            return
        response_format = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
        if faults.has("reject_json_schema") and response_format.get("type") == "json_schema":
            self.send_error_json(400, "response_format json_schema is not supported by this model", headers)
            return

        reply = str(rule["reply"]) if rule and rule.get("reply") is not None else self.reply_text(model, prompt, response_format)
        if faults.has("split_utf8"):
            reply += SPLIT_UTF8_SUFFIX
        if faults.has("separators"):
            reply += SEPARATORS_SUFFIX
        if faults.has("lone_surrogate"):
            reply += LONE_SURROGATE_SUFFIX
        if faults.has("echo_auth"):
            reply += echoed_authorization(self.headers.get("Authorization") or "")
        finish = "stop"
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens > 0 and estimate_tokens(reply) > max_tokens:
            reply, finish = reply[: max_tokens * 4], "length"
        # Reasoning models: `reasoning` sends it as reasoning_content, `think` as a <think> block at the start
        # of the content; both count it in completion_tokens and in completion_tokens_details.reasoning_tokens.
        reasoning = REASONING_TEXT if faults.has("reasoning") or faults.has("think") else ""
        if faults.has("think"):
            reply = f"<think>{reasoning}</think>\n\n{reply}"
        usage = {
            "prompt_tokens": sum(estimate_tokens(content_text(m.get("content"))) + 4 for m in messages if isinstance(m, dict)),
            "completion_tokens": estimate_tokens(reply) + (estimate_tokens(reasoning) if faults.has("reasoning") else 0),
            "prompt_tokens_details": {"cached_tokens": int(faults.number("cached", 0))},
        }
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": estimate_tokens(reasoning)}
        if not faults.has("reasoning"):
            reasoning = ""  # a <think> block travels inside the content
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        state.charge_tokens(usage["total_tokens"])
        served = faults.text("served_model") or model
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": served}
        if stream:
            options = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
            want_usage = bool(options.get("include_usage")) and not faults.has("no_usage")
            self.stream_reply(base, reply, finish, usage if want_usage else None, faults, headers, reasoning)
        else:
            payload: dict[str, Any] = {
                "id": base["id"],
                "object": "chat.completion",
                **base,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": finish}],
            }
            if reasoning:
                payload["choices"][0]["message"]["reasoning_content"] = reasoning
            if not faults.has("no_usage"):
                payload["usage"] = usage
            if faults.has("reset_mid"):
                data = wire_json(payload).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.reset_connection()
            self.send_json(200, payload, headers)

    # ---- the OpenAI Batch API: /v1/files (multipart upload, content) and /v1/batches (create, retrieve,
    # list, cancel). A batch completes `batch_delay_ms` (config) after it was created, when next retrieved.

    def batch_api(self, method: str, path: str, body: bytes) -> None:
        if not self.check_auth(self.header_and_global_faults(), {}):
            return
        store = batch_store(self.server)
        parts = path.strip("/").split("/")  # v1, files|batches, id?, action?
        if parts[1] == "files" and len(parts) == 2 and method == "POST":
            content = multipart_file(self.headers.get("Content-Type") or "", body)
            if content is None:
                self.send_error_json(400, "expected multipart/form-data with a 'file' part and purpose=batch")
                return
            self.send_json(200, store.add_file(content, "batch"))
        elif parts[1] == "files" and len(parts) == 4 and parts[3] == "content" and method == "GET":
            data = store.files.get(parts[2])
            if data is None:
                self.send_error_json(404, f"No such File object: {parts[2]}", code="not_found")
                return
            self.send_bytes(200, data, "application/jsonl")
        elif parts[1] == "batches" and len(parts) == 2 and method == "POST":
            request = json.loads(body or b"{}")
            if request.get("input_file_id") not in store.files or request.get("endpoint") != "/v1/chat/completions":
                self.send_error_json(400, "input_file_id must be an uploaded file and endpoint /v1/chat/completions")
                return
            self.send_json(200, store.create(request))
        elif parts[1] == "batches" and len(parts) == 2 and method == "GET":
            self.send_json(200, {"object": "list", "data": [store.view(b) for b in list(store.batches.values())[-20:]], "has_more": False})
        elif parts[1] == "batches" and len(parts) == 3 and method == "GET":
            batch = store.batches.get(parts[2])
            if batch is None:
                self.send_error_json(404, f"No such batch: {parts[2]}", code="not_found")
                return
            with self.state.lock:
                delay = float(self.state.config.get("batch_delay_ms") or 0)
            store.advance(batch, delay, self.batch_line_answer)
            self.send_json(200, store.view(batch))
        elif parts[1] == "batches" and len(parts) == 4 and parts[3] == "cancel" and method == "POST":
            batch = store.batches.get(parts[2])
            if batch is None:
                self.send_error_json(404, f"No such batch: {parts[2]}", code="not_found")
                return
            if batch["status"] not in ("completed", "failed", "expired"):
                batch["status"] = "cancelled"
            self.send_json(200, store.view(batch))
        else:
            self.send_error_json(404, f"Not found: {path}", code="not_found")

    def batch_line_answer(self, line: dict[str, Any]) -> dict[str, Any]:
        """One line of a batch's output file, answered as a chat completion would be."""
        body = line.get("body") if isinstance(line.get("body"), dict) else {}
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        model = body.get("model")
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        prompt, directive = split_directives(content_text(users[-1].get("content")) if users else "")
        with self.state.lock:
            self.state.stats.requests_by_path["/v1/batches (lines)"] += 1
        if model not in MODELS:
            missing = error_body(f"The model `{model}` does not exist", "invalid_request_error", "model_not_found")
            error = {"status_code": 404, "request_id": f"req-{uuid.uuid4().hex}", "body": missing}
            return {"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": line.get("custom_id"), "response": error, "error": None}
        response_format = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
        reply = self.reply_text(model, prompt, response_format)
        faults = FaultSet(parse_faults(directive))
        if faults.has("lone_surrogate"):
            reply += LONE_SURROGATE_SUFFIX
        if faults.has("echo_auth"):  # the key the batch was created with
            reply += echoed_authorization(self.headers.get("Authorization") or "")
        usage = {
            "prompt_tokens": sum(estimate_tokens(content_text(m.get("content"))) + 4 for m in messages if isinstance(m, dict)),
            "completion_tokens": estimate_tokens(reply),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": usage,
        }
        response = {"status_code": 200, "request_id": f"req-{uuid.uuid4().hex}", "body": completion}
        return {"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": line.get("custom_id"), "response": response, "error": None}

    def script_rule(self, messages: Any) -> dict[str, Any] | None:
        """The first configured script rule whose `system_contains` is in the system message (script_rules)."""
        with self.state.lock:
            rules = self.state.config.get("script_rules") or []
        if not rules or not isinstance(messages, list):
            return None
        system = "\n".join(content_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "system")
        for rule in rules:
            if isinstance(rule, dict) and rule.get("system_contains") and str(rule["system_contains"]) in system:
                return rule
        return None

    def reply_text(self, model: str, prompt: str, response_format: dict[str, Any]) -> str:
        scripted = self.state.next_script()
        if scripted is not None:
            return scripted
        default = f"[{model}] You said: {prompt}"
        kind = response_format.get("type")
        if kind == "json_object":
            return json.dumps({"reply": default}, ensure_ascii=False)
        if kind == "json_schema":
            spec = response_format.get("json_schema") or {}
            schema = spec.get("schema", {}) if isinstance(spec, dict) else {}
            return json.dumps(sample_for_schema(schema or {"type": "object"}), ensure_ascii=False)
        return default

    # ---- streaming

    def stream_events(
        self, base: dict[str, Any], reply: str, finish: str, usage: dict[str, Any] | None, faults: FaultSet, reasoning: str = ""
    ) -> Iterator[tuple[str, Any]]:
        """Yield ("event", payload) / ("raw", text) / ("abort", kind) in wire order."""
        if faults.has("reject_stream_options_inband") and usage is not None:
            # Some gateways accept the request and refuse the option inside the 200 stream.
            yield "event", {"error": {"message": "Unrecognized request argument supplied: stream_options", "type": "invalid_request_error"}}
            yield "abort", "cut"
            return

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {"id": base["id"], "object": "chat.completion.chunk", **base, "choices": [choice]}

        yield "event", chunk({"role": "assistant", "content": ""})
        for piece in stream_pieces(reasoning):
            yield "event", chunk({"reasoning_content": piece, "content": None})
        # A <think> block is split into pieces of a few characters, so tags arrive cut across chunks.
        # A <think> block (or an echoed key) is split into pieces of a few characters, so tags (and the key)
        # arrive cut across chunks.
        small = faults.has("think") or faults.has("echo_auth")
        pieces = [reply[i : i + 5] for i in range(0, len(reply), 5)] if small else stream_pieces(reply)
        for index, piece in enumerate(pieces):
            yield "event", chunk({"content": piece})
            if index == 0 and faults.has("malformed"):
                yield "raw", "data: {not json"
            if index == 1:
                if faults.has("cut"):
                    yield "abort", "cut"
                    return
                if faults.has("reset_mid"):
                    yield "abort", "reset"
                    return
                if faults.has("inband_error"):
                    yield "event", {"error": {"message": "upstream overloaded", "type": "server_error"}}
                    yield "abort", "cut"
                    return
        yield "event", chunk({}, finish)
        if usage is not None:
            yield "event", {"id": base["id"], "object": "chat.completion.chunk", **base, "choices": [], "usage": usage}
        yield "raw", "data: [DONE]"

    def stream_reply(
        self,
        base: dict[str, Any],
        reply: str,
        finish: str,
        usage: dict[str, Any] | None,
        faults: FaultSet,
        headers: dict[str, str],
        reasoning: str = "",
    ) -> None:
        eol = "\r\n" if faults.has("crlf") else "\r" if faults.has("cr") else "\n"
        content_type = "text/event-stream" if faults.has("no_charset") else "text/event-stream; charset=utf-8"
        trickle = faults.number("trickle", 0) / 1000.0
        split = faults.has("split_utf8")
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # no Content-Length: the body ends when we close
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        if split:
            # Without Nagle each tiny write leaves as its own segment, so readers really see split characters.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        event_id = 0
        for kind, item in self.stream_events(base, reply, finish, usage, faults, reasoning):
            if kind == "abort":
                if item == "reset":
                    self.reset_connection()
                return
            lines: list[str] = []
            if kind == "event":
                event_id += 1
                if faults.has("event_field"):
                    lines += ["event: message", f"id: {event_id}"]
                if faults.has("multiline_data"):
                    text = wire_json(item, indent=1)
                    lines += [f"data: {line}" for line in text.split("\n")]
                else:
                    lines.append(f"data: {wire_json(item)}")
            else:
                lines.append(str(item))
            wire = eol.join(lines) + eol + eol
            if faults.has("keepalive"):
                wire = f": keep-alive{eol}{eol}" + wire
            self.write_event(wire.encode("utf-8"), split)
            if trickle:
                time.sleep(trickle)

    def write_event(self, data: bytes, split: bool) -> None:
        if not split:
            self.wfile.write(data)
            self.wfile.flush()
            return
        pos, step = 0, 0
        while pos < len(data):
            size = 1 + step % 3
            piece = data[pos : pos + size]
            self.wfile.write(piece)
            self.wfile.flush()
            pos += size
            step += 1
            # A pause inside a multibyte character makes the split reach the reader as separate reads.
            if pos < len(data) and (data[pos] & 0xC0) == 0x80:
                time.sleep(0.002)


# ----------------------------------------------------------------------------- server


class BatchStore:
    """Files and batches of the simulated Batch API (in memory, for the life of the server)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}

    def add_file(self, content: bytes, purpose: str) -> dict[str, Any]:
        file_id = f"file-{uuid.uuid4().hex}"
        with self.lock:
            self.files[file_id] = content
        return {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()), "filename": "batch.jsonl", "purpose": purpose}

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        batch = {
            "id": f"batch_{uuid.uuid4().hex}",
            "object": "batch",
            "endpoint": request["endpoint"],
            "input_file_id": request["input_file_id"],
            "completion_window": request.get("completion_window", "24h"),
            "status": "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "started": time.monotonic(),
            "metadata": request.get("metadata"),
            "request_counts": {"total": self.files[request["input_file_id"]].count(b"\n"), "completed": 0, "failed": 0},
        }
        with self.lock:
            self.batches[batch["id"]] = batch
        return self.view(batch)

    def advance(self, batch: dict[str, Any], delay_ms: float, answer: Any) -> None:
        with self.lock:
            if batch["status"] != "in_progress" or (time.monotonic() - batch["started"]) * 1000 < delay_ms:
                return
            batch["status"] = "finalizing"
        lines = [json.loads(raw) for raw in self.files[batch["input_file_id"]].splitlines() if raw.strip()]
        out = [answer(line) for line in lines]
        output = "".join(wire_json(o) + "\n" for o in out).encode("utf-8")
        file_id = self.add_file(output, "batch_output")["id"]
        with self.lock:
            ok = sum(o["response"]["status_code"] == 200 for o in out)
            batch.update(status="completed", output_file_id=file_id, completed_at=int(time.time()))
            batch["request_counts"] = {"total": len(out), "completed": ok, "failed": len(out) - ok}

    @staticmethod
    def view(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if k != "started"}


def batch_store(server: Any) -> BatchStore:
    store = getattr(server, "batch_store", None)
    if store is None:
        store = server.batch_store = BatchStore()
    return store


def multipart_file(content_type: str, body: bytes) -> bytes | None:
    """The `file` part of a multipart/form-data body."""
    import email.parser
    import email.policy

    if not content_type.lower().startswith("multipart/form-data"):
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_payload(decode=True)
    return None


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not stall stop()
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        self.state = state
        super().__init__(address, Handler)


class SimulatorServer:
    """The simulator in a background thread of this process. Options: see CONFIG_KEYS."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = DEFAULT_API_KEY, **options: Any) -> None:
        self.host = host
        self.state = SimulatorState(api_key, options)
        self.api_key = api_key
        self._server = SimServer((host, port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> SimulatorServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="simulator", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    # In-process equivalents of the control API.
    def configure(self, **options: Any) -> dict[str, Any]:
        return self.state.configure(options)

    def script(self, replies: list[str]) -> None:
        self.state.script(replies)

    def stats(self) -> dict[str, Any]:
        return self.state.snapshot()

    def reset(self) -> None:
        self.state.reset()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
