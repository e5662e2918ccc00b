"""The sender's answers to forum topics and lost rights: a refused topic's parts go to the
General topic in the same send, each refused topic tried once; lost rights stop the chat."""

from __future__ import annotations

from typing import Any

import pytest
from telegram.error import BadRequest

from bot.transport.sender import TelegramSender
from digests.delivery.ports import Outcome, Photo, SendPriority, Text
from digests.readers.topics import TopicProblem, TopicTrouble


class ForumBot:
    """A bot whose sends into the given topics are refused with the given 400s."""

    def __init__(self, refusals: dict[int | None, str]) -> None:
        self.refusals = refusals
        self.sent: list[tuple[str, int | None]] = []  # (method, thread) of each call

    def _answer(self, method: str, thread: int | None) -> Any:
        self.sent.append((method, thread))
        if thread in self.refusals:
            raise BadRequest(self.refusals[thread])

        class Sent:
            message_id = len(self.sent)

        return Sent()

    async def send_message(
        self, chat_id: int, text: str, *, message_thread_id: int | None = None, **_: Any
    ) -> Any:
        return self._answer("text", message_thread_id)

    async def send_photo(
        self, chat_id: int, photo: str, *, message_thread_id: int | None = None, **_: Any
    ) -> Any:
        return self._answer("photo", message_thread_id)


async def test_refused_topics_send_to_general_once_each() -> None:
    bot = ForumBot({5: "Message thread not found", 6: "Topic_closed"})
    sender = TelegramSender(bot, backoff=0)  # type: ignore[arg-type]
    parts = [
        Text("sports 1", thread=5),
        Text("sports 2", thread=5),
        Photo("https://x.example/p.jpg", "caption", "fallback", thread=6),
        Text("world", thread=7),
    ]
    result = await sender.send(-100, parts, priority=SendPriority.BULK)
    assert result.outcome is Outcome.SENT
    assert bot.sent == [
        ("text", 5),  # refused: deleted
        ("text", None),
        ("text", None),  # the same topic is not tried again
        ("photo", 6),  # refused: closed
        ("photo", None),
        ("text", 7),
    ]
    assert len(result.message_ids) == 4  # one per part, as the delivery row records them
    assert result.topic_problems == (
        TopicProblem(5, TopicTrouble.DELETED),
        TopicProblem(6, TopicTrouble.CLOSED),
    )


@pytest.mark.parametrize(
    "refusal",
    [
        "Need administrator rights in the channel chat",
        "CHAT_WRITE_FORBIDDEN",
        "Not enough rights to send text messages to the chat",
    ],
)
async def test_lost_rights_block_the_chat_and_keep_what_went_out(refusal: str) -> None:
    bot = ForumBot({9: refusal})
    sender = TelegramSender(bot, backoff=0)  # type: ignore[arg-type]
    result = await sender.send(
        -100, [Text("one"), Text("two", thread=9), Text("three")], priority=SendPriority.BULK
    )
    assert result.outcome is Outcome.BLOCKED
    assert result.message_ids == (1,)
    assert bot.sent == [("text", None), ("text", 9)]  # never retried, the rest not tried


async def test_other_refusals_in_a_topic_are_not_topic_problems() -> None:
    bot = ForumBot({4: "Can't parse entities: unclosed tag"})
    sender = TelegramSender(bot, backoff=0)  # type: ignore[arg-type]
    result = await sender.send(-100, [Text("<b>", thread=4)], priority=SendPriority.BULK)
    assert result.outcome is Outcome.FAILED
    assert result.topic_problems == ()
    assert bot.sent == [("text", 4)]
