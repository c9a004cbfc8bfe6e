"""Approval routing: delegation-of-authority policy as data, an engine where the LLM can only raise
the bar, and an explicit state machine with stores. Never imports dify_plugin."""
