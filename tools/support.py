"""What every tool shares: credentials to a gateway client, parameter checks, error translation.

Tool modules may define exactly one `Tool` subclass each (the SDK loads them by scanning the
module), so shared behaviour lives here as plain functions, not as a base class.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Generator, Iterable
from functools import wraps
from typing import Any

import redis

from gateway import ChatRequest, ConfigurationError, GatewayClient, GatewayConfig, GatewayError
from gateway.call.routing import AUTO, ModelRouter
from gateway.client import CallOptions
from gateway.config import parse_dify_files_url, parse_number, parse_webhook_allowlist
from gateway.errors import FieldError, redact_known_secrets
from gateway.models import RoutingDecision
from gateway.spend.budget import BudgetExceeded, BudgetPolicy, Identity, parse_budgets
from gateway.spend.cache import MODES as CACHE_MODES
from gateway.state.backends import state_for
from untrusted import InputError, check_text, parse_json, quote

logger = logging.getLogger("holysheep")


def _send_call_log_to_daemon() -> None:
    """The gateway's one JSON line per call (`holysheep.calls`) goes to the daemon's plugin log through
    the SDK's own log handler (a `{"event": "log"}` protocol message), not to stderr."""
    from dify_plugin.config.logger_format import plugin_logger_handler

    call_log = logging.getLogger("holysheep.calls")
    if plugin_logger_handler not in call_log.handlers:
        call_log.addHandler(plugin_logger_handler)
        call_log.propagate = False


_send_call_log_to_daemon()

MAX_PROMPT_CHARS = 2_000_000
# What a workflow is shown of an error at most: enough to say what to fix, far under the 5 MiB line.
MAX_ERROR_CHARS = 2000


class ToolInputError(Exception):
    """A tool's request cannot be served as given; the whole message says what to fix. A single
    invalid parameter is a FieldError instead, formatted here, at the boundary."""


class HolySheepToolError(Exception):
    """What a workflow sees when a tool fails: a clean message, no traceback, no secret."""


def reported_errors[T](invoke: Callable[..., Generator[T, None, None]]) -> Callable[..., Generator[T, None, None]]:
    """Turns every failure of a tool's `_invoke` into one HolySheepToolError with a message that says
    what to fix; unexpected errors are logged (redacted) for the plugin author."""

    @wraps(invoke)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[T, None, None]:
        ids = _IdsOf(args[0] if args else None)
        try:
            yield from invoke(*args, **kwargs)
        except HolySheepToolError:
            raise
        except FieldError as exc:  # a tool parameter: named as the workflow editor shows it
            raise HolySheepToolError(ids.told(shown(f"'{exc.field}': {exc.problem}"))) from None
        except (ToolInputError, GatewayError) as exc:
            raise HolySheepToolError(ids.told(shown(str(exc)), getattr(exc, "request_id", None))) from None
        except redis.RedisError as exc:  # the last line: a tool that did not word a Redis outage itself
            raise HolySheepToolError(ids.told(shown(_redis_error_message(args[0] if args else None, exc)))) from None
        except Exception as exc:
            logger.error("unexpected error in tool: %s", ids.told(shown(repr(exc))))
            raise HolySheepToolError(ids.told(shown(f"internal error in the HolySheep plugin ({type(exc).__name__}): {exc}"))) from None

    return wrapper


def _redis_error_message(tool: Any, exc: redis.RedisError) -> str:
    """A Redis error no store worded, described for the tool's redis_url when there is one: which server or
    cluster, and what to fix (a cluster node behind a redis:// URL answering MOVED, a cluster that is down)."""
    from gateway.state.redis_connection import describe_redis_error, redis_client

    credentials = getattr(getattr(tool, "runtime", None), "credentials", None) or {}
    url = str(credentials.get("redis_url") or "") if isinstance(credentials, dict) else ""
    try:
        client = redis_client(url) if url else None
    except ValueError:  # not a URL redis-py reads (validation says so)
        client = None
    if client is None:
        what = "cannot reach Redis" if isinstance(exc, redis.ConnectionError | redis.TimeoutError) else "Redis failed"
        return f"redis_url: {what} ({type(exc).__name__}); check Redis runs, ask again"
    return f"redis_url: {describe_redis_error(exc, client)}"


