"""Digests: which stories a chat gets (builder), the scheduled round above the engine
(rounds), keyword alerts, and /digest (service)."""
