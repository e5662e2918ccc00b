"""`newsbot run` as an operator runs it: the HTTP server, health and metrics, polling mode."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, e2e_settings, running_service


async def test_polling_mode_answers_and_serves_health_and_metrics(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    settings = e2e_settings(
        fake_api, f"sqlite:///{tmp_path / 'bot.db'}", http_host="127.0.0.1", http_port=0
    )
    fake_api.emulator.add_user(601, "Ada")
    reader = Reader(fake_api, 601)
    async with running_service(settings) as (application, base), httpx.AsyncClient() as http:
        [greeting] = await reader.send("/start")
        assert "Welcome" in greeting.text

        health = await http.get(f"{base}/healthz")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "ok" and body["database"] == "ok"
        assert body["mode"] == "polling" and body["poller"] is True

        metrics = (await http.get(f"{base}/metrics")).text
        assert 'newsbot_updates_total{type="message"} 1.0' in metrics
        assert "newsbot_update_latency_seconds_count 1.0" in metrics
        assert "newsbot_is_poller 1.0" in metrics
        assert "newsbot_telegram_429_total 0.0" in metrics
        assert "newsbot_tick_lag_seconds" in metrics

        # A tick that stopped running makes the instance unhealthy.
        application.bot_data.metrics.last_tick = time.monotonic() - 600
        stale = await http.get(f"{base}/healthz")
        assert stale.status_code == 503
        assert stale.json()["ticking"] is False

        # No webhook route in polling mode.
        assert (await http.post(f"{base}/tg/hook", json={})).status_code == 404
    # setWebhook is never called in polling mode, and polling met no conflict.
    assert "setWebhook" not in [call.method for call in fake_api.emulator.calls]
