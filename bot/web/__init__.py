"""The bot's HTTP side: server.py (the Starlette app: webhook, /healthz, /metrics) and the
newsroom API under /api/v1 (api.py, one router per resource, deps.py, schemas.py,
idempotency.py)."""
