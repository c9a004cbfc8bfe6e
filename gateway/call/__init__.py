"""The call chain: retry, breaker, rate limits and pacing, routing, results, batches."""
