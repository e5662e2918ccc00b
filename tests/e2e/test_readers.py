"""A reader's life with the bot, end to end: PTB over loopback HTTP to the fake Bot API."""

from __future__ import annotations

import io
import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.local.shell import run_shell
from digests.db import make_engine, make_session_factory, upgrade
from digests.feeds.ingest import store_entries
from digests.feeds.parse import FeedEntry
from digests.models import Chat, Section, Subscription
from fakebotapi.emulator import StoredMessage
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import SAMPLE, Reader, button, e2e_settings, logged_errors, running_bot

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POSITION = re.compile(r"(\d+) / (\d+)")
_users = itertools.count(700)


async def seeded_db(tmp_path: Path, *entries: FeedEntry) -> str:
    """A migrated SQLite database holding the given stories (or the sample feed)."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(url)
    try:
        await upgrade(engine)
        if not entries:
            from digests.feeds.parse import parse_feed

            entries = parse_feed(SAMPLE.read_bytes(), source="sample").entries
        async with make_session_factory(engine).begin() as session:
            await store_entries(
                session, list(entries), now=NOW, category_map={}, default_section="General"
            )
    finally:
        await engine.dispose()
    return url


def story(n: int, section: str, title: str | None = None, hours_ago: int = 1) -> FeedEntry:
    return FeedEntry(
        guid=f"s{n}",
        link=f"https://meridian.example/{n}",
        title=title or f"Story {n}",
        summary=f"Summary {n}",
        published=NOW - timedelta(hours=hours_ago),
        categories=(section,),
    )


def position(text: str) -> tuple[int, int]:
    match = POSITION.search(text)
    assert match, text
    return int(match.group(1)), int(match.group(2))


async def test_new_readers_first_minutes(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    url = await seeded_db(tmp_path)
    fake_api.emulator.add_user(501, "Ada")
    reader = Reader(fake_api, 501)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        [chooser] = await reader.send("/start")  # greeting and chooser in one message
        assert "Welcome to The Daily Meridian" in chooser.text
        assert "World" in [b["text"] for b in chooser.buttons]

        await reader.press(chooser, button(chooser, "World"))
        assert "✓ World" in [b["text"] for b in reader.current(chooser).buttons]
        assert "Welcome to The Daily Meridian" in reader.current(chooser).text  # text kept

        [sections] = await reader.send("/sections")
        assert "✓ World" in sections.text

        [page] = await reader.send("/latest")
        assert position(page.text)[0] == 1
        total = position(page.text)[1]
        assert "Previous" not in str(page.buttons)
        await reader.press(page, button(page, "Next"))
        assert position(reader.current(page).text) == (2, total)
        await reader.press(reader.current(page), button(reader.current(page), "Next"))
        assert position(reader.current(page).text) == (3, total)
        await reader.press(reader.current(page), button(reader.current(page), "Previous"))
        assert position(reader.current(page).text) == (2, total)
        assert len(reader.bot_messages()) == 3  # paging edited the one message in place

        [shown] = await reader.send("/settings")
        assert "World" in shown.text
        assert "08:00" in shown.text

        [bye] = await reader.send("/stop")
        assert "deleted" in bye.text
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            assert await session.scalar(select(Chat).where(Chat.telegram_id == 501)) is None
    finally:
        await engine.dispose()


async def test_paging_survives_restart_and_new_stories(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, *(story(n, "World", hours_ago=n) for n in range(1, 6)))
    fake_api.emulator.add_user(502, "Bo")
    reader = Reader(fake_api, 502)
    settings_ = e2e_settings(fake_api, url)
    async with running_bot(fake_api, settings_, now=NOW):
        [page] = await reader.send("/latest world")
        await reader.press(page, button(page, "Next"))
        assert "Story 2" in reader.current(page).text
    # while the bot is down, a newer story arrives
    engine = make_engine(url)
    try:
        async with make_session_factory(engine).begin() as session:
            await store_entries(
                session,
                [story(99, "World", "Fresh story", hours_ago=0)],
                now=NOW,
                category_map={},
                default_section="General",
            )
    finally:
        await engine.dispose()
    async with running_bot(fake_api, settings_, now=NOW):
        shown = reader.current(page)
        await reader.press(shown, button(shown, "Next"))
        after = reader.current(page)
        assert "Story 3" in after.text  # the cursor follows the story, not an index
        assert position(after.text) == (4, 6)
        await reader.press(after, button(after, "Previous"))
        assert "Story 2" in reader.current(page).text


async def test_tampered_and_stale_buttons_get_a_short_answer(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"), story(2, "World", hours_ago=2))
    fake_api.emulator.add_user(503, "Cy")
    reader = Reader(fake_api, 503)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
            [page] = await reader.send("/latest")
            before = reader.current(page).text
            for data in [
                "L:1:abc:1:n",
                "L:99999:1:1:n",
                "S:t:999999",
                "S:t:x",
                "??",
                "B:send:1",
                "L:0:99999999999:99999:p",
                "C:nope",
            ]:
                answer = await reader.press(page, data, force=True)
                assert answer.get("text"), data
            assert reader.current(page).text == before
            # the last story's Next is absent; pressing a stale one says so
            await reader.press(page, button(page, "Next"))
            last = reader.current(page)
            assert "Next" not in str(last.buttons)
            stale = await reader.press(last, "L:0:1:2:n", force=True)
            assert stale["text"] == "No more stories."
    assert errors == []


async def test_old_stories_page_and_forged_ids_are_refused_on_every_database(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    """A story from before 1970 pages both ways; ids beyond the database's integers, Unicode
    digits and made-up prefixes get the short answer, with no ERROR and no query failing."""
    engine = make_engine(db_url)
    old = story(2, "World", title="Moon landing")
    old = FeedEntry(
        guid=old.guid,
        link=old.link,
        title=old.title,
        summary=old.summary,
        published=datetime(1969, 7, 20, 20, 17, tzinfo=UTC),
        categories=old.categories,
    )
    try:
        async with make_session_factory(engine).begin() as session:
            await store_entries(
                session,
                [story(1, "World"), old],
                now=NOW,
                category_map={},
                default_section="General",
            )
    finally:
        await engine.dispose()
    fake_api.emulator.add_user(509, "Ed")
    reader = Reader(fake_api, 509)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, db_url), now=NOW):
            [page] = await reader.send("/latest")
            await reader.press(page, button(page, "Next"))
            assert "Moon landing" in reader.current(page).text
            await reader.press(page, button(reader.current(page), "Previous"))
            assert "Story 1" in reader.current(page).text
            before = reader.current(page).text
            for data in [
                "L:0:999999999999:999999999999:p",
                "L:2147483648:1:1:n",
                "B:cancel:999999999999",
                "B:send:²",
                "S:t:99999999999",
                "L:0:-99999999999:1:n",
            ]:
                answer = await reader.press(page, data, force=True)
                assert answer.get("text") == "This button no longer works.", data
            assert reader.current(page).text == before
    assert errors == []
    assert [c for c in fake_api.emulator.calls if c.error is not None] == []


@pytest.mark.parametrize(
    "away",
    [
        "sqlite:////nonexistent-dir/for/newsbot.db",  # cannot be opened
        "postgresql://postgres@127.0.0.1:1/newsbot",  # nobody listens there
    ],
)
async def test_while_the_database_is_away_readers_hear_so_and_it_recovers(
    fake_api: FakeBotApiServer, tmp_path: Path, away: str
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"), story(2, "World", hours_ago=2))
    fake_api.emulator.add_user(510, "Flo")
    reader = Reader(fake_api, 510)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW) as app:
            [page] = await reader.send("/latest")
            services = app.bot_data
            working = services.session_factory
            broken = make_engine(away)
            services.session_factory = make_session_factory(broken)
            try:
                [reply] = await reader.send("/latest")
                assert "try again in a minute" in reply.text
                answer = await reader.press(page, button(page, "Next"))
                assert (
                    answer.get("text") == "Temporarily unavailable: please try again in a minute."
                )
            finally:
                services.session_factory = working
                await broken.dispose()
            [back] = await reader.send("/latest")  # the next message works again
            assert "Story 1" in back.text
    assert errors == []


def edits(fake_api: FakeBotApiServer) -> int:
    return len([c for c in fake_api.emulator.calls if c.method.startswith("editMessage")])


async def test_buttons_that_change_nothing_send_no_edit(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    fake_api.emulator.add_user(511, "Gus")
    reader = Reader(fake_api, 511)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        await reader.send("/start")
        [menu] = await reader.send("/settings")
        await reader.press(menu, button(menu, "Change time zone"))
        before = edits(fake_api)
        for data in ["C:tz", "C:tz", "U:cancel", "U:cancel"]:  # the message shows C:tz's already
            await reader.press(menu, data, force=True)  # answered either way
        assert edits(fake_api) == before + 1  # only the first U:cancel changed anything
        assert "Nothing changed" in reader.current(menu).text
    refused = [(c.method, c.error) for c in fake_api.emulator.calls if c.error is not None]
    assert refused == []


async def test_html_in_titles_is_escaped(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    title = 'Profits <b>soar</b> & shares < 5 "up"'
    url = await seeded_db(tmp_path, story(1, "Business", title))
    fake_api.emulator.add_user(504, "Di")
    reader = Reader(fake_api, 504)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        [page] = await reader.send("/latest business")
        assert title in page.text  # what the reader sees is the title, verbatim
        assert "&lt;b&gt;soar&lt;/b&gt; &amp; shares &lt; 5" in page.raw_text
        await reader.send("/subscribe business")
        [digest] = await reader.send("/digest now")
        assert title in digest.text
    refused = [c for c in fake_api.emulator.calls if c.error is not None]
    assert refused == []


async def test_a_double_tap_is_judged_by_what_the_first_tap_made_the_message_show(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    """Two quick taps both carry the message as it was before the first tap's edit: the
    second must neither repeat that edit (Telegram refuses it: "message is not modified")
    nor skip the edit it needs (a section tapped twice must lose its ✓ again)."""
    url = await seeded_db(tmp_path, *(story(n, "World", hours_ago=n) for n in range(1, 4)))
    emulator = fake_api.emulator
    emulator.add_user(507, "Gus")
    reader = Reader(fake_api, 507)

    async def double_tap(message: StoredMessage, data: str) -> None:
        taps = [emulator.press_button(507, message.message_id, data) for _ in range(2)]
        await emulator.wait_for(lambda: all(map(emulator.is_answered, taps)))

    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        [page] = await reader.send("/latest")
        await double_tap(page, button(page, "Next"))
        assert "Story 2" in reader.current(page).text
        assert reader.current(page).edit_count == 1
        [chooser] = await reader.send("/start")
        await double_tap(chooser, button(chooser, "World"))  # on, then off again
        assert "✓ World" not in [b["text"] for b in reader.current(chooser).buttons]
        [sections] = await reader.send("/sections")
        assert "✓ World" not in sections.text
        await reader.press(reader.current(chooser), button(reader.current(chooser), "World"))
        assert "✓ World" in [b["text"] for b in reader.current(chooser).buttons]
    refused = [(c.method, c.error) for c in emulator.calls if c.error is not None]
    assert refused == []


async def test_only_group_admins_change_group_settings(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    fake_api.emulator.add_group(-4001, "Readers club", admins=[601], members=[602])
    admin = Reader(fake_api, 601, chat_id=-4001)
    member = Reader(fake_api, 602, chat_id=-4001)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        [refused] = await member.send("/subscribe world")
        assert "Only the group's administrators" in refused.text
        [ok] = await admin.send("/subscribe world")
        assert "You follow World" in ok.text
        [page] = await member.send("/latest")  # reading is for everyone
        assert "Story 1" in page.text
        [chooser] = await admin.send("/start")
        answer = await member.press(chooser, button(chooser, "World"))
        assert "administrators" in answer["text"]
        assert "✓ World" in [b["text"] for b in member.current(chooser).buttons]
        [timezone] = await member.send("/timezone Europe/Paris")
        assert "Only the group's administrators" in timezone.text


async def test_only_a_channels_administrators_change_its_settings(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    """A channel's reader pressing a forged section button under the bot's post in the channel
    is not its administrator, though the post names the channel as its sender."""
    url = await seeded_db(tmp_path, story(1, "World"))
    emulator, channel = fake_api.emulator, -1009000
    emulator.add_channel(channel, "Meridian live", admins=[611], subscribers=[612])
    bot = emulator.bot_username
    reader = Reader(fake_api, 612, chat_id=channel)
    admin = Reader(fake_api, 611, chat_id=channel)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW) as app:
        emulator.post_in_channel(channel, f"/frob@{bot}")
        hint = await emulator.wait_for(lambda: emulator.last_message(channel))
        async with app.bot_data.sessions() as session:
            world = await session.scalar(select(Section.id).where(Section.slug == "world"))
        answer = await reader.press(hint, f"S:t:{world}", force=True)
        assert "administrators" in answer["text"]
        answer = await admin.press(hint, "C:alerts", force=True)
        assert answer.get("text") is None  # the channel's administrator may
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            stored = await session.scalar(select(Chat).where(Chat.telegram_id == channel))
            assert stored is not None and stored.alerts is False
            assert await session.scalar(select(Subscription.chat_id)) is None
    finally:
        await engine.dispose()
    refused = [c for c in emulator.calls if c.error is not None]
    assert refused == []


async def test_unknown_commands_and_text_get_a_hint(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    fake_api.emulator.add_user(505, "Ed")
    reader = Reader(fake_api, 505)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        [hint] = await reader.send("/frobnicate")
        assert "/help" in hint.text
        [hint] = await reader.send("what's new?")
        assert "/help" in hint.text
        [unknown] = await reader.send("/subscribe atlantis")
        assert "atlantis" in unknown.text and "world" in unknown.text
        [tz] = await reader.send("/timezone Europe/Berln")
        assert "Europe/Berlin" in tz.text


async def test_in_a_group_only_commands_for_this_bot_get_a_hint(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    fake_api.emulator.add_user(506, "Flo")
    fake_api.emulator.add_group(-5060, "Readers", admins=[506])
    member = Reader(fake_api, 506, chat_id=-5060)
    bot = fake_api.emulator.bot_username
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        await member.send(f"/frob@{bot}x", replies=0)  # another bot whose name starts alike
        await member.send("/frob", replies=0)  # for every bot of the group: not ours to answer
        [hint] = await member.send(f"/frob@{bot.upper()}")
        assert "/help" in hint.text
    assert len(member.bot_messages()) == 1  # updates of one chat are handled in order


async def shell_transcript(tmp_path: Path, lines: str, *, demo: bool) -> str:
    """What `newsbot shell` prints for these piped lines (no token, a fresh database)."""
    out = io.StringIO()
    settings_ = e2e_settings(FakeBotApiServerStub(), f"sqlite:///{tmp_path / 'x.db'}")
    settings_ = settings_.model_copy(update={"telegram_bot_token": None})
    assert await run_shell(settings_, demo=demo, stdin=io.StringIO(lines), out=out) == 0
    return out.getvalue()


async def test_shell_with_piped_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    transcript = await shell_transcript(tmp_path, "/start\n/latest\n2\n/sections\n", demo=True)
    assert "> /start" in transcript
    assert "Welcome to The Daily Meridian" in transcript
    assert "[1]" in transcript and "Next ▶" in transcript
    assert "2 / 30" in transcript
    assert "Sections" in transcript


async def test_shell_says_so_when_a_pressed_button_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit can take a keyboard away; its old numbers then get a line, not a traceback."""
    monkeypatch.chdir(tmp_path)
    transcript = await shell_transcript(tmp_path, "/start\n/settings\n4\n4\n/help\n", demo=False)
    assert "[4] Change time zone" in transcript
    assert "Your time zone is" in transcript  # the first press edited the menu away
    assert transcript.count("(that button is no longer there)") == 1
    assert "What I can do" in transcript  # and the chat goes on


