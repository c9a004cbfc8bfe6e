"""Batch jobs beyond one tool call: items in a Redis Stream, worked on by every plugin process that
knows the gateway, with leases, reclaim and graceful shutdown. No Dify import.

queue (the engine: stores, gateways, runners started), worker (a runner and its items), counting_transport
(each request counted in Redis and holding a slot), results (result records and their writer), result_files (CSV and JSONL
of a job's results), store
(the job in Redis), inputs (prompts and files into items), spend_cap (a job's budgets), service (what the
job tools do), lifecycle (shutdown)."""
