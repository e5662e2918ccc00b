"""Every message the bot can say has a Russian translation, and Russian reads right.

The messages are extracted from the sources the way `pybabel extract -F babel.cfg` does (the
same mapping and keywords), so a new `_()` anywhere in digests/ or bot/ without a translation
fails here, as does a translation that lost a placeholder or an HTML tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from digests import i18n
from digests.digest import texts as digest_texts
from digests.digest.builder import DigestSection, DigestStory
from digests.readers import texts as readers_texts
from digests.schedule import Rhythm, parse_weekday
from digests.ui import texts as ui_texts

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "digests" / "locales"
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "pgettext": ((1, "c"), 2)}

Key = tuple[str | None, str]  # (context, msgid)


def extracted() -> dict[Key, tuple[str, ...]]:
    """Every message in the sources: (context, singular) -> all its English forms."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[Key, tuple[str, ...]] = {}
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        forms = (message,) if isinstance(message, str) else tuple(message)
        found[context, forms[0]] = forms
    return found


def catalog(path: Path) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale="ru")


def entries(cat: Catalog) -> Iterator[Any]:
    return (message for message in cat if message.id)


def key(message: Any) -> Key:
    singular = message.id if isinstance(message.id, str) else message.id[0]
    return message.context, singular


PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
TAG = re.compile(
    r"</?(?:b|strong|i|em|u|ins|s|strike|del|a|code|pre|blockquote|tg-spoiler)\b[^>]*>"
)


def test_the_sources_have_messages() -> None:
    found = extracted()
    assert (None, "Your settings") in found
    assert ("button", "Sections") in found  # pgettext keeps its context
    assert (None, "date unknown") in found  # marked with N_ at module level


def test_every_message_has_a_russian_translation() -> None:
    ru = catalog(LOCALES / "ru" / "LC_MESSAGES" / "newsbot.po")
    nplurals = ru.num_plurals
    assert nplurals == 3
    translated = {key(message): message for message in entries(ru)}
    problems = []
    for (context, singular), forms in sorted(extracted().items(), key=str):
        message = translated.get((context, singular))
        where = f"{context + ': ' if context else ''}{singular!r}"
        if message is None:
            problems.append(f"no translation: {where}")
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {where}")
        strings = (message.string,) if isinstance(message.string, str) else message.string
        if len(forms) > 1 and len(strings) != nplurals:
            problems.append(f"{len(strings)} of {nplurals} plural forms: {where}")
        if any(not text.strip() for text in strings) or not strings:
            problems.append(f"empty translation: {where}")
        english = set(PLACEHOLDER.findall(forms[-1])) | set(PLACEHOLDER.findall(forms[0]))
        for text in strings:
            if set(PLACEHOLDER.findall(text)) != english:
                problems.append(f"placeholders differ ({text!r}): {where}")
            if sorted(TAG.findall(text)) != sorted(TAG.findall(forms[0])):
                problems.append(f"HTML tags differ ({text!r}): {where}")
    assert not problems, "\n".join(problems)


def test_the_catalogues_hold_no_stale_messages() -> None:
    """Nothing translated that the sources no longer say, and the template is up to date
    (`pybabel extract` then `pybabel update`, see the README)."""
    found = set(extracted())
    ru = catalog(LOCALES / "ru" / "LC_MESSAGES" / "newsbot.po")
    assert not list(ru.obsolete)
    assert {key(message) for message in entries(ru)} - found == set()
    template = {key(message) for message in entries(catalog(LOCALES / "newsbot.pot"))}
    assert template == found


def test_babel_finds_no_format_errors_in_russian() -> None:
    ru = catalog(LOCALES / "ru" / "LC_MESSAGES" / "newsbot.po")
    errors = [(message.id, problems) for message, problems in ru.check() if problems]
    assert errors == []


# ---- Russian as readers see it -------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "1 новость"),
        (2, "2 новости"),
        (5, "5 новостей"),
        (11, "11 новостей"),
        (21, "21 новость"),
    ],
)
def test_story_counts_take_the_right_russian_form(count: int, expected: str) -> None:
    info = SimpleNamespace(id=1, name="Мир", slug="world", stories=count)
    with i18n.use("ru"):
        [text] = readers_texts.sections_list([info], followed=set())  # type: ignore[list-item]
    assert f"({expected})" in text
    assert "Рубрики" in text


