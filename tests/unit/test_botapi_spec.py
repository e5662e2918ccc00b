"""fakebotapi/botapi_methods.json: a faithful, compact copy of the official Bot API method list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fakebotapi.emulator import BotApiEmulator, method_specs

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPACT = REPO_ROOT / "fakebotapi" / "botapi_methods.json"
OFFICIAL = REPO_ROOT.parent / "shared" / "telegram-bot-api" / "api.json"


def compact_spec(api: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """What botapi_methods.json must hold for an api.json."""
    out: dict[str, dict[str, list[str]]] = {}
    for name in sorted(api["methods"]):
        fields = api["methods"][name].get("fields", [])
        out[name] = {
            "required": [f["name"] for f in fields if f["required"]],
            "optional": [f["name"] for f in fields if not f["required"]],
        }
    return out


def render(spec: dict[str, dict[str, list[str]]]) -> str:
    """One method a line, so a new Bot API version shows up as a readable diff."""
    lines = [f"{json.dumps(name)}: {json.dumps(entry)}" for name, entry in spec.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def test_compact_spec_matches_the_official_list() -> None:
    if not OFFICIAL.exists():
        pytest.skip(f"{OFFICIAL} is absent: nothing to compare against")
    expected = compact_spec(json.loads(OFFICIAL.read_text("utf-8")))
    actual = json.loads(COMPACT.read_text("utf-8"))
    assert actual == expected, (
        "fakebotapi/botapi_methods.json is out of date; regenerate it with "
        "`python -m tests.unit.test_botapi_spec`"
    )


def test_every_emulated_method_is_an_official_one() -> None:
    specs = method_specs()
    emulated = {
        "getMe", "logOut", "close", "getUpdates", "deleteWebhook", "setWebhook",
        "getWebhookInfo", "setMyCommands", "getMyCommands", "deleteMyCommands", "sendMessage",
        "sendPhoto", "editMessageText", "editMessageCaption", "editMessageMedia",
        "editMessageReplyMarkup", "deleteMessage", "answerCallbackQuery", "answerInlineQuery",
        "sendChatAction", "getChat", "getChatMember", "getChatAdministrators",
        "setMyDescription", "getMyDescription", "setMyShortDescription", "getMyShortDescription",
        "createForumTopic",
    }  # fmt: skip
    assert {specs[name.lower()].name for name in emulated} == emulated
    assert specs["sendmessage"].required == ("chat_id", "text")
    assert "reply_markup" in specs["sendmessage"].optional
    assert specs["sendphoto"].required == ("chat_id", "photo")
    assert specs["editmessagemedia"].required == ("media",)
    assert specs["createforumtopic"].required == ("chat_id", "name")
    assert "message_thread_id" in specs["sendmessage"].optional
    assert "message_thread_id" in specs["sendphoto"].optional
    assert BotApiEmulator().emulated_methods == emulated


if __name__ == "__main__":
    COMPACT.write_text(render(compact_spec(json.loads(OFFICIAL.read_text("utf-8")))), "utf-8")
    print(f"wrote {COMPACT}")
