"""Keyword rules, digests with follows and mutes, and alert rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from digests.db import SessionFactory
from digests.digest.alerts import OVER_CAP, alert_phrases, queue_alerts
from digests.digest.builder import DigestBuilder, DigestRequest
from digests.digest.rounds import DigestWriter
from digests.models import (
    BreakingPush,
    Chat,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    KeywordKind,
    PushStatus,
)
from digests.newsroom.breaking import create_rows
from digests.readers.chats import forget_chat
from digests.readers.keywords import (
    Refusal,
    add_rule,
    remove_phrase,
    remove_rule,
    rules_of,
    toggle_alert,
)
from tests.integration.test_digest_collect import (
    END,
    IN_WINDOW,
    START,
    add_article,
    add_breaking_push,
    add_chat,
    add_section,
)

NOW = END  # alerts: stories stored in the hour before
JUST_NOW = NOW - timedelta(minutes=5)


async def test_rules_are_unique_capped_and_replace_their_opposite(
    session_factory: SessionFactory,
) -> None:
    async with session_factory.begin() as session:
        chat = await add_chat(session)
        first = await add_rule(session, chat, KeywordKind.FOLLOW, "Climate  Change", now=NOW, cap=3)
        assert first.rule is not None and first.rule.phrase == "Climate Change"
        assert first.rule.normalized == "climate change" and not first.rule.alert
        again = await add_rule(session, chat, KeywordKind.FOLLOW, "CLIMATE-change", now=NOW, cap=3)
        assert again.existed and again.rule is not None and again.rule.id == first.rule.id
        assert (await add_rule(session, chat, KeywordKind.MUTE, "?!", now=NOW, cap=3)).refusal == (
            Refusal.EMPTY
        )
        await add_rule(session, chat, KeywordKind.MUTE, "football", now=NOW, cap=3)
        await add_rule(session, chat, KeywordKind.FOLLOW, "port", now=NOW, cap=3)
        full = await add_rule(session, chat, KeywordKind.MUTE, "rates", now=NOW, cap=3)
        assert full.refusal is Refusal.CAP and full.rule is None
        # muting a followed phrase replaces the follow (allowed even at the cap)
        swapped = await add_rule(session, chat, KeywordKind.MUTE, "Port", now=NOW, cap=3)
        assert swapped.replaced and swapped.rule is not None
        kinds = [(rule.kind, rule.normalized) for rule in await rules_of(session, chat)]
        assert kinds == [
            (KeywordKind.FOLLOW, "climate change"),
            (KeywordKind.MUTE, "football"),
            (KeywordKind.MUTE, "port"),
        ]
        other = await add_chat(session)
        assert await remove_rule(session, other, swapped.rule.id) is None  # not its rule
        assert await toggle_alert(session, other, first.rule.id) is None
        assert await toggle_alert(session, chat, swapped.rule.id) is None  # a mute has none
        toggled = await toggle_alert(session, chat, first.rule.id)
        assert toggled is not None and toggled.alert
        assert await remove_phrase(session, chat, KeywordKind.FOLLOW, "football") is None
        removed = await remove_phrase(session, chat, KeywordKind.MUTE, "FOOTBALL")
        assert removed is not None and removed.phrase == "football"
        assert len(await rules_of(session, chat)) == 2
        await forget_chat(session, chat)  # /stop: the rules go with the chat
    async with session_factory() as session:
        assert await rules_of(session, chat) == []


async def _collect(session_factory: SessionFactory, *chats: Chat) -> dict[int, list[object]]:
    builder = DigestBuilder(per_section=2)
    requests = [DigestRequest(chat.id, START, END, chat.timezone) for chat in chats]
    async with session_factory() as session:
        found = await builder.collect(session, requests)
    return {
        chat_id: [(s.name, s.keyword, [x.title for x in s.stories], s.more) for s in sections]
        for chat_id, sections in found.items()
    }


async def test_digest_with_follows_and_mutes(session_factory: SessionFactory) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        sport = await add_section(session, "Sport")
        hour = timedelta(hours=1)
        await add_article(session, "Harbour storm hits port", [sport], published_at=IN_WINDOW)
        await add_article(session, "Port rates rise", [sport], published_at=IN_WINDOW + hour)
        await add_article(session, "Passport queues", [sport], published_at=IN_WINDOW + 2 * hour)
        await add_article(session, "Port of call", [world], published_at=IN_WINDOW + 3 * hour)
        await add_article(session, "Football final", [world], published_at=IN_WINDOW - hour)
        await add_article(session, "World news", [world], published_at=IN_WINDOW - 2 * hour)
        pushed = await add_article(session, "Port strike", [sport], published_at=IN_WINDOW)
        plain = await add_chat(session, [world])
        reader = await add_chat(session, [world])
        await add_rule(session, reader, KeywordKind.FOLLOW, "port", now=START, cap=20)
        await add_rule(session, reader, KeywordKind.MUTE, "Football", now=START, cap=20)
        await add_breaking_push(session, reader, pushed, DeliveryStatus.SENT)
    found = await _collect(session_factory, plain, reader)
    assert found[plain.id] == [("World", None, ["Port of call", "Football final"], 1)]
    assert found[reader.id] == [
        # any section, newest first, under its phrase; the pushed story is not repeated
        # (named by its phrase: messages.digest heads it "🔎 “port”" in the reader's language)
        ("port", "port", ["Port of call", "Port rates rise"], 1),
        # "Port of call" is not listed again; the muted story is gone
        ("World", None, ["World news"], 0),
    ]


async def test_chats_whose_rules_pick_the_same_stories_share_one_rendering(
    session_factory: SessionFactory,
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        await add_article(session, "Storm over the port", [world])
        await add_article(session, "Markets calm", [world])
        a, b, c, d = [await add_chat(session, [world]) for _ in range(4)]
        # mutes matching nothing leave a and b as if they had no rules
        await add_rule(session, a, KeywordKind.MUTE, "football", now=START, cap=20)
        await add_rule(session, b, KeywordKind.MUTE, "cricket", now=START, cap=20)
        await add_rule(session, c, KeywordKind.MUTE, "storm", now=START, cap=20)
        await add_rule(session, d, KeywordKind.MUTE, "PORT", now=START, cap=20)
    builder = DigestWriter(per_section=5)
    async with session_factory() as session:
        built = await builder.build(
            session, [DigestRequest(chat.id, START, END, chat.timezone) for chat in (a, b, c, d)]
        )
    assert built[a.id] is built[b.id]
    assert built[c.id] is built[d.id]  # different words, the same story kept out
    assert "Storm over the port" in built[a.id][0]
    assert "Storm over the port" not in built[c.id][0] and "Markets calm" in built[c.id][0]


async def _alerting_reader(
    session_factory: SessionFactory, phrase: str, *, mute: str | None = None
) -> Chat:
    async with session_factory.begin() as session:
        chat = await add_chat(session)
        added = await add_rule(
            session, chat, KeywordKind.FOLLOW, phrase, now=NOW - timedelta(hours=2), cap=20
        )
        assert added.rule is not None
        added.rule.alert = True
        if mute:
            await add_rule(session, chat, KeywordKind.MUTE, mute, now=NOW, cap=20)
    return chat


async def _alert_rows(session_factory: SessionFactory) -> list[tuple[int, int | None, str]]:
    async with session_factory() as session:
        rows = await session.execute(
            select(Delivery.chat_id, Delivery.article_id, Delivery.status)
            .where(Delivery.kind == DeliveryKind.ALERT)
            .order_by(Delivery.chat_id, Delivery.article_id)
        )
        return [(chat, article, str(status)) for chat, article, status in rows]


async def test_alert_rows_are_written_once_for_matching_new_stories(
    session_factory: SessionFactory,
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        match = await add_article(session, "Harbour port reopens", [world], ingested_at=JUST_NOW)
        await add_article(session, "Passport news", [world], ingested_at=JUST_NOW)
        old = await add_article(
            session, "Port history", [world], ingested_at=NOW - timedelta(hours=3)
        )
        muted = await add_article(session, "Port football club", [world], ingested_at=JUST_NOW)
        pushed = await add_article(session, "Port strike", [world], ingested_at=JUST_NOW)
    alerted = await _alerting_reader(session_factory, "port")
    quiet = await _alerting_reader(session_factory, "port", mute="football")
    async with session_factory.begin() as session:
        digest_only = await add_chat(session)
        await add_rule(session, digest_only, KeywordKind.FOLLOW, "port", now=START, cap=20)
        gone = await add_chat(session)
        rule = await add_rule(session, gone, KeywordKind.FOLLOW, "port", now=START, cap=20)
        assert rule.rule is not None
        rule.rule.alert = True
        (await session.get_one(Chat, gone.id)).active = False
        await add_breaking_push(session, alerted, pushed, DeliveryStatus.SENT)
        await add_breaking_push(session, quiet, pushed, DeliveryStatus.SENT)
    for _ in range(2):  # a second scan (another tick, another instance) adds nothing
        async with session_factory.begin() as session:
            queued = await queue_alerts(session, now=NOW, per_hour=5)
    assert queued.queued == 0
    assert await _alert_rows(session_factory) == [
        (alerted.id, match.id, "pending"),
        (alerted.id, muted.id, "pending"),
        (quiet.id, match.id, "pending"),
    ]
    assert old.id not in {article for _, article, _ in await _alert_rows(session_factory)}
    async with session_factory() as session:
        named = await alert_phrases(session, [(alerted.id, match.id), (quiet.id, muted.id)])
    assert named == {(alerted.id, match.id): "port"}


async def test_alerts_beyond_the_hourly_cap_are_left_for_the_digest(
    session_factory: SessionFactory,
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        stories = [
            await add_article(
                session, f"Storm update {n}", [world], ingested_at=JUST_NOW + timedelta(seconds=n)
            )
            for n in range(4)
        ]
    chat = await _alerting_reader(session_factory, "storm")
    async with session_factory.begin() as session:
        queued = await queue_alerts(session, now=NOW, per_hour=3)
    assert (queued.queued, queued.over_cap) == (3, 1)
    rows = await _alert_rows(session_factory)
    assert rows == [
        (chat.id, stories[0].id, "pending"),
        (chat.id, stories[1].id, "pending"),
        (chat.id, stories[2].id, "pending"),
        (chat.id, stories[3].id, "empty"),  # the newest waits for the digest
    ]
    async with session_factory() as session:
        errors = await session.scalars(
            select(Delivery.error).where(Delivery.status == DeliveryStatus.EMPTY)
        )
        assert list(errors) == [OVER_CAP]
    # an alert capped (EMPTY) is not kept out of the digest; a pending one is not either,
    # but a sent one is
    async with session_factory.begin() as session:
        row = await session.scalar(select(Delivery).where(Delivery.article_id == stories[0].id))
        assert row is not None
        row.status = DeliveryStatus.SENT
    builder = DigestBuilder(per_section=10)
    async with session_factory() as session:
        [found] = (
            await builder.collect(session, [DigestRequest(chat.id, START, END, chat.timezone)])
        ).values()
    titles = [story.title for section in found for story in section.stories]
    assert "Storm update 0" not in titles and "Storm update 3" in titles


async def test_breaking_push_leaves_out_chats_that_mute_its_words(
    session_factory: SessionFactory,
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        article = await add_article(session, "Football: the final is off", [world])
        fan = await add_chat(session, [world])
        hater = await add_chat(session, [world])
        other = await add_chat(session, [world])
        await add_rule(session, hater, KeywordKind.MUTE, "FOOTBALL", now=START, cap=20)
        await add_rule(session, other, KeywordKind.MUTE, "cricket", now=START, cap=20)
        push = BreakingPush(
            article_id=article.id,
            section_id=world.id,
            status=PushStatus.SENDING,
            created_at=START,
            updated_at=START,
        )
        session.add(push)
        await session.flush()
        await create_rows(session, push, now=START)
    async with session_factory() as session:
        targets = set(
            await session.scalars(
                select(Delivery.chat_id).where(Delivery.kind == DeliveryKind.BREAKING)
            )
        )
        count = await session.scalar(select(func.count()).select_from(Delivery))
    assert targets == {fan.id, other.id} and count == 2
