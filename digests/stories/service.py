"""What the bot answers to /latest, /search and the ◀ Previous / Next ▶ buttons under their
stories: the rules, free of Telegram.

Each function takes the session, the chat if it is stored, and a `ReaderRequest`, and
returns the replies; the texts come from digests/stories/texts.py.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from digests.models import Chat
from digests.stories import texts
from digests.stories.paging import first_page, turn_page
from digests.stories.search import search_words, start_search, turn_search
from digests.stories.sections import list_sections, resolve_section_args, resolve_sections
from digests.ui.buttons import PageTurn, SearchTurn
from digests.ui.shapes import ButtonAnswer, ReaderRequest, Reply


def _tz(chat: Chat | None, request: ReaderRequest) -> str:
    return chat.timezone if chat else request.defaults.timezone


async def latest(session: AsyncSession, chat: Chat | None, request: ReaderRequest) -> list[Reply]:
    section = None
    if request.args:
        found = await resolve_sections(session, [request.text])
        if len(found.sections) != 1:
            found = await resolve_section_args(session, request.args)
        if found.unknown or len(found.sections) != 1:
            unknown = found.unknown or [request.text]
            return [Reply(texts.unknown_sections(unknown, await list_sections(session)))]
        section = found.sections[0]
    page = await first_page(session, section)
    if page is None:
        return [Reply(texts.no_stories())]
    return [texts.story_page(page, tz=_tz(chat, request))]


async def search(
    session: AsyncSession, chat_id: int, chat: Chat | None, request: ReaderRequest
) -> list[Reply]:
    """/search words: the best match, with ◀ Previous / Next ▶ through the saved results."""
    words = search_words(request.text)
    if not words:
        return [Reply(texts.search_usage())]
    page = await start_search(session, chat_id=chat_id, words=words, now=request.now)
    if page is None:
        return [Reply(texts.no_results(words))]
    return [texts.search_page(page, tz=_tz(chat, request))]


async def turn_page_button(
    session: AsyncSession, chat: Chat | None, turn: PageTurn, request: ReaderRequest
) -> ButtonAnswer:
    """◀ Previous / Next ▶ under a /latest story: edit the message to the next story."""
    turned = await turn_page(session, turn)
    if turned.page is None:
        return ButtonAnswer(answer=texts.turn_problem(turned.problem) if turned.problem else None)
    return ButtonAnswer(edit=texts.story_page(turned.page, tz=_tz(chat, request)))


async def search_button(
    session: AsyncSession, chat_id: int, chat: Chat | None, turn: SearchTurn, request: ReaderRequest
) -> ButtonAnswer:
    """◀ Previous / Next ▶ under a /search result: edit the message to that result."""
    turned = await turn_search(session, chat_id=chat_id, turn=turn)
    if turned.page is None:
        return ButtonAnswer(answer=texts.turn_problem(turned.problem) if turned.problem else None)
    return ButtonAnswer(edit=texts.search_page(turned.page, tz=_tz(chat, request)))
