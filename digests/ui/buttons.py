"""The callback-data protocol: what every inline button carries, written and read in one place.

Telegram hands a button's data back verbatim when it is pressed, from any client, so it is
1-64 bytes of UTF-8 that anyone can forge. Each kind of button has a one-letter prefix, and
the Telegram adapter routes a press by that prefix alone (the `*_PATTERN`s below); the
handler then decodes the rest, and anything that does not decode is a stale or tampered
button that gets a short answer and changes nothing.

Numbers are ASCII digits written without leading zeros, so each value has exactly one
spelling. A chooser toggle sent before the chooser had pages carries no page number; it
still works, and the chooser then opens on the page that holds the toggled section.

    L:<section id>:<published ts>:<article id>:<n|p>   /latest paging (0 = every section)
    Q:<search id>:<position>:<n|p>                     /search paging (a saved search)
    S:t:<section id>:<page>   S:p:<page>   S:done      the section chooser (paged)
    S:t:<section id>                                   a chooser toggle from before paging
    U:all   U:cancel                                   /unsubscribe confirmation
    C:sections   C:digest   C:alerts   C:tz   C:resume the /settings menu
    D:pause   D:sections   D:stop                      the buttons under every digest
    B:send:<push id>   B:cancel:<push id>              an editor's breaking-push preview
    K:c:<push id>   K:w:<push id>                      Correct / Withdraw on a push report
    K:cy:<push id>:<12 hex>   K:cn:<push id>           a correction preview's Edit / Cancel
    K:wy:<push id>   K:wn:<push id>                    a withdrawal's Yes / No
    W:a:<rule id>   W:x:<rule id>                      a keyword's 🔔 alert toggle / ✖ remove
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import assert_never

MAX_BYTES = 64

PAGE_PATTERN = re.compile(r"^L:")
SEARCH_PATTERN = re.compile(r"^Q:")
SETTINGS_PATTERN = re.compile(r"^[SUC]:")  # buttons that change a chat's settings
DIGEST_PATTERN = re.compile(r"^D:")  # under a digest: pause, sections, stop
PUSH_PATTERN = re.compile(r"^B:")
ACTION_PATTERN = re.compile(r"^K:")
LANGUAGE_PATTERN = re.compile(r"^G:")  # /language: the chat's language
KEYWORD_PATTERN = re.compile(r"^W:")  # under /keywords, /follow and /mute

# Database ids are 32-bit integers (PostgreSQL's `integer`): anything larger in a button was
# made up, and is refused here rather than by the database. Digits are ASCII only.
MAX_ID = 2**31 - 1
# Story times as whole seconds from the epoch, within what a datetime can hold (year 1 to
# 9999): a story from before 1970 has a negative time.
MIN_TS = -62_135_596_800
MAX_TS = 253_402_300_799
MAX_PAGE = 999  # chooser pages: far more than MAX_SECTIONS can fill
_ID = r"(0|[1-9][0-9]{0,9})"
_PAGE_NO = r"([1-9][0-9]{0,2})"
_PAGE = re.compile(rf"^L:{_ID}:(0|-?[1-9][0-9]{{0,11}}):{_ID}:([np])$")
_SEARCH = re.compile(rf"^Q:{_ID}:{_PAGE_NO}:([np])$")
_TOGGLE = re.compile(rf"^S:t:{_ID}(?::{_PAGE_NO})?$")
_CHOOSER_PAGE = re.compile(rf"^S:p:{_PAGE_NO}$")
_PUSH = re.compile(rf"^B:(send|cancel):{_ID}$")
_ACTION = re.compile(rf"^K:(c|cn|w|wy|wn):{_ID}$")
_KEYWORD = re.compile(rf"^W:([ax]):{_ID}$")
_ACTION_CONFIRM = re.compile(rf"^K:cy:{_ID}:([0-9a-f]{{12}})$")


class Direction(enum.StrEnum):
    OLDER = "n"  # Next ▶
    NEWER = "p"  # ◀ Previous


@dataclass(frozen=True)
class PageTurn:
    """Page from the story on screen (where it was published, its id) one story on."""

    section_id: int  # 0 means every section
    published_ts: int  # seconds since the epoch, UTC
    article_id: int
    direction: Direction


@dataclass(frozen=True)
class SearchTurn:
    """Show the story at `position` (1 = best) of a saved /search; should it be gone, the
    next one in `direction`."""

    search_id: int
    position: int
    direction: Direction


@dataclass(frozen=True)
class ToggleSection:
    """A section's button in the chooser: follow or unfollow it, then show `page` again.

    `page` is None only for a button sent before the chooser had pages.
    """

    section_id: int
    page: int | None = 1


@dataclass(frozen=True)
class ChooserPage:
    """◀ Previous / Next ▶ (or the page number between them) under the section chooser."""

    page: int


@dataclass(frozen=True)
class ChooserDone:
    """Done under the section chooser."""


class Unsubscribe(enum.StrEnum):
    ALL = "all"
    CANCEL = "cancel"


class SettingsChoice(enum.StrEnum):
    SECTIONS = "sections"
    DIGEST = "digest"
    ALERTS = "alerts"
    TIMEZONE = "tz"
    RESUME = "resume"  # end a pause of the digests


class DigestControl(enum.StrEnum):
    """The one-tap buttons under every digest; each acts on the chat it was pressed in."""

    PAUSE = "pause"
    SECTIONS = "sections"
    STOP = "stop"


@dataclass(frozen=True)
class PushChoice:
    """Send or Cancel under a breaking-push preview."""

    push_id: int
    send: bool


class ActionStep(enum.StrEnum):
    CORRECT = "c"  # ✏️ Correct under a finished push report
    CORRECT_YES = "cy"  # "Edit N messages" under a correction preview
    CORRECT_NO = "cn"
    WITHDRAW = "w"  # 🗑 Withdraw under a finished push report
    WITHDRAW_YES = "wy"
    WITHDRAW_NO = "wn"


@dataclass(frozen=True)
class ActionChoice:
    """A correction's or withdrawal's button. `digest` (12 hex digits) is only on
    CORRECT_YES: it names the correction previewed, so a press after the editor changed
    their /correct message does not apply a text nobody previewed."""

    step: ActionStep
    push_id: int
    digest: str | None = None


@dataclass(frozen=True)
class LanguageChoice:
    """A language's button under /language: a code of digests.i18n.LANGUAGES."""

    language: str


