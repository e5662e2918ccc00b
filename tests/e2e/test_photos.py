"""Story photos end to end: /latest photo pages paged in place, breaking pushes with photos,
and images Telegram refuses, through PTB and the fake Bot API over loopback HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

from sqlalchemy import select

from digests.db import make_engine, make_session_factory
from digests.feeds.parse import FeedEntry
from digests.models import Delivery, DeliveryKind, DeliveryStatus
from fakebotapi.emulator import MAX_CAPTION_UTF16, StoredMessage
from fakebotapi.server import FakeBotApiServer
from fakebotapi.telegram_html import utf16_len
from tests.e2e.harness import Reader, button, e2e_settings, logged_errors, running_bot
from tests.e2e.test_breaking import EDITOR, NOW, add_readers, wait_for_push_done
from tests.e2e.test_readers import position, seeded_db, story

IMG = "https://img.meridian.example/"


def photo_story(
    n: int, image: str | None, *, summary: str | None = None, title: str | None = None
) -> FeedEntry:
    entry = story(n, "World", title, hours_ago=n)
    return dataclasses.replace(
        entry,
        summary=summary if summary is not None else entry.summary,
        image_url=image,
        image_caption=None,
    )


def shows(message: StoredMessage, title: str) -> bool:
    return re.search(rf"\b{re.escape(title)}\b", message.text) is not None


async def test_photo_pages_are_paged_in_place(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    url = await seeded_db(
        tmp_path,
        photo_story(1, IMG + "one.jpg"),
        photo_story(2, IMG + "two.jpg"),
        photo_story(3, IMG + "three.jpg"),
    )
    fake_api.emulator.add_user(601, "Pia")
    reader = Reader(fake_api, 601)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
            [page] = await reader.send("/latest world")
            assert page.photo == IMG + "one.jpg"
            assert page.caption is not None and shows(page, "Story 1")
            assert position(page.caption) == (1, 3)

            await reader.press(page, button(page, "Next"))
            shown = reader.current(page)
            assert (shown.photo, position(shown.text)) == (IMG + "two.jpg", (2, 3))
            assert shows(shown, "Story 2") and "Summary 2" in shown.text
            await reader.press(shown, button(shown, "Next"))
            assert reader.current(page).photo == IMG + "three.jpg"
            await reader.press(reader.current(page), button(reader.current(page), "Previous"))
            back = reader.current(page)
            assert (back.photo, position(back.text)) == (IMG + "two.jpg", (2, 3))
            assert back.edit_count == 3
            assert [m.message_id for m in reader.bot_messages()] == [page.message_id]
            edits = [c.method for c in fake_api.emulator.calls if c.method.startswith("edit")]
            assert edits == ["editMessageMedia"] * 3
    assert errors == []


async def test_paging_into_and_out_of_a_story_without_photo(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(
        tmp_path,
        photo_story(1, None),
        photo_story(2, IMG + "two.jpg"),
        photo_story(3, None),
    )
    fake_api.emulator.add_user(602, "Quinn")
    reader = Reader(fake_api, 602)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
            [page] = await reader.send("/latest")
            assert page.photo is None and shows(page, "Story 1")

            # a text page becomes a photo page in place
            await reader.press(page, button(page, "Next"))
            photo = reader.current(page)
            assert (photo.photo, position(photo.text)) == (IMG + "two.jpg", (2, 3))

            # a photo cannot become text: the page comes as a new message and the photo goes;
            # the second press of a double tap finds it replaced and sends nothing more
            turn = button(photo, "Next")
            first, second = await asyncio.gather(
                reader.press(photo, turn), reader.press(photo, turn)
            )
            assert first.get("text") is None and second.get("text") is None
            [text_page] = reader.bot_messages()
            assert text_page.message_id != page.message_id
            assert text_page.photo is None and shows(text_page, "Story 3")
            assert position(text_page.text) == (3, 3)
            deletes = [c for c in fake_api.emulator.calls if c.method == "deleteMessage"]
            assert [(int(c.params["message_id"]), c.error) for c in deletes] == [
                (page.message_id, None)
            ]

            await reader.press(text_page, button(text_page, "Previous"))
            again = reader.current(text_page)
            assert (again.photo, position(again.text)) == (IMG + "two.jpg", (2, 3))
            assert len(reader.bot_messages()) == 1
    assert errors == []


async def test_a_refused_image_on_latest_falls_back_to_text(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(
        tmp_path,
        photo_story(1, IMG + "broken/one.jpg"),
        photo_story(2, IMG + "two.jpg"),
        photo_story(3, "https://photos.invalid/three.jpg"),
    )
    fake_api.emulator.refuse_images(IMG + "broken/")
    fake_api.emulator.add_user(603, "Rae")
    reader = Reader(fake_api, 603)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
            [page] = await reader.send("/latest")
            assert page.photo is None  # refused: the same page as text, buttons and all
            assert shows(page, "Story 1") and position(page.text) == (1, 3)
            assert "Summary 1" in page.text
            refused = [c for c in fake_api.emulator.calls if c.method == "sendPhoto"]
            assert len(refused) == 1 and refused[0].error is not None

            await reader.press(page, button(page, "Next"))
            photo = reader.current(page)
            assert (photo.photo, position(photo.text)) == (IMG + "two.jpg", (2, 3))

            # the next photo is refused too (its host cannot resolve): a new text message
            await reader.press(photo, button(photo, "Next"))
            [last] = reader.bot_messages()
            assert last.photo is None and shows(last, "Story 3")
            assert position(last.text) == (3, 3)
    assert errors == []


async def test_a_long_story_fits_its_photo_caption(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    long_summary = " ".join(["Floods & <storms> reach the delta's villages."] * 40)
    long_title = "Story 1: " + "a very long headline " * 14  # with the summary, over 1,024
    url = await seeded_db(
        tmp_path, photo_story(1, IMG + "long.jpg", summary=long_summary, title=long_title)
    )
    fake_api.emulator.add_user(604, "Sam")
    reader = Reader(fake_api, 604)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        [page] = await reader.send("/latest")
    assert page.photo == IMG + "long.jpg"
    assert page.caption is not None
    assert MAX_CAPTION_UTF16 - 60 < utf16_len(page.caption) <= MAX_CAPTION_UTF16
    assert "Floods & <storms> reach" in page.caption  # escaped, then read back as written
    assert "…" in page.caption and position(page.caption) == (1, 1)


async def deliveries(url: str) -> list[tuple[DeliveryStatus, str | None, int]]:
    """(status, media, attempts) of each breaking delivery row: marked SENDING once each."""
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            rows = await session.execute(
                select(Delivery.status, Delivery.media, Delivery.attempts).where(
                    Delivery.kind == DeliveryKind.BREAKING
                )
            )
            return [(status, media, attempts) for status, media, attempts in rows]
    finally:
        await engine.dispose()


async def test_breaking_push_carries_the_photo(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    url = await seeded_db(tmp_path, photo_story(1, IMG + "quake.jpg"))
    readers = [6101, 6102, 6103]
    await add_readers(url, readers, None)
    for uid in [*readers, EDITOR]:
        fake_api.emulator.add_user(uid, started=True)
    editor = Reader(fake_api, EDITOR)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url, admin_ids=(EDITOR,)), now=NOW):
            [preview] = await editor.send("/breaking https://meridian.example/1")
            await editor.press(preview, button(preview, "Send"))
            await wait_for_push_done(url)
    assert errors == []
    for uid in readers:
        [pushed] = fake_api.emulator.messages(uid)
        assert pushed.photo == IMG + "quake.jpg"
        assert pushed.caption is not None
        assert pushed.caption.startswith("🚨 Breaking") and "Story 1" in pushed.caption
        assert any(e.get("url") == "https://meridian.example/1" for e in pushed.entities)
    assert await deliveries(url) == [(DeliveryStatus.SENT, "photo", 1)] * 3


async def test_breaking_push_whose_image_is_refused_goes_out_as_text_once(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, photo_story(1, IMG + "gone/quake.jpg"))
    readers = [6201, 6202, 6203, 6204]
    await add_readers(url, readers, None)
    for uid in [*readers, EDITOR]:
        fake_api.emulator.add_user(uid, started=True)
    fake_api.emulator.refuse_images(IMG + "gone/")
    editor = Reader(fake_api, EDITOR)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url, admin_ids=(EDITOR,)), now=NOW):
            [preview] = await editor.send("/breaking https://meridian.example/1")
            await editor.press(preview, button(preview, "Send"))
            await wait_for_push_done(url)
            await editor.emulator.wait_for(lambda: "Push finished" in editor.current(preview).text)
            assert "Sent 4 · blocked 0 · failed 0 (of 4)" in editor.current(preview).text
    assert errors == []
    for uid in readers:
        [pushed] = fake_api.emulator.messages(uid)  # exactly once, as text
        assert pushed.photo is None
        assert pushed.text.startswith("🚨 Breaking") and "Summary 1" in pushed.text
        photo_calls = [
            c
            for c in fake_api.emulator.calls
            if c.method == "sendPhoto" and int(c.params["chat_id"]) == uid
        ]
        assert len(photo_calls) == 1 and photo_calls[0].error is not None
    assert await deliveries(url) == [(DeliveryStatus.SENT, None, 1)] * 4
