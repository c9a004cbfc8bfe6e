"""BatchSpec: batch_chat's parameters (the prompts, the shared chat parameters, concurrency, rate limits,
spend options), parsed in one pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.call.batch import BatchInput, BatchInputError, parse_batch_input
from gateway.call.rate_limits import LimitSettings
from specs.chat_spec import ChatSpec, SpendSpec
from specs.input_errors import ToolInputError
from specs.params import Params, number_param

if TYPE_CHECKING:
    from gateway.spend.pricing import PriceTable

MAX_CONCURRENCY = 100
MAX_RPM = 1_000_000
MAX_TPM = 1_000_000_000


def limit_settings(params: Params) -> LimitSettings:
    return LimitSettings(
        rpm=number_param(params, "rpm_limit", default=0, minimum=0, maximum=MAX_RPM, integer=True),
        tpm=number_param(params, "tpm_limit", default=0, minimum=0, maximum=MAX_TPM, integer=True),
    )


def concurrency_param(params: Params) -> int:
    return number_param(params, "concurrency", default=10, minimum=1, maximum=MAX_CONCURRENCY, integer=True)


@dataclass(frozen=True)
class BatchSpec:
    """The prompts and how to run them; each item's request is `chat.for_item(item).request(...)`."""

    batch: BatchInput
    chat: ChatSpec
    concurrency: int
    limits: LimitSettings
    spend: SpendSpec

    @classmethod
    def parse(cls, params: Params, prices: PriceTable) -> BatchSpec:
        try:
            batch = parse_batch_input(params.get("prompts"))
        except BatchInputError as exc:
            raise ToolInputError(str(exc)) from None
        concurrency = concurrency_param(params)
        limits = limit_settings(params)
        spend = SpendSpec.parse(params, batch="batch_budget_usd")
        # The shared parameters are checked once, before anything is sent.
        chat = ChatSpec.parse(params, prices, prompt=batch.items[0].prompt)
        return cls(batch, chat, concurrency, limits, spend)
