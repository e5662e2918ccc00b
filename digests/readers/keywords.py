"""Keyword follows and mutes: a chat's /follow and /mute phrases, how they match stories, and
the alerts a follow may send.

Alerts for followed phrases are sent by digests/digest/alerts.py.

Matching is plain text, never a pattern a reader wrote: the phrase and the story are both
cut into Unicode word tokens (NFKC, then `str.casefold`, then runs of `\\w`), and a phrase
matches when its tokens occur one after the other in the story's title or in its summary.
Word boundaries and case folding come from the tokenizing: "art" does not match "article",
"Путин" matches "ПУТИН," and "covid-19" matches "COVID 19".

A round never matches readers times stories: each story of a window is tokenized once into
a `StoryIndex` (token -> stories), each distinct phrase of the round is looked up once in it
(and remembered), and a chat's matches are unions of those sets.
"""

from __future__ import annotations

import enum
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from digests.models import (
    KEYWORD_NORMALIZED_MAX,
    KEYWORD_PHRASE_MAX,
    Chat,
    KeywordKind,
    KeywordRule,
)

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
PHRASE_WORDS_MAX = 8  # a phrase of more words than this is a sentence, not a keyword


def tokens(text: str) -> tuple[str, ...]:
    """The word tokens matching compares: NFKC-normalized, case-folded runs of `\\w`."""
    return tuple(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def normalize(text: str) -> str:
    """A phrase's stored, compared form: its tokens joined by single spaces."""
    return " ".join(tokens(text))


class StoryIndex:
    """The tokens of a set of stories (title and summary apart), indexed by token: made once
    per window, it answers each distinct phrase once (`match` remembers)."""

    def __init__(self, stories: Iterable[tuple[int, str, str]]) -> None:
        self._fields: dict[int, tuple[tuple[str, ...], ...]] = {}
        self._postings: dict[str, set[int]] = {}
        self._matches: dict[str, frozenset[int]] = {}
        for story_id, title, summary in stories:
            fields = (tokens(title), tokens(summary or ""))
            self._fields[story_id] = fields
            for field in fields:
                for token in field:
                    self._postings.setdefault(token, set()).add(story_id)

    def __len__(self) -> int:
        return len(self._fields)

    def match(self, normalized: str) -> frozenset[int]:
        """The stories whose title or summary holds the phrase's tokens in a row."""
        found = self._matches.get(normalized)
        if found is None:
            found = self._match(tuple(normalized.split()))
            self._matches[normalized] = found
        return found

    def _match(self, phrase: tuple[str, ...]) -> frozenset[int]:
        if not phrase:
            return frozenset()
        postings = [self._postings.get(token) for token in set(phrase)]
        if any(p is None for p in postings):
            return frozenset()
        candidates = set.intersection(*sorted((p for p in postings if p), key=len))
        if len(phrase) == 1:
            return frozenset(candidates)
        return frozenset(
            story
            for story in candidates
            if any(_contains(field, phrase) for field in self._fields[story])
        )


def _contains(field: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """Whether `phrase` occurs as consecutive tokens of `field`."""
    first, size = phrase[0], len(phrase)
    return any(
        token == first and field[at : at + size] == phrase
        for at, token in enumerate(field[: len(field) - size + 1])
    )


def matches(normalized: str, title: str, summary: str = "") -> bool:
    """Whether one phrase matches one story (for a single check; rounds use StoryIndex)."""
    return bool(StoryIndex([(0, title, summary)]).match(normalized))


# ---- a chat's rules ------------------------------------------------------------------------


class Refusal(enum.StrEnum):
    EMPTY = "empty"  # no word characters at all
    TOO_LONG = "too_long"
    TOO_MANY_WORDS = "too_many_words"
    CAP = "cap"  # the chat has as many rules as it may


@dataclass(frozen=True)
class Added:
    """What /follow or /mute did: the rule, or why not; `existed` when it was there already,
    `replaced` when it took the place of the same phrase's other kind."""

    rule: KeywordRule | None = None
    refusal: Refusal | None = None
    existed: bool = False
    replaced: bool = False


def check_phrase(text: str) -> tuple[str, str] | Refusal:
    """The phrase to show and its normalized form, or why it is refused."""
    phrase = " ".join(text.split())
    normalized = normalize(phrase)
    if not normalized:
        return Refusal.EMPTY
    if len(phrase) > KEYWORD_PHRASE_MAX or len(normalized) > KEYWORD_NORMALIZED_MAX:
        return Refusal.TOO_LONG
    if len(normalized.split()) > PHRASE_WORDS_MAX:
        return Refusal.TOO_MANY_WORDS
    return phrase, normalized


async def rules_of(session: AsyncSession, chat: Chat) -> list[KeywordRule]:
    """The chat's rules: follows first, then mutes, each in the order they were added."""
    return list(
        await session.scalars(
            select(KeywordRule)
            .where(KeywordRule.chat_id == chat.id)
            .order_by(KeywordRule.kind, KeywordRule.id)
        )
    )


async def add_rule(
    session: AsyncSession, chat: Chat, kind: KeywordKind, text: str, *, now: datetime, cap: int
) -> Added:
    """Follow or mute a phrase (at most `cap` rules a chat); the same phrase of the other
    kind is replaced (a word is either followed or muted)."""
    checked = check_phrase(text)
    if isinstance(checked, Refusal):
        return Added(refusal=checked)
    phrase, normalized = checked
    existing = {(rule.kind, rule.normalized): rule for rule in await rules_of(session, chat)}
    if (same := existing.get((kind, normalized))) is not None:
        return Added(rule=same, existed=True)
    other = KeywordKind.MUTE if kind is KeywordKind.FOLLOW else KeywordKind.FOLLOW
    opposite = existing.get((other, normalized))
    if opposite is None and len(existing) >= cap:
        return Added(refusal=Refusal.CAP)
    if opposite is not None:
        await session.delete(opposite)
        await session.flush()
    rule = KeywordRule(
        chat_id=chat.id, kind=kind, phrase=phrase, normalized=normalized, created_at=now
    )
    session.add(rule)
    await session.flush()
    return Added(rule=rule, replaced=opposite is not None)


async def remove_phrase(
    session: AsyncSession, chat: Chat, kind: KeywordKind, text: str
) -> KeywordRule | None:
    """/unfollow or /unmute: the removed rule, None when there was no such rule."""
    normalized = normalize(text)
    rule = await session.scalar(
        select(KeywordRule).where(
            KeywordRule.chat_id == chat.id,
            KeywordRule.kind == kind,
            KeywordRule.normalized == normalized,
        )
    )
    if rule is not None:
        await session.delete(rule)
        await session.flush()
    return rule


async def remove_rule(session: AsyncSession, chat: Chat, rule_id: int) -> KeywordRule | None:
    """A ✖ button: the chat's rule removed; None when it is not (or no longer) the chat's."""
    rule = await session.get(KeywordRule, rule_id)
    if rule is None or rule.chat_id != chat.id:
        return None
    await session.delete(rule)
    await session.flush()
    return rule


async def toggle_alert(session: AsyncSession, chat: Chat, rule_id: int) -> KeywordRule | None:
    """A 🔔 button: a follow's alert on or off; None when it is not the chat's follow."""
    rule = await session.get(KeywordRule, rule_id)
    if rule is None or rule.chat_id != chat.id or rule.kind is not KeywordKind.FOLLOW:
        return None
    rule.alert = not rule.alert
    await session.flush()
    return rule


@dataclass(frozen=True)
class ChatRules:
    """What a digest needs of a chat's rules: follows as (phrase shown, normalized), in the
    order added, and the normalized mutes."""

    follows: tuple[tuple[str, str], ...] = ()
    mutes: tuple[str, ...] = ()


async def rules_by_chat(session: AsyncSession, chat_ids: Sequence[int]) -> dict[int, ChatRules]:
    """The rules of these chats (only chats that have some)."""
    follows: dict[int, list[tuple[str, str]]] = {}
    mutes: dict[int, list[str]] = {}
    for chat_id, kind, phrase, normalized in await session.execute(
        select(KeywordRule.chat_id, KeywordRule.kind, KeywordRule.phrase, KeywordRule.normalized)
        .where(KeywordRule.chat_id.in_(chat_ids))
        .order_by(KeywordRule.id)
    ):
        if kind == KeywordKind.FOLLOW:
            follows.setdefault(chat_id, []).append((phrase, normalized))
        else:
            mutes.setdefault(chat_id, []).append(normalized)
    return {
        chat_id: ChatRules(tuple(follows.get(chat_id, ())), tuple(mutes.get(chat_id, ())))
        for chat_id in follows.keys() | mutes.keys()
    }


async def muted_phrases_matching(session: AsyncSession, title: str, summary: str) -> list[str]:
    """The distinct muted phrases (of any chat) that match one story: a breaking push leaves
    out the chats that mute one of them. One lookup per distinct phrase, not per reader."""
    index = StoryIndex([(0, title, summary)])
    phrases = await session.scalars(
        select(KeywordRule.normalized).where(KeywordRule.kind == KeywordKind.MUTE).distinct()
    )
    return [phrase for phrase in phrases if index.match(phrase)]
