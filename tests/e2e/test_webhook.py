"""Webhook mode: Telegram posts updates to the bot's HTTP server, through a reverse proxy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, e2e_settings, running_service
from tests.e2e.test_readers import seeded_db

PUBLIC = "https://bot.example"
SECRET = "s3cret_Token-42"


def forged_start(user_id: int, update_id: int) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Mallory"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Mallory"},
            "from": user,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def test_webhook_updates_are_answered_and_forged_ones_refused(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    settings = e2e_settings(
        fake_api,
        await seeded_db(tmp_path),
        http_host="127.0.0.1",
        http_port=0,
        webhook_url=f"{PUBLIC}/tg/hook",
        webhook_secret=SECRET,
        webhook_max_connections=12,
    )
    fake_api.emulator.add_user(801, "Ada")
    reader = Reader(fake_api, 801)
    async with running_service(settings) as (_app, base), httpx.AsyncClient() as http:
        fake_api.route_webhook(PUBLIC, base)  # the reverse proxy in front of the bot
        [set_webhook] = [c for c in fake_api.emulator.calls if c.method == "setWebhook"]
        assert set_webhook.params["url"] == f"{PUBLIC}/tg/hook"
        assert set_webhook.params["secret_token"] == SECRET
        assert int(set_webhook.params["max_connections"]) == 12
        allowed = set_webhook.params["allowed_updates"]
        allowed = json.loads(allowed) if isinstance(allowed, str) else allowed
        assert {"message", "callback_query"} <= set(allowed)

        [chooser] = await reader.send("/start")  # delivered by POST to the bot, answered
        assert "Welcome" in chooser.text
        answer = await reader.press(chooser, chooser.buttons[0]["callback_data"])
        assert answer["text"] in {"Following", "Not following"}
        assert all(d.ok for d in fake_api.webhook_deliveries)

        # Forged requests: no secret, a wrong one. Refused, and nothing happens.
        update = forged_start(999, 10_000)
        missing = await http.post(f"{base}/tg/hook", json=update)
        wrong = await http.post(
            f"{base}/tg/hook",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"},
        )
        assert (missing.status_code, wrong.status_code) == (403, 403)
        # Not JSON, with the secret: a clear 400, no crash.
        garbage = await http.post(
            f"{base}/tg/hook",
            content=b"not json",
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert garbage.status_code == 400
        assert (await http.get(f"{base}/tg/hook")).status_code == 405

        health = (await http.get(f"{base}/healthz")).json()
        assert health["mode"] == "webhook" and health["status"] == "ok"

        # Telegram redelivers an update whose answer it missed: it is handled once.
        fake_api.emulator.add_user(802, "Bob", started=True)
        again = forged_start(802, 20_000)
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        for _ in range(2):
            assert (await http.post(f"{base}/tg/hook", json=again, headers=headers)).is_success

        [hint] = await reader.send("/help")  # still answering after the forgeries
        assert "/latest" in hint.text
        await fake_api.emulator.wait_for(lambda: len(fake_api.emulator.messages(802)) >= 1)
        assert len(fake_api.emulator.messages(802)) == 1
    assert fake_api.emulator.messages(999) == []
    assert "getUpdates" not in [c.method for c in fake_api.emulator.calls]
