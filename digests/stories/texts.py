"""What the stories feature says: a story page (/latest and its buttons), a search result
page (/search and its buttons), no results, and the stories offered in inline mode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from digests import i18n
from digests.i18n import _
from digests.stories.paging import TurnProblem
from digests.ui.buttons import Direction, encode
from digests.ui.render import (
    MAX_CAPTION,
    MAX_MESSAGE,
    bold,
    escape,
    fit_visible,
    italic,
    link,
    truncate,
)
from digests.ui.shapes import Button, Reply
from digests.ui.texts import DATE_UNKNOWN, local_time, photo_credit, section_gone, stale_button

if TYPE_CHECKING:
    from digests.models import Article
    from digests.stories.paging import Page
    from digests.stories.search import SearchPage
    from digests.stories.sections import SectionInfo


SLUGS_SHOWN = 40
"""Section slugs suggested after an unknown name at most (each is up to 40 characters)."""


def unknown_sections(unknown: Sequence[str], infos: Sequence[SectionInfo]) -> str:
    shown = [f"“{escape(truncate(name, 40))}”" for name in unknown[:5]]
    if len(unknown) > 5:
        shown.append(_("%(n)s more") % {"n": len(unknown) - 5})
    names = ", ".join(shown)
    real = ", ".join(escape(info.slug) for info in infos[:SLUGS_SHOWN]) or escape(_("none yet"))
    if len(infos) > SLUGS_SHOWN:
        real += escape(_(" and %(n)s more: see /sections") % {"n": len(infos) - SLUGS_SHOWN})
    return _("I don't know %(names)s. Sections: %(sections)s.") % {"names": names, "sections": real}


STORY_SUMMARY_MAX = 900


def _published(article: Article, tz: str) -> str:
    return local_time(article.published_at, tz) if article.date_known else _(DATE_UNKNOWN)


def story_page(page: Page, *, tz: str) -> Reply:
    """One story with ◀ Previous / Next ▶ buttons and its position; with the story's photo
    when it has one, its summary then cut to fit a caption (a story whose title and
    sections alone would not fit one goes out as text)."""
    return _paged_story(
        page.article,
        scope=page.section.name if page.section else _("All sections"),
        position=(
            i18n.number(page.position) if page.position_exact else f"{i18n.number(page.position)}+"
        ),
        total=page.total,
        previous=encode(page.turn(Direction.NEWER)) if page.has_newer else None,
        following=encode(page.turn(Direction.OLDER)) if page.has_older else None,
        tz=tz,
    )


SEARCH_SCOPE_MAX = 40  # characters of the query repeated under each result


def search_page(page: SearchPage, *, tz: str) -> Reply:
    """One /search result, as /latest shows a story: ◀ Previous / Next ▶ through the saved
    results, and "Search “words”: n / N" under it."""
    return _paged_story(
        page.article,
        scope=_("Search “%(query)s”") % {"query": truncate(page.query, SEARCH_SCOPE_MAX)},
        position=page.position,
        total=page.total,
        previous=encode(page.turn(Direction.NEWER)) if page.has_previous else None,
        following=encode(page.turn(Direction.OLDER)) if page.has_next else None,
        tz=tz,
    )


def _paged_story(
    article: Article,
    *,
    scope: str,
    position: int | str,  # "10,000+" past the exact count
    total: int,
    previous: str | None,
    following: str | None,
    tz: str,
) -> Reply:
    section_names = ", ".join(section.name for section in article.sections) or "—"
    byline = f" · {article.author}" if article.author else ""

    def page_text(summary: str, *, credit: bool = False) -> str:
        parts = [
            bold(article.title),
            italic(f"{section_names} · {_published(article, tz)}{byline}"),
        ]
        if summary:
            parts += ["", escape(summary)]
        if credit and (line := photo_credit(article)):
            parts += [line]
        shown = i18n.number(position) if isinstance(position, int) else position
        parts += ["", escape(f"{scope}: {shown} / {i18n.number(total)}")]
        return "\n".join(parts)

    summary = truncate(article.summary, STORY_SUMMARY_MAX)
    text = page_text(summary)
    photo = article.image_url
    if photo is not None:
        caption = fit_visible(lambda cut: page_text(cut, credit=True), summary, MAX_CAPTION)
        if caption is None:
            photo = None
        else:
            text = caption
    nav: list[Button] = []
    if previous is not None:
        nav.append(Button(_("◀ Previous"), data=previous))
    if following is not None:
        nav.append(Button(_("Next ▶"), data=following))
    rows: list[list[Button]] = []
    if article.link and article.link.lower().startswith(("http://", "https://")):
        rows.append([Button(_("Open article"), url=article.link)])
    if nav:
        rows.append(nav)
    return Reply(text, rows, photo=photo)


def search_usage() -> str:
    return (
        bold(_("Usage"))
        + ": /search "
        + escape(
            _("words")
            + "\n\n"
            + _(
                "Finds stored stories with all these words in their title or text, the most "
                "relevant first. Example: /search election results"
            )
        )
    )


def no_results(words: Sequence[str]) -> str:
    shown = truncate(" ".join(words), SEARCH_SCOPE_MAX)
    return escape(
        _("No stories found for “%(words)s”. Try fewer or other words.") % {"words": shown}
    )


def no_stories() -> str:
    return escape(_("No stories yet. Come back soon!"))


def search_expired() -> str:
    return _("This search has expired: search again with /search.")


def no_more_stories() -> str:
    return _("No more stories.")


def turn_problem(problem: TurnProblem) -> str:
    """The short answer to a ◀ Previous / Next ▶ press that turned to no story."""
    match problem:
        case TurnProblem.SECTION_GONE:
            return section_gone()
        case TurnProblem.STALE:
            return stale_button()
        case TurnProblem.SEARCH_EXPIRED:
            return search_expired()
    return no_more_stories()


# ---- inline mode: stories shared into any chat ---------------------------------------------


INLINE_TITLE_MAX = 200


INLINE_DESCRIPTION_MAX = 200


@dataclass(frozen=True)
class InlineStory:
    """A story offered in inline mode: what the list shows (plain title and description,
    thumbnail) and the Telegram-HTML message sent into the chat when it is chosen."""

    id: str
    title: str
    description: str
    text: str
    thumbnail_url: str | None
    url: str | None


def _http(url: str | None) -> str | None:
    return url if url and url.lower().startswith(("http://", "https://")) else None


def inline_story(article: Article) -> InlineStory:
    """The shared message: the title in bold, the summary cut so the whole fits Telegram's
    4096 characters, and the link; its photo as the thumbnail when it has one."""
    url = _http(article.link)

    def build(summary: str) -> str:
        parts = [bold(article.title)]
        if summary:
            parts += [escape(summary)]
        if url:
            parts += ["", link(url, _("Read more"))]
        return "\n".join(parts)

    text = fit_visible(build, article.summary, MAX_MESSAGE) or build("")
    return InlineStory(
        id=str(article.id),
        title=truncate(article.title, INLINE_TITLE_MAX) or "…",
        description=truncate(" ".join(article.summary.split()), INLINE_DESCRIPTION_MAX),
        text=text,
        thumbnail_url=_http(article.image_url),
        url=url,
    )
