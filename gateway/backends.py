"""The one place that picks where shared state lives: in this process, or in Redis.

Interface modules (`gateway.state`) hold the protocol and the in-process version; Redis modules
import them, never the reverse, and only this module chooses between them.
"""

from __future__ import annotations

import threading

from gateway.state import PROCESS_STATE, SharedState

_redis_states: dict[str, SharedState] = {}
_lock = threading.Lock()


def state_for(redis_url: str) -> SharedState:
    """In-process unless a Redis URL is configured; one RedisState per URL for the life of the process
    (its connection pool is the process's one pool for that URL, `gateway.redis_connection`)."""
    if not redis_url:
        return PROCESS_STATE
    with _lock:
        state = _redis_states.get(redis_url)
        if state is None:
            from gateway.redis_state import RedisState  # redis is only imported when configured

            state = _redis_states[redis_url] = RedisState(redis_url)
        return state
