"""Batch jobs beyond one tool call: items in a Redis Stream, worked on by every plugin process that
knows the gateway, with leases, reclaim and graceful shutdown (see jobs/engine.py). No Dify import."""