class FakeBotApiServerStub:
    """Just enough of a server for building settings: the shell needs no network."""

    class _Em:
        token = "1:x"

    emulator = _Em()
    base_url = "http://127.0.0.1:9/bot"


COMMANDS = ["/start", "/help", "/sections", "/subscribe", "/unsubscribe", "/latest", "/digest",
            "/timezone", "/alerts", "/settings", "/frob", ""]  # fmt: skip


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.sampled_from(COMMANDS), st.text(max_size=300)).map(
                lambda t: ("say", (t[0] + " " + t[1]).strip() or "x")
            ),
            st.text(min_size=1, max_size=80).map(lambda d: ("press", d)),
        ),
        min_size=1,
        max_size=6,
    )
)
async def test_any_input_is_handled_and_nothing_refused(
    fake_api: FakeBotApiServer,
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[str, str]],
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    url = await seeded_db(tmp, story(1, "World", "A <tricky> & title"), story(2, "Sports"))
    user = next(_users)
    fake_api.emulator.add_user(user, "Prop")
    reader = Reader(fake_api, user)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
            [anchor] = await reader.send("/latest")
            for kind, value in steps:
                if kind == "say":
                    text = value.replace("\x00", "")
                    if text.strip():
                        await reader.send(text)  # every message in a private chat is answered
                else:
                    data = value.encode()[:64].decode(errors="ignore") or "x"
                    await reader.press(anchor, data, force=True)  # waits for the answer
    refused = [(c.method, c.error) for c in fake_api.emulator.calls if c.error is not None]
    assert refused == []
    assert errors == []
