"""The reader's language: English (the source text) and Russian, from gettext catalogues.

Messages are written in English inside `_()` / `ngettext()` and translated at the moment they
are rendered, into the language of the chat being answered. That language is set around the
work for one chat with `use(language)` (one context per update or per delivery; asyncio tasks
each keep their own), the way Django's `translation.override` does.

Catalogues live in `digests/locales/<lang>/LC_MESSAGES/newsbot.po`, extracted with Babel
(`pybabel extract`, see the README) and read at first use: Babel compiles the `.po` in memory,
so no build step or compiled file can go stale.
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

DOMAIN = "newsbot"
SOURCE = "en"  # the language the messages are written in
LANGUAGES: tuple[str, ...] = ("en", "ru")
LOCALES = Path(__file__).parent / "locales"

_language: ContextVar[str] = ContextVar("newsbot_language", default=SOURCE)


def supported(code: str | None) -> str | None:
    """The supported language for a Telegram `language_code` ("ru", "ru-RU", "en-GB"...), or
    None when it is not one of ours."""
    if not code:
        return None
    base = code.replace("_", "-").split("-", 1)[0].strip().lower()
    return base if base in LANGUAGES else None


def language_for(code: str | None, default: str = SOURCE) -> str:
    """A new chat's language: its Telegram `language_code` when we speak it, else `default`."""
    return supported(code) or default


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """The catalogue of one language (English is the source: nothing to translate)."""
    if language == SOURCE or language not in LANGUAGES:
        return _gettext.NullTranslations()
    path = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def current() -> str:
    """The language being rendered now."""
    return _language.get()


@contextmanager
def use(language: str | None) -> Iterator[str]:
    """Render in `language` (an unknown one falls back to English) until the block ends."""
    chosen = language if language in LANGUAGES else SOURCE
    token = _language.set(chosen)
    try:
        yield chosen
    finally:
        _language.reset(token)


def gettext(message: str) -> str:
    """`message` in the current language."""
    return translations(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message that fits the number `n` in the current language (Russian has
    three)."""
    return translations(_language.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """`message` in the current language, told apart from the same English words by
    `context` (a button's "Sections" and a heading's "Sections" may differ in Russian)."""
    return translations(_language.get()).pgettext(context, message)


def number(n: int) -> str:
    """A count as the current language writes it: 1,240 in English, 1 240 in Russian."""
    return format_decimal(n, locale=_language.get())


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional name
    """Mark a message for extraction without translating it (translated where it is used)."""
    return message


_ = gettext
