"""The call chain: its layers (observed, cache, fallbacks, budget, breaker, limits, retry, attempt) and their parts."""
