"""Which declared parameters each tool takes, in the order its YAML lists them: the source the tool YAML's
`parameters:` blocks are generated from (`./dev sync-models`, devtools/model_options.py)."""

from __future__ import annotations

from specs.chat_parameters import (
    BATCH_BUDGET_USD,
    BUDGETS,
    CACHE,
    CONCURRENCY,
    CUSTOM_MODEL,
    JSON_OUTPUT,
    JSON_SCHEMA,
    MAX_COST_USD,
    MAX_TOKENS,
    MODEL,
    PROMPT,
    PROMPTS,
    RPM_LIMIT,
    SEED,
    STOP,
    STREAM_REASONING,
    SYSTEM_PROMPT,
    TEMPERATURE,
    TOP_P,
    TPM_LIMIT,
)
from specs.declare import Param
from specs.job_parameters import (
    BATCH_BUDGET_USD_JOB,
    BUDGETS_JOB,
    CONCURRENCY_JOB,
    CUSTOM_MODEL_JOB,
    DEADLINE_HOURS,
    FILE,
    ID_COLUMN,
    JSON_OUTPUT_JOB,
    JSON_SCHEMA_JOB,
    LEASE_SECONDS,
    MAX_COST_USD_JOB,
    MAX_TOKENS_JOB,
    MODE,
    MODEL_JOB,
    PROMPT_COLUMN,
    PROMPTS_JOB,
    RPM_LIMIT_JOB,
    SYSTEM_PROMPT_JOB,
    TEMPERATURE_JOB,
    TPM_LIMIT_JOB,
)

# The shared chat parameters (ChatSpec) and the spend options (SpendSpec), as chat and stream_chat list them.
CHAT = (PROMPT, SYSTEM_PROMPT, MODEL, CUSTOM_MODEL, TEMPERATURE, MAX_TOKENS, TOP_P, SEED, STOP, JSON_OUTPUT, JSON_SCHEMA)
SPEND = (CACHE, MAX_COST_USD, BUDGETS)

TOOL_PARAMETERS: dict[str, tuple[Param, ...]] = {
    "chat": (*CHAT, *SPEND),
    "stream_chat": (*CHAT, *SPEND, STREAM_REASONING),
    "batch_chat": (
        PROMPTS, SYSTEM_PROMPT, MODEL, CUSTOM_MODEL, TEMPERATURE, MAX_TOKENS, JSON_OUTPUT, JSON_SCHEMA,
        CONCURRENCY, RPM_LIMIT, TPM_LIMIT, *SPEND, BATCH_BUDGET_USD,
    ),
    "batch_submit": (
        PROMPTS_JOB, FILE, PROMPT_COLUMN, ID_COLUMN, SYSTEM_PROMPT_JOB, MODEL_JOB, CUSTOM_MODEL_JOB, TEMPERATURE_JOB,
        MAX_TOKENS_JOB, JSON_OUTPUT_JOB, JSON_SCHEMA_JOB, CONCURRENCY_JOB, RPM_LIMIT_JOB, TPM_LIMIT_JOB, MODE, DEADLINE_HOURS,
        LEASE_SECONDS, MAX_COST_USD_JOB, BUDGETS_JOB, BATCH_BUDGET_USD_JOB,
    ),
}