class _IdsOf:
    """The ids an error message of `tool`'s invocation ends with."""

    def __init__(self, tool: Any) -> None:
        self.tool = tool

    def told(self, message: str, gateway_request_id: str | None = None) -> str:
        if self.tool is None or (getattr(self.tool, "session", None) is None and getattr(self.tool, "runtime", None) is None):
            return message
        return message + ids_suffix(correlation_id(self.tool), gateway_request_id)


def ids_suffix(correlation: str, gateway_request_id: str | None = None) -> str:
    """` [correlation_id: ..., gateway_request_id: ...]`, what every error message ends with."""
    shown_id = re.sub(r"[^A-Za-z0-9._:/-]", "?", str(gateway_request_id or ""))[:100]
    return f" [correlation_id: {correlation}" + (f", gateway_request_id: {shown_id}" if shown_id else "") + "]"


# ----------------------------------------------------------------------------- correlation ids


def correlation_id(tool: Any) -> str:
    """The invocation's correlation id: `hs-` and 24 hex digits of a SHA-256 over what Dify sends about it
    (the session id; the app, conversation, message and user ids when present), so the same invocation
    always gets the same id and none of those ids leaves the plugin. It goes to the gateway as
    X-Request-Id, into the outputs, every error message and every log line of the invocation; batch items
    add `-<index>`. Without a session id (a caller outside the daemon) a random part keeps it unique."""
    known = getattr(tool, "_holysheep_correlation_id", None)
    if known:
        return str(known)
    session = getattr(tool, "session", None)
    runtime = getattr(tool, "runtime", None)
    session_id = getattr(session, "session_id", None) or getattr(runtime, "session_id", None) or ""
    parts = [
        str(session_id),
        str(getattr(session, "app_id", None) or ""),
        str(getattr(session, "conversation_id", None) or ""),
        str(getattr(session, "message_id", None) or ""),
        str(getattr(runtime, "user_id", None) or ""),
    ]
    if not session_id:
        parts.append(uuid.uuid4().hex)
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]
    value = f"hs-{digest}"
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        tool._holysheep_correlation_id = value  # one id for the whole invocation
    return value


def tool_label(tool: Any) -> str:
    """The tool's name as a metrics label: ChatTool -> chat, StreamChatTool -> stream_chat."""
    name = type(tool).__name__.removesuffix("Tool") or "other"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()[:40]


def shown(message: str) -> str:
    """A message as a user may see it: no secret, bounded, valid Unicode (a lone surrogate would make the
    SDK fail to write the answer at all)."""
    text = redact_known_secrets(message[: MAX_ERROR_CHARS * 2])
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + f"… ({len(message)} characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# ----------------------------------------------------------------------------- credentials


def gateway_config(credentials: dict[str, Any]) -> GatewayConfig:
    try:
        return GatewayConfig.from_credentials(credentials)
    except ConfigurationError as exc:
        raise ToolInputError(f"provider credentials: {exc}. Fix it in the plugin's authorization settings.") from None


def gateway_client(credentials: dict[str, Any]) -> GatewayClient:
    config = gateway_config(credentials)
    return GatewayClient.shared(config, state=state_for(config.redis_url))


def validate_provider_credentials(credentials: dict[str, Any]) -> str | None:
    """None when the credentials work; otherwise the message to show in the credentials form."""
    try:
        config = GatewayConfig.from_credentials(credentials)
        client = GatewayClient.shared(config, state=state_for(config.redis_url))
        models = client.list_models(timeout=min(15.0, config.timeout_seconds))
    except GatewayError as exc:
        return redact_known_secrets(str(exc))
    if config.redis_url:
        problem = redis_problem(config.redis_url)
        if problem:
            return f"redis_url: {problem}"
    try:  # the file and webhook address settings: refused when saved, not at the first file or webhook
        parse_dify_files_url(credentials.get("dify_files_url"))
        parse_webhook_allowlist(credentials.get("webhook_allowlist"))
    except FieldError as exc:
        return str(exc)
    if str(credentials.get("approval_policy") or "").strip():
        try:
            approval_policy({}, credentials)  # validates the credential's policy
        except ToolInputError as exc:
            return str(exc)
    if not models:
        return f"{config.base_url}/models returned no models: check that this key has access to any model"
    return None


def redis_problem(redis_url: str) -> str | None:
    from gateway.state.redis_connection import wrong_kind_problem
    from gateway.state.redis_state import RedisState, RedisUnavailable

    try:
        state = state_for(redis_url)
        assert isinstance(state, RedisState)
        state.ping()
    except RedisUnavailable as exc:
        return str(exc)
    except ValueError as exc:  # redis-py refuses a malformed URL
        return f"not a valid Redis URL ({exc}); use redis://:password@host:6379/0"
    return wrong_kind_problem(state.client)


