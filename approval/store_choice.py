"""The one place that picks where approval records live.

- **Redis** (``redis_url`` configured): ``approval.redis_store``, shared by every plugin process, atomic
  compare-and-set, every key owned by the workspace (``keys``, from the API key); it wins over everything else.
- **Dify plugin storage** (the workflow asked to persist, ``persist: true``): ``approval.kv_store`` over
  the storage the tool passes in (``self.session.storage``), so approval/ never imports dify_plugin.
- **The workflow's variables** (neither): a ``MemoryApprovalStore`` made for one call; nothing outlives it.

With the last two, a request the store does not hold is the record the workflow carries (``carried``).
Redis is only imported when it is configured; its connection is ``gateway.state.redis_connection``'s, one pool
per URL for the process.
"""

from __future__ import annotations

from dataclasses import dataclass

from approval.kv_store import KeyValueApprovalStore, KeyValueStorage
from approval.records import ApprovalStore, CarriedRecord, MemoryApprovalStore
from gateway.state.keys import Keys

# The `store` output of the approval tools.
WORKFLOW = "none"
DIFY_STORAGE = "dify_storage"
REDIS = "redis"


@dataclass(frozen=True)
class ChosenStore:
    store: ApprovalStore
    name: str  # WORKFLOW, DIFY_STORAGE or REDIS

    @property
    def keeps_records(self) -> bool:
        """Whether the record outlives the call (Dify storage or Redis)."""
        return self.name != WORKFLOW


def store_for(
    redis_url: str | None,
    *,
    keys: Keys | None = None,
    storage: KeyValueStorage | None = None,
    carried: CarriedRecord | None = None,
) -> ChosenStore:
    """Redis when ``redis_url`` is set (then ``keys``, the workspace's, is required); else Dify plugin
    storage when ``storage`` is given (persist); else
    the workflow's variables. Creating a Redis store does not connect: its first operation raises
    StoreUnavailable when Redis cannot be reached, and a malformed URL is a ValueError naming redis_url."""
    url = (redis_url or "").strip()
    if url:
        from approval.redis_store import RedisApprovalStore  # redis is only imported when configured

        if keys is None:
            raise ValueError("keys: the Redis approval store needs the workspace's keys (Keys.for_api_key)")
        return ChosenStore(RedisApprovalStore.from_url(url, keys), REDIS)
    if storage is not None:
        return ChosenStore(KeyValueApprovalStore(storage, carried=carried), DIFY_STORAGE)
    return ChosenStore(MemoryApprovalStore(carried=carried), WORKFLOW)


__all__ = ["DIFY_STORAGE", "REDIS", "WORKFLOW", "ChosenStore", "store_for"]
