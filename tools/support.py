"""Credentials to a gateway client, and the check of the provider's credentials form.

Tool modules may define exactly one `Tool` subclass each (the SDK loads them by scanning the module), so
shared behaviour lives in small modules beside the tools: reporting (what a workflow sees when a tool fails),
correlation (ids and labels), spend (call options, budget refusals); parameters are parsed in specs/.
"""

from __future__ import annotations

from typing import Any

import services
from gateway import ConfigurationError, GatewayClient, GatewayConfig, GatewayError
from gateway.config import parse_dify_files_url, parse_webhook_allowlist
from gateway.errors import FieldError, redact_known_secrets
from tools.reporting import ToolInputError  # also sends the call log to the daemon's plugin log


def gateway_config(credentials: dict[str, Any]) -> GatewayConfig:
    try:
        return GatewayConfig.from_credentials(credentials)
    except ConfigurationError as exc:
        raise ToolInputError(f"provider credentials: {exc}. Fix it in the plugin's authorization settings.") from None


def gateway_client(credentials: dict[str, Any]) -> GatewayClient:
    return services.current().gateway.client(gateway_config(credentials))


def validate_provider_credentials(credentials: dict[str, Any]) -> str | None:
    """None when the credentials work; otherwise the message to show in the credentials form."""
    try:
        config = GatewayConfig.from_credentials(credentials)
        client = services.current().gateway.client(config)
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
        from specs.approval_specs import approval_policy

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
        state = services.current().gateway.backends.state_for(redis_url)
        assert isinstance(state, RedisState)
        state.ping()
    except RedisUnavailable as exc:
        return str(exc)
    except ValueError as exc:  # redis-py refuses a malformed URL
        return f"not a valid Redis URL ({exc}); use redis://:password@host:6379/0"
    return wrong_kind_problem(state.client)


