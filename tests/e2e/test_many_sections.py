"""A publisher whose feed has a category on every story: the chat stays usable."""

from __future__ import annotations

from pathlib import Path

from digests import messages
from digests.db import make_engine, make_session_factory, upgrade
from digests.feeds import FeedEntry
from digests.ingest import store_entries
from digests.sections import list_sections
from digests.settings import Settings
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, e2e_settings, logged_errors, running_bot
from tests.e2e.test_readers import NOW


async def test_150_categories_keep_the_chooser_and_sections_within_telegrams_limits(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'many.db'}"
    limit = Settings.model_fields["max_sections"].metadata  # the setting's bounds
    assert any(getattr(bound, "le", None) == 90 for bound in limit)
    entries = [
        FeedEntry(
            f"m{i}",
            None,
            f"Story {i}",
            "s",
            NOW,
            (f"Topic {i:03d} {'regional affairs ' * 4}".strip(),),
        )
        for i in range(150)
    ]
    engine = make_engine(url)
    try:
        await upgrade(engine)
        async with make_session_factory(engine).begin() as session:
            report = await store_entries(
                session, entries, now=NOW, category_map={}, default_section="General",
                source="feed", max_sections=90,
            )  # fmt: skip
        async with make_session_factory(engine)() as session:
            infos = await list_sections(session)
    finally:
        await engine.dispose()
    assert len(infos) == 91  # 90 from categories, and General for the rest
    assert report.warnings and "60 categories filed under General" in report.warnings[0]
    expected = len(messages.sections_list(infos, set()))
    assert expected > 1  # too long for one message
    fake_api.emulator.add_user(701, "Hal")
    reader = Reader(fake_api, 701)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
            [chooser] = await reader.send("/start")
            assert len(chooser.buttons) == 92  # 91 sections and Done: within Telegram's 100
            parts = await reader.send("/sections", replies=expected)
            assert sum(part.text.count("/latest ") for part in parts) == 91
    assert errors == []
    assert [c.error for c in fake_api.emulator.calls if c.error is not None] == []