_LANGUAGE = re.compile(r"^G:([a-z]{2})$")


class KeywordStep(enum.StrEnum):
    ALERT = "a"  # 🔔 / 🔕: turn a follow's alert on or off
    REMOVE = "x"  # ✖: remove a follow or a mute


@dataclass(frozen=True)
class KeywordChoice:
    """A button under the list of a chat's keywords: acts on that chat's rule `rule_id`."""

    step: KeywordStep
    rule_id: int


_UNSUBSCRIBE = {choice.value for choice in Unsubscribe}
_SETTINGS = {choice.value for choice in SettingsChoice}
_DIGEST_CONTROLS = {choice.value for choice in DigestControl}

SettingsButton = ToggleSection | ChooserPage | ChooserDone | Unsubscribe | SettingsChoice
SETTINGS_BUTTONS = (ToggleSection, ChooserPage, ChooserDone, Unsubscribe, SettingsChoice)
"""The buttons SETTINGS_PATTERN routes: those of the screens that change a chat's settings
(paging the section chooser included; in a group only its administrators may press them)."""

ButtonData = (
    PageTurn
    | SearchTurn
    | ToggleSection
    | ChooserPage
    | ChooserDone
    | Unsubscribe
    | SettingsChoice
    | DigestControl
    | PushChoice
    | ActionChoice
    | LanguageChoice
    | KeywordChoice
)


