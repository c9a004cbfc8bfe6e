"""Shared state: the Redis key names, the Redis connection, breaker and limits state, backend choice."""
