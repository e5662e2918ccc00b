"""The emulated Bot API refuses what Telegram refuses, and records what a chat would show."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from fakebotapi.emulator import (
    AnswerWithheld,
    ApiError,
    BotApiEmulator,
    NetworkFaults,
    RateLimits,
    Unanswered,
    too_many_requests,
    webhook_queue,
)

USER = 1001
OTHER = 1002
GROUP = -4001
SUPERGROUP = -1001234567890
CHANNEL = -1009876543210


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def emu() -> BotApiEmulator:
    emulator = BotApiEmulator()
    emulator.add_user(USER, "Ada", "ada", started=True)
    emulator.add_user(OTHER, "Bob")
    return emulator


async def refusal(emu: BotApiEmulator, method: str, **params: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await emu.call(method, params)
    return caught.value


def keyboard(*rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"inline_keyboard": list(rows)}


def button(text: str = "Next", **action: Any) -> dict[str, Any]:
    return {"text": text, **(action or {"callback_data": "next"})}


# --- methods and parameters ------------------------------------------------------------------


async def test_unknown_method_is_not_found(emu: BotApiEmulator) -> None:
    error = await refusal(emu, "sendMesage", chat_id=USER, text="hi")
    assert (error.error_code, error.description) == (404, "Not Found")


async def test_method_names_are_case_insensitive(emu: BotApiEmulator) -> None:
    message = await emu.call("SENDMESSAGE", {"chat_id": USER, "text": "hi"})
    assert message["text"] == "hi"
    assert emu.calls[-1].method == "sendMessage"


async def test_known_but_unemulated_method_is_refused_clearly(emu: BotApiEmulator) -> None:
    error = await refusal(emu, "sendVideo", chat_id=USER, video="file-id")
    assert error.error_code == 400
    assert error.description == "Bad Request: method not supported by the emulator: sendVideo"


async def test_missing_required_parameters_are_refused(emu: BotApiEmulator) -> None:
    assert (await refusal(emu, "sendMessage", text="hi")).description == (
        "Bad Request: chat_id is empty"
    )
    assert (await refusal(emu, "sendMessage", chat_id=USER)).description == (
        "Bad Request: message text is empty"
    )
    assert (await refusal(emu, "answerCallbackQuery")).description == (
        "Bad Request: callback_query_id is required"
    )


async def test_unknown_parameters_are_ignored(emu: BotApiEmulator) -> None:
    message = await emu.call("sendMessage", {"chat_id": USER, "text": "hi", "colour": "red"})
    assert message["text"] == "hi"


async def test_form_encoded_values_are_decoded(emu: BotApiEmulator) -> None:
    markup = json.dumps(keyboard([button()]))
    message = await emu.call(
        "sendMessage", {"chat_id": str(USER), "text": "hi", "reply_markup": markup}
    )
    assert message["chat"]["id"] == USER
    assert message["reply_markup"] == keyboard([button()])


async def test_get_me_describes_the_bot(emu: BotApiEmulator) -> None:
    me = await emu.call("getMe", {})
    assert me["id"] == 123456789
    assert me["is_bot"] is True
    assert me["username"] == emu.bot_username


# --- sendMessage text ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n ", "<b> </b>"])
async def test_empty_text_is_refused(emu: BotApiEmulator, text: str) -> None:
    error = await refusal(emu, "sendMessage", chat_id=USER, text=text, parse_mode="HTML")
    assert (error.error_code, error.description) == (400, "Bad Request: message text is empty")


async def test_text_limit_counts_utf16_units_after_parsing(emu: BotApiEmulator) -> None:
    await emu.call("sendMessage", {"chat_id": USER, "text": "x" * 4096})
    await emu.call("sendMessage", {"chat_id": USER, "text": "😀" * 2048})
    html = "<b>" + "x" * 4000 + "</b>" + "&amp;" * 96
    message = await emu.call("sendMessage", {"chat_id": USER, "text": html, "parse_mode": "HTML"})
    assert len(message["text"]) == 4096
    for text in ("x" * 4097, "😀" * 2048 + "x"):
        error = await refusal(emu, "sendMessage", chat_id=USER, text=text)
        assert (error.error_code, error.description) == (400, "Bad Request: message is too long")


async def test_unparsable_html_is_refused_with_the_reason(emu: BotApiEmulator) -> None:
    error = await refusal(emu, "sendMessage", chat_id=USER, text="a<br>b", parse_mode="HTML")
    assert error.error_code == 400
    assert error.description.startswith("Bad Request: can't parse entities: ")
    assert 'Unsupported start tag "br"' in error.description


async def test_html_message_stores_what_was_sent_and_what_is_shown(emu: BotApiEmulator) -> None:
    sent = await emu.call(
        "sendMessage",
        {"chat_id": USER, "text": "  <b>News</b> &amp; views\n", "parse_mode": "HTML"},
    )
    assert sent["text"] == "News & views"
    assert sent["entities"] == [{"type": "bold", "offset": 0, "length": 4}]
    stored = emu.last_message(USER)
    assert stored is not None
    assert stored.raw_text == "  <b>News</b> &amp; views\n"
    assert stored.text == "News & views"
    assert stored.parse_mode == "HTML"


async def test_unknown_parse_mode_is_refused(emu: BotApiEmulator) -> None:
    error = await refusal(emu, "sendMessage", chat_id=USER, text="hi", parse_mode="BBCode")
    assert error.error_code == 400


async def test_replies_need_the_replied_message(emu: BotApiEmulator) -> None:
    asked = emu.user_sends(USER, "what's new?")
    reply = await emu.call(
        "sendMessage",
        {"chat_id": USER, "text": "this", "reply_parameters": {"message_id": asked["message_id"]}},
    )
    assert reply["reply_to_message"]["text"] == "what's new?"
    error = await refusal(
        emu, "sendMessage", chat_id=USER, text="x", reply_parameters='{"message_id": 999}'
    )
    assert error.description == "Bad Request: message to be replied not found"
    lenient = {"message_id": 999, "allow_sending_without_reply": True}
    await emu.call("sendMessage", {"chat_id": USER, "text": "x", "reply_parameters": lenient})


async def test_malformed_entities_are_refused(emu: BotApiEmulator) -> None:
    error = await refusal(emu, "sendMessage", chat_id=USER, text="hi", entities='[{"type": 1}]')
    assert error.description == "Bad Request: can't parse entities JSON object"
    message = await emu.call(
        "sendMessage",
        {"chat_id": USER, "text": "hi", "entities": [{"type": "bold", "offset": 0, "length": 2}]},
    )
    assert message["entities"] == [{"type": "bold", "offset": 0, "length": 2}]


# --- inline keyboards ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "description"),
    [
        (keyboard([button(callback_data="é" * 33)]), "Bad Request: BUTTON_DATA_INVALID"),
        (keyboard([button(callback_data="x" * 65)]), "Bad Request: BUTTON_DATA_INVALID"),
        (keyboard([button(callback_data="")]), "Bad Request: BUTTON_DATA_INVALID"),
        (keyboard([button(callback_data=7)]), "Bad Request: BUTTON_DATA_INVALID"),
        (keyboard([button()] * 9), "Bad Request: too many buttons in a row"),
        (keyboard(*[[button()] * 5] * 21), "Bad Request: too many buttons"),
        (
            keyboard([{"text": "no action"}]),
            "Bad Request: text buttons are unallowed in the inline keyboard",
        ),
        (keyboard([button("")]), "Bad Request: inline keyboard button text must be non-empty"),
        (keyboard([button(url="javascript:alert(1)")]), "Bad Request: BUTTON_URL_INVALID"),
        ({"inline_keyboard": [button()]}, 'Bad Request: field "inline_keyboard" must be an Array'),
    ],
)
async def test_bad_inline_keyboards_are_refused(
    emu: BotApiEmulator, markup: dict[str, Any], description: str
) -> None:
    error = await refusal(emu, "sendMessage", chat_id=USER, text="hi", reply_markup=markup)
    assert error.error_code == 400
    assert error.description.startswith(description)


async def test_a_button_with_two_actions_is_refused(emu: BotApiEmulator) -> None:
    markup = keyboard([button(callback_data="a", url="https://example.org")])
    error = await refusal(emu, "sendMessage", chat_id=USER, text="hi", reply_markup=markup)
    assert "exactly one of the optional fields" in error.description


async def test_largest_allowed_keyboard_is_accepted(emu: BotApiEmulator) -> None:
    rows = [[button(callback_data=f"{r}:{c}:" + "é" * 29) for c in range(8)] for r in range(12)]
    rows.append([button(url="https://example.org"), button(url="t.me/newsbot")])
    rows.append([button(callback_data="x" * 64), button(callback_data="last")])
    message = await emu.call(
        "sendMessage", {"chat_id": USER, "text": "menu", "reply_markup": keyboard(*rows)}
    )
    assert sum(len(row) for row in message["reply_markup"]["inline_keyboard"]) == 100


# --- chats and users -------------------------------------------------------------------------


async def test_sending_to_unknown_or_unstarted_chats_is_refused(emu: BotApiEmulator) -> None:
    for chat_id in (999, OTHER, "@somebody"):
        error = await refusal(emu, "sendMessage", chat_id=chat_id, text="hi")
        assert (error.error_code, error.description) == (400, "Bad Request: chat not found")


async def test_a_user_who_wrote_has_a_private_chat(emu: BotApiEmulator) -> None:
    emu.user_sends(OTHER, "hello")
    message = await emu.call("sendMessage", {"chat_id": OTHER, "text": "hi Bob"})
    assert message["chat"] == {"id": OTHER, "type": "private", "first_name": "Bob"}


async def test_blocked_and_deactivated_users_are_forbidden(emu: BotApiEmulator) -> None:
    emu.block(USER)
    error = await refusal(emu, "sendMessage", chat_id=USER, text="hi")
    assert (error.error_code, error.description) == (403, "Forbidden: bot was blocked by the user")
    emu.user_sends(USER, "/start")  # writing again means pressing Restart
    await emu.call("sendMessage", {"chat_id": USER, "text": "welcome back"})
    emu.deactivate(USER)
    error = await refusal(emu, "sendMessage", chat_id=USER, text="hi")
    assert (error.error_code, error.description) == (403, "Forbidden: user is deactivated")


async def test_kicked_bot_is_forbidden(emu: BotApiEmulator) -> None:
    emu.add_group(GROUP, "Readers", admins=[USER], members=[OTHER])
    emu.add_group(SUPERGROUP, "Big readers", admins=[USER], supergroup=True)
    emu.kick_bot(GROUP)
    emu.kick_bot(SUPERGROUP)
    error = await refusal(emu, "sendMessage", chat_id=GROUP, text="hi")
    assert (error.error_code, error.description) == (
        403,
        "Forbidden: bot was kicked from the group chat",
    )
    error = await refusal(emu, "sendMessage", chat_id=SUPERGROUP, text="hi")
    assert error.description == "Forbidden: bot was kicked from the supergroup chat"


async def test_migrated_group_points_to_the_supergroup(emu: BotApiEmulator) -> None:
    emu.add_group(GROUP, "Readers", admins=[USER])
    emu.migrate_group(GROUP, SUPERGROUP)
    error = await refusal(emu, "sendMessage", chat_id=GROUP, text="hi")
    assert error.to_json() == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": SUPERGROUP},
    }
    message = await emu.call("sendMessage", {"chat_id": SUPERGROUP, "text": "hi"})
    assert message["chat"] == {"id": SUPERGROUP, "type": "supergroup", "title": "Readers"}


async def test_chat_members_and_administrators(emu: BotApiEmulator) -> None:
    emu.add_group(GROUP, "Readers", admins=[USER, OTHER], members=[1003], bot_is_admin=True)
    emu.add_user(1004, "Outsider")

    async def status(user_id: int) -> str:
        member = await emu.call("getChatMember", {"chat_id": GROUP, "user_id": user_id})
        return str(member["status"])

    assert [await status(u) for u in (USER, OTHER, 1003, 1004, emu.bot_id)] == [
        "creator",
        "administrator",
        "member",
        "left",
        "administrator",
    ]
    admins = await emu.call("getChatAdministrators", {"chat_id": GROUP})
    assert [(a["status"], a["user"]["id"]) for a in admins] == [
        ("creator", USER),
        ("administrator", OTHER),
        ("administrator", emu.bot_id),
    ]
    assert admins[1]["can_delete_messages"] is True
    private = await emu.call("getChatMember", {"chat_id": USER, "user_id": USER})
    assert (private["status"], private["user"]["username"]) == ("member", "ada")
    error = await refusal(emu, "getChatAdministrators", chat_id=USER)
    assert error.error_code == 400
    error = await refusal(emu, "getChatMember", chat_id=GROUP, user_id=5555)
    assert error.description == "Bad Request: user not found"


async def test_get_chat(emu: BotApiEmulator) -> None:
    emu.add_group(GROUP, "Readers", admins=[USER])
    chat = await emu.call("getChat", {"chat_id": GROUP})
    assert (chat["id"], chat["type"], chat["title"]) == (GROUP, "group", "Readers")
    assert "accepted_gift_types" in chat


# --- editing and deleting ------------------------------------------------------------------------


async def send(emu: BotApiEmulator, text: str, markup: dict[str, Any] | None = None) -> int:
    params: dict[str, Any] = {"chat_id": USER, "text": text, "parse_mode": "HTML"}
    if markup is not None:
        params["reply_markup"] = markup
    message = await emu.call("sendMessage", params)
    return int(message["message_id"])


async def test_edit_of_a_missing_message_is_refused(emu: BotApiEmulator) -> None:
    error = await refusal(emu, "editMessageText", chat_id=USER, message_id=77, text="x")
    assert (error.error_code, error.description) == (
        400,
        "Bad Request: message to edit not found",
    )
    emu.user_sends(USER, "my own words")
    user_message = emu.messages(USER, include_user=True)[-1].message_id
    error = await refusal(emu, "editMessageText", chat_id=USER, message_id=user_message, text="x")
    assert error.description == "Bad Request: message can't be edited"


async def test_edit_that_changes_nothing_is_refused(emu: BotApiEmulator) -> None:
    markup = keyboard([button()])
    message_id = await send(emu, "<b>Page 1</b>", markup)
    for params in (
        {"text": "<b>Page 1</b>", "parse_mode": "HTML", "reply_markup": markup},
        {"text": "<strong>Page 1</strong>", "parse_mode": "HTML", "reply_markup": markup},
    ):
        error = await refusal(emu, "editMessageText", chat_id=USER, message_id=message_id, **params)
        assert error.error_code == 400
        assert error.description.startswith("Bad Request: message is not modified: ")
    error = await refusal(
        emu, "editMessageReplyMarkup", chat_id=USER, message_id=message_id, reply_markup=markup
    )
    assert error.description.startswith("Bad Request: message is not modified")
    assert emu.message(USER, message_id).edit_count == 0


async def test_edit_text_without_markup_removes_the_keyboard(emu: BotApiEmulator) -> None:
    message_id = await send(emu, "<b>Page 1</b>", keyboard([button()]))
    edited = await emu.call(
        "editMessageText",
        {"chat_id": USER, "message_id": message_id, "text": "<b>Page 1</b>", "parse_mode": "HTML"},
    )
    assert "reply_markup" not in edited
    assert "edit_date" in edited
    stored = emu.message(USER, message_id)
    assert (stored.edit_count, stored.reply_markup) == (1, None)


async def test_edits_change_what_the_chat_shows(emu: BotApiEmulator) -> None:
    message_id = await send(emu, "Page 1", keyboard([button()]))
    await emu.call(
        "editMessageText",
        {
            "chat_id": USER,
            "message_id": message_id,
            "text": "Page 2",
            "reply_markup": keyboard([button("Back", callback_data="back")]),
        },
    )
    await emu.call("editMessageReplyMarkup", {"chat_id": USER, "message_id": message_id})
    stored = emu.message(USER, message_id)
    assert (stored.text, stored.reply_markup, stored.edit_count) == ("Page 2", None, 2)


async def test_delete_message(emu: BotApiEmulator) -> None:
    message_id = await send(emu, "soon gone")
    assert await emu.call("deleteMessage", {"chat_id": USER, "message_id": message_id}) is True
    assert emu.messages(USER) == []
    error = await refusal(emu, "deleteMessage", chat_id=USER, message_id=message_id)
    assert error.description == "Bad Request: message to delete not found"


async def test_a_message_older_than_48_hours_cannot_be_deleted() -> None:
    wall = FakeClock()
    emu = BotApiEmulator(wall_clock=wall)
    emu.add_user(USER, "Ada", started=True)
    first, second = await send(emu, "old"), await send(emu, "aged")
    wall.advance(48 * 3600 - 1)
    assert await emu.call("deleteMessage", {"chat_id": USER, "message_id": first}) is True
    wall.advance(1)
    error = await refusal(emu, "deleteMessage", chat_id=USER, message_id=second)
    assert error.description == "Bad Request: message can't be deleted for everyone"
    assert [m.text for m in emu.messages(USER)] == ["aged"]
    # an edit has no time limit; a test may also age one message alone
    third = await send(emu, "new")
    emu.age_message(USER, third, 48 * 3600)
    error = await refusal(emu, "deleteMessage", chat_id=USER, message_id=third)
    assert error.error_code == 400
    await emu.call("editMessageText", {"chat_id": USER, "message_id": third, "text": "newer"})
    assert emu.message(USER, third).text == "newer"


# --- what users do -------------------------------------------------------------------------------


async def test_user_commands_carry_bot_command_entities(emu: BotApiEmulator) -> None:
    message = emu.user_sends(USER, "/start@newsbot_test_bot promo")
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 23}]
    assert message["from"]["id"] == USER
    assert message["chat"]["type"] == "private"
    message = emu.user_sends(USER, "😀 /help")
    assert message["entities"] == [{"type": "bot_command", "offset": 3, "length": 5}]
    assert "entities" not in emu.user_sends(USER, "just text")


async def test_updates_have_increasing_ids_and_are_confirmed_by_offset(
    emu: BotApiEmulator,
) -> None:
    for text in ("one", "two", "three"):
        emu.user_sends(USER, text)
    updates = await emu.call("getUpdates", {})
    ids = [u["update_id"] for u in updates]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert [u["message"]["text"] for u in updates] == ["one", "two", "three"]
    assert len(await emu.call("getUpdates", {"limit": 2})) == 2
    rest = await emu.call("getUpdates", {"offset": ids[1]})
    assert [u["update_id"] for u in rest] == ids[1:]
    assert await emu.call("getUpdates", {"offset": ids[-1] + 1}) == []
    assert emu.pending_updates == []


async def test_long_poll_wakes_when_a_user_writes(emu: BotApiEmulator) -> None:
    poll = asyncio.create_task(emu.call("getUpdates", {"timeout": 30}))
    await emu.wait_for(lambda: emu.calls, timeout=2)
    assert not poll.done()
    emu.user_sends(USER, "/start")
    updates = await asyncio.wait_for(poll, timeout=2)
    assert updates[0]["message"]["text"] == "/start"


async def test_long_poll_times_out_empty(emu: BotApiEmulator) -> None:
    assert await emu.call("getUpdates", {"timeout": "0.01"}) == []


async def test_a_second_poller_terminates_the_first(emu: BotApiEmulator) -> None:
    first = asyncio.create_task(emu.call("getUpdates", {"timeout": 30}))
    await emu.wait_for(lambda: emu.calls, timeout=2)
    assert await emu.call("getUpdates", {"timeout": 0}) == []
    with pytest.raises(ApiError) as caught:
        await asyncio.wait_for(first, timeout=2)
    assert caught.value.error_code == 409


async def test_get_updates_refused_while_a_webhook_is_set(emu: BotApiEmulator) -> None:
    await emu.call("setWebhook", {"url": "https://example.org/hook"})
    assert (await emu.call("getWebhookInfo", {}))["url"] == "https://example.org/hook"
    assert (await refusal(emu, "getUpdates")).error_code == 409
    await emu.call("deleteWebhook", {"drop_pending_updates": "true"})
    assert await emu.call("getUpdates", {}) == []


async def test_group_privacy_delivers_only_commands_and_mentions(emu: BotApiEmulator) -> None:
    emu.add_group(GROUP, "Readers", admins=[USER], members=[OTHER])
    emu.user_sends(OTHER, "chatting among ourselves", chat_id=GROUP)
    emu.user_sends(OTHER, "/help@someotherbot", chat_id=GROUP)
    emu.user_sends(OTHER, "/digest", chat_id=GROUP)
    emu.user_sends(OTHER, "hey @newsbot_test_bot", chat_id=GROUP)
    texts = [u["message"]["text"] for u in await emu.call("getUpdates", {})]
    assert texts == ["/digest", "hey @newsbot_test_bot"]
    emu.add_user(1003, "Outsider")
    with pytest.raises(ValueError, match="not a member"):
        emu.user_sends(1003, "hi", chat_id=GROUP)


async def test_edited_messages_reach_the_bot_as_telegram_sends_them(emu: BotApiEmulator) -> None:
    sent = emu.user_sends(USER, "/latest wrold")
    edited = emu.user_edits(USER, sent["message_id"], "/latest world")
    assert edited["text"] == "/latest world"
    assert edited["entities"] == [{"type": "bot_command", "offset": 0, "length": 7}]
    assert edited["from"]["id"] == USER
    assert "edit_date" in edited
    updates = await emu.call("getUpdates", {})
    assert [next(k for k in u if k != "update_id") for u in updates] == [
        "message",
        "edited_message",
    ]
    assert updates[1]["edited_message"]["message_id"] == sent["message_id"]
    shown = emu.messages(USER, include_user=True)
    assert [m.text for m in shown] == ["/latest world"]  # the chat shows the new text
    with pytest.raises(ValueError, match="no message"):
        emu.user_edits(OTHER, sent["message_id"], "not yours", chat_id=USER)
    mine = await send(emu, "the bot's")
    with pytest.raises(ValueError, match="no message"):
        emu.user_edits(USER, mine, "not yours either")


async def test_group_privacy_applies_to_edits(emu: BotApiEmulator) -> None:
    emu.add_group(GROUP, "Readers", admins=[USER], members=[OTHER])
    chatter = emu.user_sends(OTHER, "chatting", chat_id=GROUP)
    emu.user_edits(OTHER, chatter["message_id"], "still chatting", chat_id=GROUP)
    emu.user_edits(OTHER, chatter["message_id"], "/help", chat_id=GROUP)
    [update] = await emu.call("getUpdates", {})
    assert update["edited_message"]["text"] == "/help"
    assert update["edited_message"]["chat"]["id"] == GROUP


async def test_channel_posts_come_from_the_channel(emu: BotApiEmulator) -> None:
    chat = emu.add_channel(CHANNEL, "Meridian", admins=[USER], subscribers=[OTHER], username="mer")
    assert chat == {"id": CHANNEL, "type": "channel", "title": "Meridian", "username": "mer"}
    post = emu.post_in_channel(CHANNEL, "/start")
    assert "from" not in post
    assert post["sender_chat"] == chat
    assert post["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    emu.post_in_channel(CHANNEL, "no command, still seen")  # the bot is an admin: no privacy
    emu.edit_channel_post(CHANNEL, post["message_id"], "/help")
    updates = await emu.call("getUpdates", {})
    assert [u.get("channel_post", u.get("edited_channel_post"))["text"] for u in updates] == [
        "/start",
        "no command, still seen",
        "/help",
    ]
    assert "edited_channel_post" in updates[2]
    reply = await emu.call("sendMessage", {"chat_id": CHANNEL, "text": "hi"})
    assert "from" not in reply
    assert reply["sender_chat"]["id"] == CHANNEL
    members = [
        (await emu.call("getChatMember", {"chat_id": CHANNEL, "user_id": u}))["status"]
        for u in (USER, OTHER, emu.bot_id)
    ]
    assert members == ["creator", "member", "administrator"]
    query_id = emu.press_button(OTHER, reply["message_id"], "x", chat_id=CHANNEL, force=True)
    [update] = await emu.call("getUpdates", {"offset": updates[-1]["update_id"] + 1})
    assert update["callback_query"]["id"] == query_id
    assert update["callback_query"]["from"]["id"] == OTHER
    with pytest.raises(ValueError, match="channel"):
        emu.user_sends(USER, "hi", chat_id=CHANNEL)
    emu.add_group(GROUP, "Readers", admins=[USER])
    with pytest.raises(ValueError, match="not a channel"):
        emu.post_in_channel(GROUP, "hi")
    emu.kick_bot(CHANNEL)
    error = await refusal(emu, "sendMessage", chat_id=CHANNEL, text="hi")
    assert error.description == "Forbidden: bot was kicked from the channel chat"


async def test_button_press_becomes_a_callback_query(emu: BotApiEmulator) -> None:
    message_id = await send(emu, "Page 1", keyboard([button("Next", callback_data="page:2")]))
    query_id = emu.press_button(USER, message_id, "page:2")
    [update] = await emu.call("getUpdates", {})
    query = update["callback_query"]
    assert (query["id"], query["data"], query["from"]["id"]) == (query_id, "page:2", USER)
    assert query["message"]["message_id"] == message_id
    assert query["message"]["reply_markup"] == keyboard([button("Next", callback_data="page:2")])
    assert not emu.is_answered(query_id)
    await emu.call("answerCallbackQuery", {"callback_query_id": query_id, "text": "Page 2"})
    assert emu.is_answered(query_id)
    assert emu.callback_answers[query_id]["text"] == "Page 2"
    error = await refusal(emu, "answerCallbackQuery", callback_query_id=query_id)
    assert error.description.startswith("Bad Request: query is too old")
    error = await refusal(emu, "answerCallbackQuery", callback_query_id="made-up")
    assert error.description.startswith("Bad Request: query is too old")


async def test_pressing_a_button_that_is_not_there_needs_force(emu: BotApiEmulator) -> None:
    message_id = await send(emu, "Page 1", keyboard([button("Next", callback_data="page:2")]))
    with pytest.raises(ValueError, match="no button"):
        emu.press_button(USER, message_id, "page:99")
    query_id = emu.press_button(USER, message_id, "page:99", force=True)
    [update] = await emu.call("getUpdates", {})
    assert update["callback_query"]["id"] == query_id
    assert update["callback_query"]["data"] == "page:99"


async def test_late_callback_answers_are_refused() -> None:
    clock = FakeClock()
    emu = BotApiEmulator(clock=clock)
    emu.add_user(USER, "Ada", started=True)
    message_id = await send(emu, "menu", keyboard([button()]))
    query_id = emu.press_button(USER, message_id, "next")
    clock.advance(16)
    error = await refusal(emu, "answerCallbackQuery", callback_query_id=query_id)
    assert error.description.startswith("Bad Request: query is too old")


# --- recording, injected failures ----------------------------------------------------------------


async def test_wait_for_wakes_on_calls(emu: BotApiEmulator) -> None:
    async def reply_later() -> None:
        await asyncio.sleep(0)
        await emu.call("sendMessage", {"chat_id": USER, "text": "there you go"})

    task = asyncio.create_task(reply_later())
    message = await emu.wait_for(lambda: emu.last_message(USER), timeout=2)
    await task
    assert message.text == "there you go"
    with pytest.raises(TimeoutError, match="sendMessage"):
        await emu.wait_for(lambda: len(emu.messages(USER)) > 1, timeout=0.01)


async def test_fail_next_matches_method_and_chat(emu: BotApiEmulator) -> None:
    emu.user_sends(OTHER, "hi")
    emu.fail_next("sendMessage", OTHER, error=ApiError(502, "Bad Gateway"), times=2)
    await emu.call("sendMessage", {"chat_id": USER, "text": "unaffected"})
    await emu.call("getMe", {})
    for _ in range(2):
        assert (await refusal(emu, "sendMessage", chat_id=OTHER, text="x")).error_code == 502
    await emu.call("sendMessage", {"chat_id": OTHER, "text": "recovered"})
    assert [m.text for m in emu.messages(OTHER)] == ["recovered"]
    assert [(r.method, r.chat_id) for r in emu.sent_log] == [
        ("sendMessage", USER),
        ("sendMessage", OTHER),
    ]


async def test_injected_429_is_counted(emu: BotApiEmulator) -> None:
    emu.fail_next(error=too_many_requests(7))
    error = await refusal(emu, "getMe")
    assert error.to_json()["parameters"] == {"retry_after": 7}
    assert emu.too_many_requests == 1


async def test_bot_commands_by_scope(emu: BotApiEmulator) -> None:
    commands = [{"command": "start", "description": "Subscribe"}]
    await emu.call("setMyCommands", {"commands": json.dumps(commands)})
    assert await emu.call("getMyCommands", {}) == commands
    scope = {"type": "all_group_chats"}
    assert await emu.call("getMyCommands", {"scope": scope}) == []
    await emu.call("deleteMyCommands", {})
    assert await emu.call("getMyCommands", {}) == []
    error = await refusal(
        emu, "setMyCommands", commands=[{"command": "Bad Command", "description": "x"}]
    )
    assert error.description == "Bad Request: BOT_COMMAND_INVALID"


async def test_chat_action(emu: BotApiEmulator) -> None:
    assert await emu.call("sendChatAction", {"chat_id": USER, "action": "typing"}) is True
    assert emu.chat_actions == [(USER, "typing")]
    assert (await refusal(emu, "sendChatAction", chat_id=USER, action="dancing")).error_code == 400


# --- flood limits ------------------------------------------------------------------------------


def limited(limits: RateLimits) -> tuple[BotApiEmulator, FakeClock]:
    clock = FakeClock()
    emu = BotApiEmulator(limits=limits, clock=clock)
    for user_id in range(1, 41):
        emu.add_user(user_id, f"Reader {user_id}", started=True)
    emu.add_group(GROUP, "Readers", admins=[1])
    return emu, clock


async def test_private_chat_limit_is_one_per_second() -> None:
    emu, clock = limited(RateLimits())
    await emu.call("sendMessage", {"chat_id": 1, "text": "one"})
    error = await refusal(emu, "sendMessage", chat_id=1, text="two")
    assert (error.error_code, error.description, error.retry_after) == (
        429,
        "Too Many Requests: retry after 1",
        1,
    )
    await emu.call("sendMessage", {"chat_id": 2, "text": "another chat is fine"})
    clock.advance(1.0)
    await emu.call("sendMessage", {"chat_id": 1, "text": "two"})
    assert emu.too_many_requests == 1


async def test_edits_count_against_the_chat_limit() -> None:
    emu, clock = limited(RateLimits())
    message = await emu.call("sendMessage", {"chat_id": 1, "text": "one"})
    params = {"chat_id": 1, "message_id": message["message_id"], "text": "edited"}
    assert (await refusal(emu, "editMessageText", **params)).error_code == 429
    clock.advance(1.5)
    await emu.call("editMessageText", params)


async def test_group_limit_is_twenty_a_minute() -> None:
    emu, clock = limited(RateLimits())
    for n in range(20):
        await emu.call("sendMessage", {"chat_id": GROUP, "text": f"news {n}"})
        clock.advance(1.0)
    error = await refusal(emu, "sendMessage", chat_id=GROUP, text="one too many")
    assert error.retry_after == 40
    clock.advance(40)
    await emu.call("sendMessage", {"chat_id": GROUP, "text": "fine again"})


async def test_overall_limit_is_thirty_a_second() -> None:
    emu, clock = limited(RateLimits())
    for user_id in range(1, 31):
        await emu.call("sendMessage", {"chat_id": user_id, "text": "breaking"})
    error = await refusal(emu, "sendMessage", chat_id=31, text="breaking")
    assert error.retry_after == 1
    clock.advance(1.0)
    await emu.call("sendMessage", {"chat_id": 31, "text": "breaking"})
    assert len(emu.sent_log) == 31
    assert emu.too_many_requests == 1


async def test_burst_tolerance() -> None:
    emu, _ = limited(RateLimits(burst=2))
    for n in range(3):
        await emu.call("sendMessage", {"chat_id": 1, "text": f"burst {n}"})
    assert (await refusal(emu, "sendMessage", chat_id=1, text="no more")).error_code == 429


async def test_limits_are_off_by_default(emu: BotApiEmulator) -> None:
    for n in range(50):
        await emu.call("sendMessage", {"chat_id": USER, "text": f"n{n}"})
    assert emu.too_many_requests == 0


async def test_answering_callbacks_is_not_rate_limited() -> None:
    emu, _ = limited(RateLimits())
    message = await emu.call(
        "sendMessage", {"chat_id": 1, "text": "menu", "reply_markup": keyboard([button()])}
    )
    for _ in range(3):
        query_id = emu.press_button(1, message["message_id"], "next")
        await emu.call("answerCallbackQuery", {"callback_query_id": query_id})
    assert emu.too_many_requests == 0


# --- short bursts in private chats ----------------------------------------------------------------


async def send_to(emu: BotApiEmulator, chat_id: int, text: str = "news") -> Any:
    return await emu.call("sendMessage", {"chat_id": chat_id, "text": text})


async def test_private_burst_admits_a_short_reply_at_once() -> None:
    emu, _ = limited(RateLimits(private_burst=3))
    for n in range(3):
        await send_to(emu, 1, f"part {n}")
    error = await refusal(emu, "sendMessage", chat_id=1, text="part 4")
    assert (error.error_code, error.retry_after) == (429, 1)
    await send_to(emu, 2, "another chat has its own bucket")


async def test_private_burst_refills_at_the_private_rate() -> None:
    emu, clock = limited(RateLimits(private_burst=3))
    for _ in range(3):
        await send_to(emu, 1)
    clock.advance(0.5)
    assert (await refusal(emu, "sendMessage", chat_id=1, text="too soon")).retry_after == 1
    clock.advance(0.5)
    await send_to(emu, 1)
    assert (await refusal(emu, "sendMessage", chat_id=1, text="empty again")).error_code == 429
    for _ in range(5):  # sustained sending at the rate is fine
        clock.advance(1.0)
        await send_to(emu, 1)
    clock.advance(60)  # a long pause fills the bucket to its capacity, no further
    for _ in range(3):
        await send_to(emu, 1)
    assert (await refusal(emu, "sendMessage", chat_id=1, text="fourth")).error_code == 429


async def test_sending_above_the_rate_is_refused_even_within_the_burst() -> None:
    emu, clock = limited(RateLimits(private_burst=3))
    outcomes: list[int | None] = []
    for _ in range(30):  # 2 a second for 15 s: the bucket empties, then half are refused
        clock.advance(0.5)
        try:
            await send_to(emu, 1)
            outcomes.append(None)
        except ApiError as error:
            outcomes.append(error.retry_after)
    assert outcomes.count(None) == 3 + 15 - 1  # the bucket, plus one a second after the first
    assert set(outcomes) == {None, 1}


async def test_private_burst_with_fractional_clock_steps() -> None:
    emu, clock = limited(RateLimits(private_burst=2))
    await send_to(emu, 1)
    await send_to(emu, 1)
    for _ in range(10):
        for _ in range(3):
            clock.advance(1 / 3)
        await send_to(emu, 1)  # exactly one second later there is exactly one token


async def test_private_burst_adds_to_the_burst_tolerance() -> None:
    emu, _ = limited(RateLimits(private_burst=2, burst=1))
    for _ in range(3):
        await send_to(emu, 1)
    assert (await refusal(emu, "sendMessage", chat_id=1, text="fourth")).error_code == 429


async def test_private_burst_leaves_groups_and_the_overall_limit_alone() -> None:
    emu, _ = limited(RateLimits(private_burst=5))
    for user_id in range(1, 31):
        await send_to(emu, user_id)
    assert (await refusal(emu, "sendMessage", chat_id=31, text="over 30/s")).retry_after == 1


def test_private_burst_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="private_burst"):
        RateLimits(private_burst=0)


# --- getUpdates conflicts ---------------------------------------------------------------------


async def test_conflicts_between_pollers_are_counted(emu: BotApiEmulator) -> None:
    assert emu.conflicts == 0
    first = asyncio.create_task(emu.call("getUpdates", {"timeout": 30}))
    await emu.wait_for(lambda: emu.calls, timeout=2)
    await emu.call("getUpdates", {"timeout": 0})
    with pytest.raises(ApiError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, timeout=2)
    assert emu.conflicts == 1
    await emu.call("getUpdates", {"timeout": 0})  # one poller after another is no conflict
    assert emu.conflicts == 1


# --- webhooks -----------------------------------------------------------------------------------


async def webhook_info(emu: BotApiEmulator) -> dict[str, Any]:
    info: dict[str, Any] = await emu.call("getWebhookInfo", {})
    return info


async def test_set_webhook_stores_what_telegram_stores(emu: BotApiEmulator) -> None:
    assert await webhook_info(emu) == {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": 0,
    }
    emu.user_sends(USER, "/start")
    await emu.call(
        "setWebhook",
        {
            "url": "https://bot.example/tg/hook",
            "secret_token": "s3cret_-X",
            "max_connections": "7",
            "allowed_updates": '["message", "callback_query"]',
        },
    )
    assert await webhook_info(emu) == {
        "url": "https://bot.example/tg/hook",
        "has_custom_certificate": False,
        "pending_update_count": 1,
        "max_connections": 7,
        "allowed_updates": ["message", "callback_query"],
    }
    hook = emu.webhook
    assert hook is not None
    assert (hook.secret_token, hook.max_connections) == ("s3cret_-X", 7)


async def test_webhook_defaults_and_clamps(emu: BotApiEmulator) -> None:
    await emu.call("setWebhook", {"url": "https://bot.example/hook"})
    info = await webhook_info(emu)
    assert info["max_connections"] == 40
    assert "allowed_updates" not in info
    assert emu.webhook is not None and emu.webhook.secret_token is None
    for given, kept in ((0, 1), (1000, 100), (100, 100)):
        await emu.call("setWebhook", {"url": "https://bot.example/hook", "max_connections": given})
        assert (await webhook_info(emu))["max_connections"] == kept


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"url": "http://bot.example/hook"}, "An HTTPS URL must be provided for webhook"),
        ({"url": "https://bot.example:8080/hook"}, "only on ports 80, 88, 443 or 8443"),
        ({"url": "https:///hook"}, "invalid webhook URL specified"),
        ({"url": "https://bot.example/", "secret_token": "a b"}, "unallowed characters"),
        ({"url": "https://bot.example/", "secret_token": "x" * 257}, "secret token is too long"),
    ],
)
async def test_bad_webhooks_are_refused(
    emu: BotApiEmulator, params: dict[str, Any], description: str
) -> None:
    error = await refusal(emu, "setWebhook", **params)
    assert error.error_code == 400
    assert description in error.description
    assert emu.webhook is None


async def test_allowed_ports_are_accepted(emu: BotApiEmulator) -> None:
    for port in (80, 88, 443, 8443):
        await emu.call("setWebhook", {"url": f"https://bot.example:{port}/hook"})


async def test_delete_webhook_clears_everything(emu: BotApiEmulator) -> None:
    await emu.call(
        "setWebhook",
        {"url": "https://bot.example/hook", "secret_token": "abc", "allowed_updates": ["message"]},
    )
    emu.record_webhook_error("Connection refused")
    emu.user_sends(USER, "hello")
    await emu.call("deleteWebhook", {})
    assert emu.webhook is None
    assert await webhook_info(emu) == {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": 1,
    }
    assert [u["message"]["text"] for u in await emu.call("getUpdates", {})] == ["hello"]


async def test_setting_an_empty_url_deletes_the_webhook(emu: BotApiEmulator) -> None:
    await emu.call("setWebhook", {"url": "https://bot.example/hook"})
    await emu.call("setWebhook", {"url": ""})
    assert emu.webhook is None
    assert await emu.call("getUpdates", {}) == []


async def test_failed_deliveries_show_in_webhook_info() -> None:
    emu = BotApiEmulator(wall_clock=lambda: 1_700_000_000.5)
    await emu.call("setWebhook", {"url": "https://bot.example/hook"})
    emu.record_webhook_error("Wrong response from the webhook: 500 Internal Server Error")
    info = await webhook_info(emu)
    assert info["last_error_date"] == 1_700_000_000
    assert info["last_error_message"] == (
        "Wrong response from the webhook: 500 Internal Server Error"
    )


async def test_allowed_updates_decide_what_is_queued(emu: BotApiEmulator) -> None:
    sent = await send_to(emu, USER, "menu")
    await emu.call("setWebhook", {"url": "https://bot.example/", "allowed_updates": ["message"]})
    emu.press_button(USER, sent["message_id"], "x", force=True)
    emu.user_sends(USER, "/start")
    assert [list(u)[1] for u in emu.pending_updates] == ["message"]
    await emu.call(
        "setWebhook", {"url": "https://bot.example/", "allowed_updates": ["callback_query"]}
    )
    emu.press_button(USER, sent["message_id"], "x", force=True)
    emu.user_sends(USER, "not wanted")
    assert [list(u)[1] for u in emu.pending_updates] == ["message", "callback_query"]


async def test_unknown_or_empty_allowed_updates_mean_the_defaults(emu: BotApiEmulator) -> None:
    await emu.call("setWebhook", {"url": "https://bot.example/", "allowed_updates": ["bogus"]})
    assert "allowed_updates" not in await webhook_info(emu)
    await emu.call("setWebhook", {"url": "https://bot.example/", "allowed_updates": ["message"]})
    await emu.call("setWebhook", {"url": "https://bot.example/", "allowed_updates": []})
    assert (await webhook_info(emu))["allowed_updates"] == ["message"]  # empty keeps the last


async def test_set_webhook_ends_a_waiting_long_poll(emu: BotApiEmulator) -> None:
    poll = asyncio.create_task(emu.call("getUpdates", {"timeout": 30}))
    await emu.wait_for(lambda: emu.calls, timeout=2)
    await emu.call("setWebhook", {"url": "https://bot.example/hook"})
    with pytest.raises(ApiError, match="terminated by setWebhook request") as caught:
        await asyncio.wait_for(poll, timeout=2)
    assert caught.value.error_code == 409
    assert emu.conflicts == 0


async def test_updates_for_delivery_and_confirm(emu: BotApiEmulator) -> None:
    changes: list[int] = []
    unsubscribe = emu.on_updates_changed(lambda: changes.append(len(emu.pending_updates)))
    emu.user_sends(USER, "one")
    emu.user_sends(USER, "two")
    first, second = (u["update_id"] for u in emu.updates_for_delivery())
    emu.confirm_update(first)
    emu.confirm_update(first)  # confirming twice (or an unknown id) changes nothing
    assert [u["update_id"] for u in emu.pending_updates] == [second]
    assert changes == [1, 2, 1]
    unsubscribe()
    emu.user_sends(USER, "three")
    assert changes == [1, 2, 1]


async def test_webhook_queues_are_per_chat_and_per_presser(emu: BotApiEmulator) -> None:
    emu.add_group(GROUP, "Readers", admins=[USER, OTHER])
    sent = await send_to(emu, USER, "menu")
    emu.user_sends(USER, "/start")
    emu.user_sends(OTHER, "/digest", chat_id=GROUP)
    emu.press_button(USER, sent["message_id"], "x", force=True)
    assert [webhook_queue(u) for u in emu.pending_updates] == [
        ("chat", USER),
        ("chat", GROUP),
        ("callback_query", USER),
    ]


# --- a lossy network ----------------------------------------------------------------------------


async def test_injected_bad_gateway_is_counted_and_stores_nothing(emu: BotApiEmulator) -> None:
    emu.fail_next("sendMessage", error=ApiError(502, "Bad Gateway"))
    error = await refusal(emu, "sendMessage", chat_id=USER, text="lost")
    assert error.to_json() == {"ok": False, "error_code": 502, "description": "Bad Gateway"}
    assert emu.bad_gateways == 1
    assert emu.messages(USER) == []


async def outcomes(emu: BotApiEmulator, count: int) -> list[str]:
    seen: list[str] = []
    for n in range(count):
        try:
            await send_to(emu, USER, f"n{n}")
            seen.append("ok")
        except ApiError as error:
            seen.append(str(error.error_code))
        except AnswerWithheld as lost:
            seen.append(lost.mode)
    return seen


def faulty(**faults: Any) -> BotApiEmulator:
    emulator = BotApiEmulator(faults=NetworkFaults(**faults))
    emulator.add_user(USER, "Ada", started=True)
    return emulator


async def test_drawn_bad_gateways_are_reproducible() -> None:
    first = await outcomes(faulty(bad_gateway_rate=0.3, seed=7), 200)
    assert first == await outcomes(faulty(bad_gateway_rate=0.3, seed=7), 200)
    assert first != await outcomes(faulty(bad_gateway_rate=0.3, seed=8), 200)
    assert 30 <= first.count("502") <= 90
    emu = faulty(bad_gateway_rate=0.3, seed=7)
    await outcomes(emu, 200)
    assert emu.bad_gateways == first.count("502")
    assert len(emu.messages(USER)) == len(emu.sent_log) == first.count("ok")


async def test_drawn_unanswered_sends_are_delivered_but_marked() -> None:
    emu = faulty(unanswered_rate=0.25, seed=3)
    seen = await outcomes(emu, 100)
    assert set(seen) == {"ok", "drop"}
    assert len(emu.messages(USER)) == len(emu.sent_log) == 100
    lost = [n for n, outcome in enumerate(seen) if outcome == "drop"]
    assert emu.unanswered == [Unanswered(USER, n + 1) for n in lost]
    assert [n for n, record in enumerate(emu.sent_log) if not record.answered] == lost
    assert [c.withheld for c in emu.calls].count("drop") == len(lost)


async def test_faults_touch_only_their_methods() -> None:
    emu = faulty(bad_gateway_rate=1.0)
    await emu.call("getMe", {})
    await emu.call("sendChatAction", {"chat_id": USER, "action": "typing"})
    assert (await refusal(emu, "sendMessage", chat_id=USER, text="x")).error_code == 502


async def test_set_faults_replaces_and_reseeds(emu: BotApiEmulator) -> None:
    emu.set_faults(NetworkFaults(bad_gateway_rate=0.5, seed=1))
    first = await outcomes(emu, 40)
    emu.set_faults(NetworkFaults(bad_gateway_rate=0.5, seed=1))
    assert await outcomes(emu, 40) == first
    emu.set_faults(None)
    assert await outcomes(emu, 20) == ["ok"] * 20


async def test_drawn_floods_refuse_with_the_chosen_retry_after() -> None:
    emu = faulty(flood_rate=0.4, flood_retry_after=3600, seed=5)
    seen = await outcomes(emu, 100)
    assert set(seen) == {"ok", "429"}
    assert 20 <= seen.count("429") <= 60
    assert emu.too_many_requests == seen.count("429")
    assert len(emu.messages(USER)) == len(emu.sent_log) == seen.count("ok")
    refusals = [c.error for c in emu.calls if c.error is not None]
    assert {e.retry_after for e in refusals} == {3600}
    assert refusals[0].to_json()["parameters"] == {"retry_after": 3600}


async def test_a_flood_band_leaves_the_other_faults_draws_alone() -> None:
    """Adding 429s changes no 502 or lost answer that the same seed drew without them."""
    plain = await outcomes(faulty(bad_gateway_rate=0.2, unanswered_rate=0.2, seed=9), 200)
    flooded = await outcomes(
        faulty(bad_gateway_rate=0.2, unanswered_rate=0.2, flood_rate=0.3, seed=9), 200
    )
    assert [o if o != "429" else "ok" for o in flooded] == plain
    assert flooded.count("429") > 0


@pytest.mark.parametrize(
    "faults",
    [
        {"bad_gateway_rate": -0.1},
        {"unanswered_rate": 1.5},
        {"bad_gateway_rate": 0.6, "unanswered_rate": 0.6},
        {"unanswered_mode": "later"},
        {"flood_rate": 0.5, "bad_gateway_rate": 0.6},
        {"flood_rate": 0.1, "flood_retry_after": 0},
    ],
)
def test_impossible_faults_are_refused(faults: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="fault rates|unanswered_mode|flood_retry_after"):
        NetworkFaults(**faults)


async def test_withhold_next_matches_method_and_chat(emu: BotApiEmulator) -> None:
    emu.withhold_next("sendMessage", OTHER)
    emu.user_sends(OTHER, "/start")
    await send_to(emu, USER, "not this chat")
    with pytest.raises(AnswerWithheld) as caught:
        await send_to(emu, OTHER, "this one")
    assert caught.value.mode == "drop"
    assert caught.value.result["text"] == "this one"
    await send_to(emu, OTHER, "only once")
    assert emu.unanswered == [(OTHER, 2)]  # the user's /start was message 1
    assert [r.answered for r in emu.sent_log] == [True, False, True]


async def test_withhold_next_skips_refused_calls(emu: BotApiEmulator) -> None:
    emu.withhold_next(times=2)
    assert (await refusal(emu, "sendMessage", chat_id=OTHER, text="no chat")).error_code == 400
    with pytest.raises(AnswerWithheld):
        await emu.call("getMe", {})
    with pytest.raises(AnswerWithheld):
        await send_to(emu, USER)
    await send_to(emu, USER)
    assert emu.unanswered == [(USER, 1)]


async def test_hang_holds_the_answer_until_the_caller_gives_up(emu: BotApiEmulator) -> None:
    emu.withhold_next("sendMessage", mode="hang")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(send_to(emu, USER, "held"), timeout=0.05)
    assert emu.last_message(USER) is not None
    assert emu.unanswered == [(USER, 1)]
    await send_to(emu, USER, "the next one is answered")


async def test_release_held_answers_ends_a_hang(emu: BotApiEmulator) -> None:
    emu.withhold_next(mode="hang")
    held = asyncio.create_task(send_to(emu, USER, "held"))
    await emu.wait_for(lambda: emu.unanswered, timeout=2)
    assert not held.done()
    emu.release_held_answers()
    with pytest.raises(AnswerWithheld) as caught:
        await asyncio.wait_for(held, timeout=2)
    assert caught.value.mode == "hang"


def test_withhold_modes_are_checked(emu: BotApiEmulator) -> None:
    with pytest.raises(ValueError, match="mode"):
        emu.withhold_next(mode="later")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown Bot API method"):
        emu.withhold_next("sendMesage")
