"""An editor's /breaking text is stored alike on every database, whatever it holds."""

from __future__ import annotations

from datetime import UTC, datetime

from digests.db import SessionFactory
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
