"""The breaking story as readers get it: as text, or as its photo with the story as the
caption; a corrected story carries an italic "✏️ Corrected: ..." line. The push runner, the
corrections runner and the editors' previews all render it here."""

from __future__ import annotations

from digests.delivery.ports import Photo
from digests.i18n import _
from digests.models import Article
from digests.ui.render import (
    MAX_CAPTION,
    MAX_MESSAGE,
    bold,
    escape,
    fit_visible,
    italic,
    link,
    visible_length,
)
from digests.ui.texts import photo_credit

CAPTION_MAX = MAX_CAPTION
"""A photo's caption, as Telegram counts it (after entity parsing)."""


def breaking_story(
    article: Article,
    *,
    correction: str | None = None,
    limit: int = MAX_MESSAGE,
    credit: bool = False,
) -> str:
    """The breaking-news message readers get; with `correction`, the corrected story with an
    italic "✏️ Corrected: ..." line, and with `credit` the photo's caption or credit (for a
    caption). The summary is cut so that the whole fits `limit` visible characters
    (CAPTION_MAX for a photo's caption); a title and a note alone always fit: titles are at
    most TITLE_MAX characters, notes NOTE_MAX."""

    def build(summary: str) -> str:
        return _breaking(article, summary, correction=correction, credit=credit)

    fitted = fit_visible(build, article.summary, limit)
    return fitted if fitted is not None else build("")


def _breaking(
    article: Article, summary: str, *, correction: str | None = None, credit: bool = False
) -> str:
    parts = ["🚨 " + bold(_("Breaking")), "", bold(article.title)]
    if summary:
        parts += [escape(summary)]
    if credit and (line := photo_credit(article)):
        parts += [line]
    if article.link:
        parts += ["", link(article.link, _("Read more"))]
    if correction is not None:
        parts += ["", italic(_("✏️ Corrected: %(note)s") % {"note": correction})]
    return "\n".join(parts)


def breaking_message(article: Article) -> str | Photo:
    """The breaking news as readers get it: the story's photo with the story as its caption
    (the summary cut to fit 1,024 characters) when it has a photo, else breaking_story. The
    photo's fallback, sent if Telegram refuses the image, is the whole breaking_story."""
    text = breaking_story(article)
    if article.image_url is None:
        return text
    caption = breaking_story(article, limit=MAX_CAPTION, credit=True)
    if visible_length(caption) > MAX_CAPTION:
        return text
    return Photo(url=article.image_url, caption=caption, fallback=text)