@pytest.mark.parametrize(
    ("count", "expected"), [(1, "1 рубрику"), (3, "3 рубрики"), (5, "5 рубрик"), (21, "21 рубрику")]
)
def test_unsubscribe_question_in_russian(count: int, expected: str) -> None:
    with i18n.use("ru"):
        reply = readers_texts.confirm_unsubscribe_all(count)
    assert f"Вы подписаны на {expected}." in reply.text
    assert [button.text for button in reply.buttons[0]] == ["Да, остановить все", "Отмена"]


def _story(title: str, published: datetime, *, known: bool = True) -> DigestStory:
    return DigestStory(
        article_id=1,
        title=title,
        link="https://news.example/a",
        published_at=published,
        date_known=known,
    )


def test_digest_in_russian_has_russian_heading_dates_and_buttons() -> None:
    end = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # Monday 2 March, 08:00 in Moscow
    section = DigestSection(
        name="World",
        slug="world",
        stories=[
            _story("Todays story", datetime(2026, 3, 2, 4, 0, tzinfo=UTC)),
            _story("Older story", datetime(2026, 2, 27, 9, 30, tzinfo=UTC)),
            _story("Undated", end, known=False),
        ],
        more=3,
    )
    with i18n.use("ru"):
        [text] = digest_texts.digest([section], tz="Europe/Moscow", window_end=end)
        controls = [button.text for row in digest_texts.digest_controls() for button in row]
    assert text.startswith("📰 <b>Ваш дайджест новостей</b> · понедельник, 2 марта")
    assert "Todays story</a> · 07:00" in text  # story titles stay as written
    assert "Older story</a> · 27 февр. 12:30" in text
    assert "· дата неизвестна" in text
    assert "Ещё 3: /latest world" in text
    assert controls == ["⏸ Пауза на неделю", "Рубрики", "🛑 Остановить дайджесты"]


def test_english_digest_reads_as_before() -> None:
    end = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    section = DigestSection(
        name="World",
        slug="world",
        stories=[_story("Older story", datetime(2026, 2, 27, 9, 30, tzinfo=UTC))],
        more=0,
    )
    [text] = digest_texts.digest([section], tz="Europe/Moscow", window_end=end)
    assert text.startswith("📰 <b>Your news digest</b> · Mon 2 Mar")
    assert "Older story</a> · 27 Feb 12:30" in text


def _chat(**fields: Any) -> Any:
    defaults: dict[str, Any] = dict(
        digest_time="09:00",
        second_digest_time=None,
        digest_weekday=0,
        rhythm=Rhythm.WEEKLY,
        timezone="Europe/Moscow",
        next_digest_at=datetime(2026, 3, 2, 6, 0, tzinfo=UTC),
        paused_until=None,
        alerts=True,
        language="ru",
    )
    return SimpleNamespace(**(defaults | fields))


def test_settings_and_rhythms_in_russian() -> None:
    chat = _chat()
    with i18n.use("ru"):
        reply = readers_texts.settings(chat, [])
        assert readers_texts.rhythm_text(chat) == "по понедельникам в 09:00"
        twice = _chat(rhythm=Rhythm.TWICE_DAILY, second_digest_time="18:00")
        assert readers_texts.rhythm_text(twice) == "дважды в день, в 09:00 и 18:00"
    assert "Дайджест: по понедельникам в 09:00" in reply.text
    assert "Следующий дайджест: пн, 2 мар. 2026, 09:00" in reply.text
    assert "Язык: Русский" in reply.text
    assert "Срочные новости: вкл." in reply.text
    assert reply.buttons[0][0].text == "Выбрать рубрики"


def test_weekday_rhythm_and_time_in_english_unchanged() -> None:
    chat = _chat(language="en")
    assert readers_texts.rhythm_text(chat) == "weekly on Monday at 09:00"
    assert ui_texts.local_time(chat.next_digest_at, chat.timezone) == "Mon 02 Mar 2026, 09:00"


def test_constants_are_translated_when_read() -> None:
    with i18n.use("ru"):
        russian = ui_texts.stale_button()
    assert russian == "Эта кнопка больше не работает."
    assert ui_texts.stale_button() == "This button no longer works."
    with pytest.raises(AttributeError):
        _ = ui_texts.NO_SUCH_TEXT


def test_an_unknown_language_falls_back_to_english() -> None:
    assert i18n.language_for("de") == "en"
    assert i18n.language_for("ru-RU") == "ru"
    with i18n.use("de"):
        assert ui_texts.hint().startswith("I didn")


@pytest.mark.parametrize(
    ("word", "weekday"), [("понедельник", 0), ("Пн", 0), ("пятница", 4), ("вс", 6), ("sun", 6)]
)
def test_weekly_digest_days_may_be_written_in_russian(word: str, weekday: int) -> None:
    assert parse_weekday(word) == weekday
