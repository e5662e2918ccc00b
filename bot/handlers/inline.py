"""Inline mode: `@bot words` in any chat offers matching stories to share there.

Every inline query is answered, and soon: the search runs under ANSWER_WITHIN seconds, and a
search that fails or takes longer gets an empty answer (not cached) instead of leaving the
reader's list spinning. Answers for the same words and offset are kept for LOCAL_TTL
seconds in this process (people type, and clients send a query per keystroke) and for
CACHE_TIME seconds by Telegram.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from telegram import (
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.context import NewsContext
from bot.inline_cache import InlineAnswer
from digests import i18n
from digests.db import unavailable
from digests.stories import texts
from digests.stories.search import inline_offset, inline_page, search_words
from digests.stories.texts import InlineStory

log = logging.getLogger(__name__)

CACHE_TIME = 10  # seconds Telegram may keep our answer (answerInlineQuery cache_time)
ANSWER_WITHIN = 5.0  # seconds of searching before answering with nothing


def result(story: InlineStory) -> InlineQueryResultArticle:
    """One entry of the list: the story's title, summary and photo; choosing it sends the
    story's message (HTML, without a link preview) into the chat."""
    return InlineQueryResultArticle(
        id=story.id,
        title=story.title,
        input_message_content=InputTextMessageContent(
            story.text,
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        ),
        description=story.description or None,
        thumbnail_url=story.thumbnail_url,
        url=story.url,
    )


def results(stories: Sequence[InlineStory]) -> list[InlineQueryResultArticle]:
    return [result(story) for story in stories]


async def _search(context: NewsContext, query: str, offset: int) -> InlineAnswer:
    async with context.bot_data.sessions() as session:
        page = await inline_page(session, query, offset)
        return InlineAnswer([texts.inline_story(a) for a in page.articles], page.next_offset)


async def inline_query(update: Update, context: NewsContext) -> None:
    """Offer the stories matching what the reader typed after the bot's name (the newest
    when nothing): always answered, with nothing when the search fails or is slow."""
    query = update.inline_query
    if query is None:
        return
    offset = inline_offset(query.offset)
    if offset is None:  # not an offset we gave: nothing more to show
        await _answer(query.id, context, InlineAnswer([], ""), cache=True)
        return
    # the stories' messages carry a word or two of the sender's language ("Read more")
    key = (" ".join(search_words(query.query)), offset, i18n.current())
    cache = context.bot_data.inline_cache
    answer = cache.get(key)
    if answer is None:
        try:
            answer = await asyncio.wait_for(_search(context, query.query, offset), ANSWER_WITHIN)
        except TimeoutError:
            log.warning(
                "inline query of user %s: search took over %ss", query.from_user.id, ANSWER_WITHIN
            )
            await _answer(query.id, context, InlineAnswer([], ""), cache=False)
            return
        except Exception as exc:
            if unavailable(exc):
                log.warning(
                    "inline query of user %s: database unavailable: %s", query.from_user.id, exc
                )
            else:
                log.exception("inline query of user %s failed", query.from_user.id)
            await _answer(query.id, context, InlineAnswer([], ""), cache=False)
            return
        cache.put(key, answer)
    await _answer(query.id, context, answer, cache=True)


async def _answer(
    query_id: str, context: NewsContext, answer: InlineAnswer, *, cache: bool
) -> None:
    try:
        await context.bot.answer_inline_query(
            query_id,
            results(answer.stories),
            cache_time=CACHE_TIME if cache else 0,
            is_personal=False,
            next_offset=answer.next_offset,
        )
    except TelegramError as exc:  # too late, or the network: the reader types again
        log.warning("could not answer inline query %s: %s", query_id, exc)
