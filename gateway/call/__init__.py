"""The call chain: its layers (observed, cache, fallbacks, budget, breaker, limits, retry loop, attempt) and their parts (retry, breaker, rate limits, pacing, routing, results, batches)."""
