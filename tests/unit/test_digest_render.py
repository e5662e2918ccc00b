"""How a digest reads in Telegram: escaping, times in the chat's zone, "+N more", splitting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from digests.digest.builder import DigestSection, DigestStory
from digests.digest.texts import digest as render_digest
from digests.ui.render import MAX_MESSAGE
from digests.ui.texts import format_moment
from fakebotapi.telegram_html import parse_html

WINDOW_END = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # a Tuesday; 08:00 in Berlin
BERLIN = "Europe/Berlin"


def shown_text(message: str) -> str:
    """What Telegram shows for `message`, or AssertionError if Telegram would refuse it."""
    try:
        return parse_html(message)
    except ValueError as error:
        raise AssertionError(f"Telegram would refuse: {error}\n{message}") from error


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def story(
    article_id: int,
    title: str,
    *,
    link: str | None = "https://news.example/a",
    published_at: datetime = WINDOW_END - timedelta(hours=2),
) -> DigestStory:
    return DigestStory(article_id, title, link, published_at)


def section(name: str, stories: list[DigestStory], *, more: int = 0) -> DigestSection:
    return DigestSection(slug=name.lower(), name=name, stories=stories, more=more)


def render(sections: list[DigestSection], tz: str = BERLIN) -> list[str]:
    return render_digest(sections, tz=tz, window_end=WINDOW_END)


def test_empty_digest_is_no_message() -> None:
    assert render([]) == []
    assert render([section("World", [])]) == []


def test_digest_reads_header_sections_and_stories() -> None:
    messages = render(
        [
            section("Business", [story(1, "Markets rally", link="https://news.example/1")]),
            section(
                "World",
                [
                    story(2, "Summit opens", link="https://news.example/2"),
                    story(
                        3,
                        "Talks continue",
                        link="https://news.example/3",
                        published_at=datetime(2026, 11, 24, 5, 15, tzinfo=UTC),
                    ),
                ],
            ),
        ]
    )
    assert messages == [
        "📰 <b>Your news digest</b> · Tue 24 Nov\n"
        "\n"
        "<b>Business</b>\n"
        '• <a href="https://news.example/1">Markets rally</a> · 06:00\n'
        "\n"
        "<b>World</b>\n"
        '• <a href="https://news.example/2">Summit opens</a> · 06:00\n'
        '• <a href="https://news.example/3">Talks continue</a> · 06:15'
    ]
    assert shown_text(messages[0]).startswith("📰 Your news digest · Tue 24 Nov\n\nBusiness\n")


def test_header_date_and_times_are_in_the_chats_zone() -> None:
    # 07:00 UTC is 16:00 in Tokyo, and 23:00 the day before in Los Angeles.
    stories = [story(1, "Quake drill", published_at=datetime(2026, 11, 24, 6, 5, tzinfo=UTC))]
    tokyo = render([section("Japan", stories)], tz="Asia/Tokyo")[0]
    assert "· Tue 24 Nov" in tokyo
    assert "Quake drill</a> · 15:05" in tokyo
    los_angeles = render([section("Japan", stories)], tz="America/Los_Angeles")[0]
    assert "· Mon 23 Nov" in los_angeles
    assert "Quake drill</a> · 22:05" in los_angeles


def test_story_from_an_earlier_day_shows_its_date() -> None:
    older = story(1, "Yesterday's news", published_at=datetime(2026, 11, 22, 21, 30, tzinfo=UTC))
    message = render([section("World", [older])])[0]
    assert "· 22 Nov 22:30" in message


def test_titles_and_links_are_escaped() -> None:
    title = """Tom & Jerry <b>3</b> "quoted" 'single'"""
    url = 'https://news.example/?a=1&b="x"<y>'
    message = render([section("Q&A <live>", [story(1, title, link=url)])])[0]
    assert "<b>Q&amp;A &lt;live&gt;</b>" in message
    assert (
        '<a href="https://news.example/?a=1&amp;b=&quot;x&quot;&lt;y&gt;">'
        "Tom &amp; Jerry &lt;b&gt;3&lt;/b&gt; &quot;quoted&quot; &#x27;single&#x27;</a>"
    ) in message
    shown = shown_text(message)
    assert f"• {title} · 06:00" in shown
    assert "Q&A <live>" in shown


@pytest.mark.parametrize("link", [None, "", "javascript:alert(1)"])
def test_story_without_usable_link_shows_plain_title(link: str | None) -> None:
    message = render([section("World", [story(1, "No <link> here", link=link)])])[0]
    assert "• No &lt;link&gt; here · 06:00" in message
    assert "<a " not in message


def test_more_line_points_at_the_section() -> None:
    stories = [story(1, "One"), story(2, "Two")]
    message = render([section("World", stories, more=3), section("Sport", [story(3, "Three")])])[0]
    lines = message.split("\n")
    assert lines[lines.index("+3 more: /latest world") - 1].startswith('• <a href="')
    assert "more:" not in message.split("<b>Sport</b>")[1]


def test_no_more_line_when_nothing_was_cut() -> None:
    assert "more" not in render([section("World", [story(1, "One")], more=0)])[0]


def test_very_long_title_is_shortened() -> None:
    message = render([section("World", [story(1, "word " * 200)])])[0]
    assert "…</a>" in message
    assert utf16_length(shown_text(message)) < 400


def _long_title(n: int) -> str:
    return f"Story {n:03d} 🚀 <{'Very & long headline ' * 12}>"


def _two_hundred_stories() -> list[DigestSection]:
    sections = []
    for s, name in enumerate(["Business", "Culture", "Science", "Sport", "World"]):
        stories = [
            story(s * 40 + i, _long_title(s * 40 + i), link=f"https://news.example/{s}/{i}?a&b")
            for i in range(40)
        ]
        sections.append(section(name, stories, more=s))
    return sections


def test_long_digest_is_split_into_valid_messages_losing_nothing() -> None:
    sections = _two_hundred_stories()
    messages = render(sections)

    assert len(messages) > 3
    shown = [shown_text(message) for message in messages]
    for message, text in zip(messages, shown, strict=True):
        assert utf16_length(text) <= MAX_MESSAGE
        assert not message.startswith("\n")
    assert shown[0].startswith("📰 Your news digest · Tue 24 Nov")
    assert all("Your news digest" not in text for text in shown[1:])

    found = [int(n) for text in shown for n in re.findall(r"^• Story (\d{3}) ", text, re.M)]
    assert found == list(range(200))
    for text in shown:
        for title in re.findall(r"^• (Story .*?) · \d\d:\d\d$", text, re.M):
            assert title == _long_title(int(title[6:9]))
    all_text = "\n".join(shown)
    assert [all_text.count(f"+{s} more: /latest") for s in range(1, 5)] == [1, 1, 1, 1]


def test_section_heading_is_never_left_alone_at_the_end_of_a_message() -> None:
    # Many short sections so that headings land near every message boundary.
    sections = [
        section(f"Section {n:03d}", [story(n * 10 + i, _long_title(n)) for i in range(n % 4 + 1)])
        for n in range(120)
    ]
    messages = render(sections)
    assert len(messages) > 2
    for message in messages:
        lines = shown_text(message).split("\n")
        for i, line in enumerate(lines):
            if line.startswith("Section "):
                assert i + 1 < len(lines), f"heading {line!r} ends a message"
                assert lines[i + 1].startswith("• Story ")


def test_a_year_one_date_renders_in_every_zone() -> None:
    """Go's zero time (Hugo feeds) is before year 1 on the clocks west of Greenwich."""
    moment = datetime(1, 1, 1, tzinfo=UTC)
    for zone in ("America/New_York", "Pacific/Kiritimati", "UTC", "Asia/Tokyo"):
        assert "1" in format_moment(moment, zone, "date")
