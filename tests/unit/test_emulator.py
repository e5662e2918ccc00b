"""The emulated Bot API refuses what Telegram refuses, and records what a chat would show."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.emulator import ApiError, BotApiEmulator, RateLimits, too_many_requests

USER = 1001
OTHER = 1002
GROUP = -4001
SUPERGROUP = -1001234567890


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
    error = await refusal(emu, "sendPhoto", chat_id=USER, photo="file-id")
    assert error.error_code == 400
    assert error.description == "Bad Request: method not supported by the emulator: sendPhoto"


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