class BadButtonData(ValueError):
    """Data Telegram would refuse (over 64 bytes) or that would not read back as written:
    a bug, caught before the message is sent."""


def encode(data: ButtonData) -> str:
    """The string a button carries."""
    match data:
        case PageTurn(section_id, ts, article_id, direction):
            text = f"L:{section_id}:{ts}:{article_id}:{direction.value}"
        case SearchTurn(search_id, position, direction):
            text = f"Q:{search_id}:{position}:{direction.value}"
        case ToggleSection(section_id, None):
            text = f"S:t:{section_id}"
        case ToggleSection(section_id, page):
            text = f"S:t:{section_id}:{page}"
        case ChooserPage(page):
            text = f"S:p:{page}"
        case ChooserDone():
            text = "S:done"
        case Unsubscribe():
            text = f"U:{data.value}"
        case SettingsChoice():
            text = f"C:{data.value}"
        case DigestControl():
            text = f"D:{data.value}"
        case PushChoice(push_id, send):
            text = f"B:{'send' if send else 'cancel'}:{push_id}"
        case ActionChoice(step, push_id, digest):
            text = f"K:{step.value}:{push_id}" + (f":{digest}" if digest is not None else "")
        case LanguageChoice(language):
            text = f"G:{language}"
        case KeywordChoice(step, rule_id):
            text = f"W:{step.value}:{rule_id}"
        case _:
            assert_never(data)
    if len(text.encode()) > MAX_BYTES:
        raise BadButtonData(f"{len(text.encode())} bytes of callback data: {text[:70]!r}")
    if decode(text) != data:
        raise BadButtonData(f"callback data {text!r} would not read back as {data!r}")
    return text


def decode(text: str) -> ButtonData | None:
    """What a pressed button means; None for anything stale, malformed or tampered."""
    prefix, _, rest = text.partition(":")
    if prefix == "L" and (page := _PAGE.match(text)):
        section_id, ts, article_id = int(page[1]), int(page[2]), int(page[3])
        if _ids_fit(section_id, article_id) and MIN_TS <= ts <= MAX_TS:
            return PageTurn(section_id, ts, article_id, Direction(page[4]))
    if prefix == "Q" and (searched := _SEARCH.match(text)) and _ids_fit(int(searched[1])):
        return SearchTurn(int(searched[1]), int(searched[2]), Direction(searched[3]))
    if prefix == "S":
        if rest == "done":
            return ChooserDone()
        if (toggle := _TOGGLE.match(text)) and _ids_fit(int(toggle[1])):
            return ToggleSection(int(toggle[1]), int(toggle[2]) if toggle[2] else None)
        if turn := _CHOOSER_PAGE.match(text):
            return ChooserPage(int(turn[1]))
    if prefix == "U" and rest in _UNSUBSCRIBE:
        return Unsubscribe(rest)
    if prefix == "C" and rest in _SETTINGS:
        return SettingsChoice(rest)
    if prefix == "D" and rest in _DIGEST_CONTROLS:
        return DigestControl(rest)
    if prefix == "B" and (push := _PUSH.match(text)) and _ids_fit(int(push[2])):
        return PushChoice(int(push[2]), send=push[1] == "send")
    if prefix == "K":
        if (action := _ACTION.match(text)) and _ids_fit(int(action[2])):
            return ActionChoice(ActionStep(action[1]), int(action[2]))
        if (confirm := _ACTION_CONFIRM.match(text)) and _ids_fit(int(confirm[1])):
            return ActionChoice(ActionStep.CORRECT_YES, int(confirm[1]), confirm[2])
    if prefix == "G" and (chosen := _LANGUAGE.match(text)):
        return LanguageChoice(chosen[1])
    if prefix == "W" and (keyword := _KEYWORD.match(text)) and _ids_fit(int(keyword[2])):
        return KeywordChoice(KeywordStep(keyword[1]), int(keyword[2]))
    return None


def _ids_fit(*ids: int) -> bool:
    return all(0 <= value <= MAX_ID for value in ids)