def approval_policy(params: dict[str, Any], credentials: dict[str, Any]) -> tuple[Any, str]:
    """The policy that decides and where it came from: "credential", "parameter" or "bundled".

    An administrator's `approval_policy` credential cannot be replaced by a workflow's `policy` parameter.
    """
    from approval.policy import Policy, PolicyError

    parameter = str(params.get("policy") or "").strip()
    credential = str(credentials.get("approval_policy") or "").strip()
    if parameter and credential:
        raise ToolInputError(
            "'policy': the provider's approval_policy credential is set; a workflow cannot replace it. "
            "Leave 'policy' empty to use the administrator's policy, or ask the administrator to change the credential"
        )
    for source, label, text in (("credential", "approval_policy credential", credential), ("parameter", "'policy'", parameter)):
        if text:
            try:
                return Policy.load(text), source
            except PolicyError as exc:
                raise ToolInputError(f"{label}: {exc}") from None
    return Policy.bundled(), "bundled"


# ----------------------------------------------------------------------------- parameters


def text_param(params: dict[str, Any], name: str, *, required: bool = False, default: str = "", max_chars: int = MAX_PROMPT_CHARS) -> str:
    value = params.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    try:
        check_text(value, max_chars=max_chars)
    except InputError as exc:
        raise FieldError(name, str(exc)) from None
    if required and not value.strip():
        raise FieldError(name, "is empty: give it some text")
    return value if value.strip() else default


def number_param(params: dict[str, Any], name: str, **limits: Any) -> Any:
    return parse_number(params.get(name), field=name, **limits)


