"""An editor's /breaking text is stored alike on every database, whatever it holds."""

from __future__ import annotations

from datetime import UTC, datetime

from digests.db import SessionFactory
from digests.models import Article
from digests.newsroom import texts
from digests.newsroom.breaking import draft_breaking

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def draft(factory: SessionFactory, *words: str) -> tuple[str | None, str, str]:
    async with factory.begin() as session:
        found = await draft_breaking(
            session, words, admin_id=1, admin_chat_id=1, now=NOW, default_section="General"
        )
        assert found is not None
        article = found.push.article
        preview = texts.push_preview(found).text
        return article.link, article.title, preview


async def test_a_link_too_long_to_store_is_pushed_as_text(session_factory: SessionFactory) -> None:
    url = "https://news.example/" + "a" * 2100
    link, title, preview = await draft(session_factory, url)
    assert link is None and title.startswith("https://news.example/aaa")
    assert "Read more" not in preview  # the editor sees there is no link before pressing Send


async def test_control_characters_never_reach_the_database(
    session_factory: SessionFactory,
) -> None:
    link, title, _ = await draft(session_factory, "Dam\x00", "breach\x07", "downstream\x1b")
    assert (link, title) == (None, "Dam breach downstream")


async def test_a_link_two_feeds_carry_previews_the_publishers_story(
    session_factory: SessionFactory,
) -> None:
    """Another feed may carry the publisher's URL under its own (phishing) title: /breaking
    <URL> takes the story of the publisher's own feed, and says that another one exists."""
    url = "https://news.example/2026/12/07/dam"
    own, other = "https://news.example/rss", "https://aggregator.example/feed"
    async with session_factory.begin() as session:
        for key, title, source in (
            ("agg-1", "Click here to claim your prize", other),  # stored first
            ("own-1", "Dam breach downstream", own),
        ):
            session.add(
                Article(
                    key=key,
                    link=url,
                    title=title,
                    summary="",
                    published_at=NOW,
                    ingested_at=NOW,
                    updated_at=NOW,
                    source=source,
                    is_breaking=False,
                )
            )
    async with session_factory.begin() as session:
        found = await draft_breaking(
            session,
            [url],
            admin_id=1,
            admin_chat_id=1,
            now=NOW,
            default_section="General",
            feeds=["https://www.news.example/rss/"],  # the same feed, written another way
        )
        assert found is not None
        assert found.push.article.title == "Dam breach downstream"
        assert found.same_link == 1
        preview = texts.push_preview(found).text
    assert "Click here" not in preview
    assert "1 other stored story has this link. This one is from https://news.example/rss" in (
        preview
    )
