"""HolySheep gateway client: the only place the plugin speaks HTTP. Never imports dify_plugin."""

from gateway.client import CallOptions, Deadline, GatewayClient
from gateway.config import GatewayConfig, normalize_base_url, sanitize_api_key
from gateway.errors import (
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConfigurationError,
    FieldError,
    GatewayError,
    GatewayTimeoutError,
    InBandStreamError,
    NotOpenAICompatibleError,
    RateLimitedError,
    StreamInterruptedError,
    UpstreamUnavailableError,
)
from gateway.models import ChatRequest, ChatResult, StreamCompleted, TextDelta, Usage
from gateway.spend.pricing import PriceTable

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CallOptions",
    "ChatRequest",
    "ChatResult",
    "CircuitOpenError",
    "ConfigurationError",
    "Deadline",
    "FieldError",
    "GatewayClient",
    "GatewayConfig",
    "GatewayError",
    "GatewayTimeoutError",
    "InBandStreamError",
    "NotOpenAICompatibleError",
    "PriceTable",
    "RateLimitedError",
    "StreamCompleted",
    "StreamInterruptedError",
    "TextDelta",
    "UpstreamUnavailableError",
    "Usage",
    "normalize_base_url",
    "sanitize_api_key",
]