def bool_param(params: dict[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)  # Dify types a parameter default as number-or-string: `false` arrives as 0.0
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if text in ("true", "1", "1.0", "yes", "on"):
        return True
    if text in ("false", "0", "0.0", "no", "off"):
        return False
    raise FieldError(name, f"must be true or false, got {quote(value)}")


def choice_param(params: dict[str, Any], name: str, choices: Iterable[str], default: str) -> str:
    raw = params.get(name)
    value = (raw.strip() if isinstance(raw, str) else "" if raw is None else str(raw)) or default
    allowed = list(choices)
    if value not in allowed:
        raise FieldError(name, f"must be one of {', '.join(allowed)}; got {quote(raw)}")
    return value


# ----------------------------------------------------------------------------- chat requests


def chat_request(params: dict[str, Any], client: GatewayClient, *, prompt: str | None = None) -> tuple[ChatRequest, RoutingDecision | None]:
    """The shared chat parameters (prompt, system_prompt, model/custom_model, temperature, top_p,
    max_tokens, json_output/json_schema, seed, stop) as a request, with `auto` resolved."""
    prompt = text_param(params, "prompt", required=True) if prompt is None else prompt
    system_prompt = text_param(params, "system_prompt")
    response_format = response_format_param(params)
    model, routing = model_param(params, client, prompt=prompt, system_prompt=system_prompt, json_output=response_format is not None)
    stop = text_param(params, "stop")
    if response_format is not None and "json" not in f"{system_prompt}\n{prompt}".lower():
        # OpenAI-compatible JSON mode refuses a request whose messages never mention JSON.
        system_prompt = (system_prompt + "\n\n" if system_prompt else "") + "Respond with a JSON object only."
    request = ChatRequest.from_prompt(
        prompt,
        system_prompt=system_prompt,
        model=model,
        temperature=number_param(params, "temperature", default=None, minimum=0, maximum=2, allow_none=True),
        top_p=number_param(params, "top_p", default=None, minimum=0, maximum=1, allow_none=True),
        max_tokens=number_param(params, "max_tokens", default=None, minimum=1, maximum=1_000_000, integer=True, allow_none=True),
        seed=number_param(params, "seed", default=None, integer=True, allow_none=True),
        stop=[s for s in stop.split("\n") if s][:4] or None,
        response_format=response_format,
    )
    return request, routing


def model_param(
    params: dict[str, Any], client: GatewayClient, *, prompt: str, system_prompt: str = "", json_output: bool = False
) -> tuple[str, RoutingDecision | None]:
    """`custom_model` (free text) wins over the `model` select; `default` means the provider's
    default model; `auto` routes by prompt."""
    custom = text_param(params, "custom_model", max_chars=200).strip()
    selected = custom or str(params.get("model") or "").strip() or "default"
    if selected == "default":
        return client.config.default_model, None
    if selected == AUTO:
        decision = ModelRouter.bundled().choose(prompt, system_prompt=system_prompt, json_output=json_output, prices=client.prices)
        return decision.model, decision
    if not custom and client.prices.resolve(selected) is None:
        known = ", ".join(["default", AUTO, *client.prices.models])
        raise FieldError("model", f"must be one of {known} (or set 'custom_model'); got {quote(selected)}")
    return selected, None


def response_format_param(params: dict[str, Any]) -> dict[str, Any] | None:
    schema_text = text_param(params, "json_schema", max_chars=100_000).strip()
    if schema_text:
        try:
            schema = parse_json(schema_text, max_bytes=100_000, max_depth=32)
        except InputError as exc:
            raise FieldError("json_schema", str(exc)) from None
        if not isinstance(schema, dict):
            raise FieldError("json_schema", "must be a JSON object describing the output (a JSON Schema)")
        if "schema" in schema and isinstance(schema["schema"], dict):
            name, inner = str(schema.get("name") or "output"), schema["schema"]
        else:
            name, inner = "output", schema
        if inner.get("type", "object") != "object":
            raise FieldError("json_schema", 'must describe an object: its top-level "type" must be "object"')
        if "properties" in inner and not isinstance(inner["properties"], dict):
            raise FieldError("json_schema", '"properties" must be an object mapping names to schemas')
        return {"type": "json_schema", "json_schema": {"name": name, "schema": inner, "strict": False}}
    if bool_param(params, "json_output"):
        return {"type": "json_object"}
    return None



# ----------------------------------------------------------------------------- spend control

SPEND_VARIABLES = (
    "reasoning", "cache", "cost_saved_usd", "budget_exceeded", "budget_remaining_usd",
    "budget", "budget_spent_usd", "budget_limit_usd", "budget_resets_at",
)


def caller_identity(tool: Any) -> Identity:
    """The Dify app and user calling the tool, as plain strings (empty when the daemon gives none)."""
    session = getattr(tool, "session", None)
    runtime = getattr(tool, "runtime", None)
    app_id = getattr(session, "app_id", None) or ""
    user_id = getattr(runtime, "user_id", None) or ""
    return Identity(app_id=str(app_id)[:200], user_id=str(user_id)[:200])


def budget_policy(params: dict[str, Any], client: GatewayClient, *, per_call: str = "max_cost_usd", batch: str | None = None) -> BudgetPolicy | None:
    """The administrator's budgets (credential), tightened by the workflow's `budgets`, `max_cost_usd`
    (per call; per item in a batch) and, for batch_chat, `batch_budget_usd`. A workflow never loosens."""
    workflow = parse_budgets(text_param(params, "budgets", max_chars=20_000), field_name="budgets", admin=False)
    call_limit = number_param(params, per_call, default=None, minimum=0, maximum=1_000_000, allow_none=True)
    batch_limit = number_param(params, batch, default=None, minimum=0, maximum=1_000_000, allow_none=True) if batch else None
    if call_limit is not None or batch_limit is not None:
        workflow = (workflow or BudgetPolicy()).tightened(BudgetPolicy(call=call_limit, batch=batch_limit))
    admin = client.config.budgets
    if admin is None:
        return workflow if workflow is not None and workflow.active else None
    return admin.tightened(workflow)


def cache_mode(params: dict[str, Any]) -> str:
    return choice_param(params, "cache", CACHE_MODES, "auto")


def call_options(tool: Any, params: dict[str, Any], client: GatewayClient) -> CallOptions:
    """Budgets, the caller's identity and the cache mode of one chat or stream_chat call."""
    return CallOptions(
        budget=budget_policy(params, client),
        identity=caller_identity(tool),
        cache=cache_mode(params),
        tool=tool_label(tool),
        correlation_id=correlation_id(tool),
    )


def budget_refusal_output(exc: BudgetExceeded, request: ChatRequest) -> dict[str, Any]:
    """What a workflow receives when a call was not sent for a budget: an outcome to branch on."""
    return {
        "model": request.model,
        "attempts": exc.attempts,
        "cost_usd": 0.0,
        "cost_saved_usd": 0.0,
        "cache": "bypass",
        "reasoning": "",
        "warnings": [str(exc)],
        **exc.outcome(),
    }
