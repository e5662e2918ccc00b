"""Photos in the emulated Bot API: sendPhoto, editMessageMedia and editMessageCaption refuse
what Telegram refuses (long captions, images it cannot fetch, a photo turned into text)."""

from __future__ import annotations

import json

from fakebotapi.emulator import BotApiEmulator, RateLimits
from tests.unit.test_emulator import USER, FakeClock, button, emu, keyboard, refusal

__all__ = ["emu"]

PHOTO = "https://img.example/one.jpg"


async def test_send_photo_stores_photo_and_caption_read_as_html(emu: BotApiEmulator) -> None:
    markup = keyboard([button("Next", callback_data="n")])
    sent = await emu.call(
        "sendPhoto",
        {
            "chat_id": USER,
            "photo": PHOTO,
            "caption": "<b>Dam</b> &amp; river",
            "parse_mode": "HTML",
            "reply_markup": json.dumps(markup),
        },
    )
    assert "text" not in sent
    assert sent["caption"] == "Dam & river"
    assert sent["caption_entities"] == [{"type": "bold", "offset": 0, "length": 3}]
    assert sent["photo"][-1]["file_id"].startswith("AgAC-emu-")
    stored = emu.last_message(USER)
    assert stored is not None
    assert (stored.photo, stored.caption, stored.callback_data) == (PHOTO, "Dam & river", ["n"])


async def test_caption_is_limited_to_1024_characters_after_entity_parsing(
    emu: BotApiEmulator,
) -> None:
    fits = "<b>" + "&amp;" * 1024 + "</b>"  # 5,127 characters sent, 1,024 read
    await emu.call(
        "sendPhoto", {"chat_id": USER, "photo": PHOTO, "caption": fits, "parse_mode": "HTML"}
    )
    error = await refusal(
        emu, "sendPhoto", chat_id=USER, photo=PHOTO, caption="x" * 1025, parse_mode="HTML"
    )
    assert (error.error_code, error.description) == (
        400,
        "Bad Request: message caption is too long",
    )


async def test_refused_and_unusable_images(emu: BotApiEmulator) -> None:
    emu.refuse_images("https://img.example/broken/")
    cases = {
        "https://img.example/broken/a.jpg": "Bad Request: wrong file identifier/HTTP URL specified",
        "not a url": "Bad Request: wrong file identifier/HTTP URL specified",
        "ftp://img.example/a.jpg": "Bad Request: wrong file identifier/HTTP URL specified",
        "https://photos.invalid/a.jpg": "Bad Request: failed to get HTTP URL content",
    }
    for photo, description in cases.items():
        error = await refusal(emu, "sendPhoto", chat_id=USER, photo=photo, caption="c")
        assert (error.error_code, error.description) == (400, description), photo
    assert emu.messages(USER) == []
    assert emu.sent_log == []  # nothing was sent, nothing counted


async def test_edit_media_turns_text_into_photo_but_never_back(emu: BotApiEmulator) -> None:
    text = await emu.call("sendMessage", {"chat_id": USER, "text": "plain"})
    media = {"type": "photo", "media": PHOTO, "caption": "<i>Now</i> a photo", "parse_mode": "HTML"}
    edited = await emu.call(
        "editMessageMedia",
        {"chat_id": USER, "message_id": text["message_id"], "media": json.dumps(media)},
    )
    assert (edited["message_id"], edited["caption"]) == (text["message_id"], "Now a photo")
    stored = emu.message(USER, text["message_id"])
    assert (stored.photo, stored.edit_count) == (PHOTO, 1)

    same = await refusal(
        emu, "editMessageMedia", chat_id=USER, message_id=text["message_id"], media=media
    )
    assert same.description.startswith("Bad Request: message is not modified")
    back = await refusal(
        emu, "editMessageText", chat_id=USER, message_id=text["message_id"], text="text again"
    )
    assert back.description == "Bad Request: there is no text in the message to edit"

    emu.refuse_images("https://img.example/bad")
    bad = dict(media, media="https://img.example/bad.jpg")
    refused = await refusal(
        emu, "editMessageMedia", chat_id=USER, message_id=text["message_id"], media=bad
    )
    assert refused.description == "Bad Request: wrong file identifier/HTTP URL specified"
    assert emu.message(USER, text["message_id"]).photo == PHOTO  # unchanged


async def test_edit_caption_only_on_photos(emu: BotApiEmulator) -> None:
    text = await emu.call("sendMessage", {"chat_id": USER, "text": "plain"})
    error = await refusal(
        emu, "editMessageCaption", chat_id=USER, message_id=text["message_id"], caption="c"
    )
    assert error.description == "Bad Request: there is no caption in the message to edit"
    photo = await emu.call("sendPhoto", {"chat_id": USER, "photo": PHOTO, "caption": "old"})
    await emu.call(
        "editMessageCaption", {"chat_id": USER, "message_id": photo["message_id"], "caption": "new"}
    )
    assert emu.message(USER, photo["message_id"]).caption == "new"


async def test_photo_sends_and_edits_share_the_chat_limit() -> None:
    clock = FakeClock()
    emu = BotApiEmulator(limits=RateLimits(), clock=clock)
    emu.add_user(1, "Reader", started=True)
    sent = await emu.call("sendPhoto", {"chat_id": 1, "photo": PHOTO})
    error = await refusal(emu, "sendMessage", chat_id=1, text="too soon")
    assert error.error_code == 429
    clock.advance(1.0)
    media = {"type": "photo", "media": "https://img.example/two.jpg"}
    await emu.call(
        "editMessageMedia", {"chat_id": 1, "message_id": sent["message_id"], "media": media}
    )
    assert (await refusal(emu, "sendPhoto", chat_id=1, photo=PHOTO)).error_code == 429
