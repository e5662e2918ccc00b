"""The update processor: concurrent across chats, in order within a chat, one slot per chat."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram import Chat, Message, Update, User

from bot.updates import ChatOrderedUpdateProcessor, chat_key, update_type

_NEXT_ID = iter(range(1, 10_000))


def message_update(chat_id: int, text: str = "/help") -> Update:
    update_id = next(_NEXT_ID)
    chat = Chat(chat_id, Chat.PRIVATE)
    user = User(chat_id, "Reader", is_bot=False)
    message = Message(update_id, None, chat, from_user=user, text=text)  # type: ignore[arg-type]
    return Update(update_id, message=message)


class Recorder:
    """Coroutines that log when they start and end, and wait until released."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.gates: dict[str, asyncio.Event] = {}

    def job(self, name: str, *, hold: bool = False) -> Any:
        gate = self.gates.setdefault(name, asyncio.Event())
        if not hold:
            gate.set()

        async def run() -> None:
            self.events.append(("start", name))
            await gate.wait()
            self.events.append(("end", name))

        return run()

    def started(self, name: str) -> bool:
        return ("start", name) in self.events

    def ended(self, name: str) -> bool:
        return ("end", name) in self.events


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_chats_run_concurrently_and_each_chat_in_order() -> None:
    processor = ChatOrderedUpdateProcessor(8)
    rec = Recorder()
    tasks = [
        asyncio.create_task(processor.process_update(message_update(1), rec.job("a1", hold=True))),
        asyncio.create_task(processor.process_update(message_update(1), rec.job("a2"))),
        asyncio.create_task(processor.process_update(message_update(2), rec.job("b1"))),
    ]
    await settle()
    assert rec.ended("b1")  # another chat is not held up by chat 1
    assert rec.started("a1") and not rec.started("a2")  # chat 1's second waits for its first
    rec.gates["a1"].set()
    await asyncio.gather(*tasks)
    order = [name for event, name in rec.events if event == "start" and name.startswith("a")]
    assert order == ["a1", "a2"]
    assert processor.busy_chats == 0


async def test_a_flooding_chat_holds_one_slot() -> None:
    processor = ChatOrderedUpdateProcessor(2)
    rec = Recorder()
    flood = [
        asyncio.create_task(
            processor.process_update(message_update(1), rec.job(f"a{i}", hold=(i == 0)))
        )
        for i in range(30)
    ]
    await settle()
    other = asyncio.create_task(processor.process_update(message_update(2), rec.job("b")))
    await settle()
    assert rec.ended("b")  # answered while chat 1 still has 29 updates waiting
    assert processor.current_concurrent_updates == 1  # chat 1's runner only
    rec.gates["a0"].set()
    await asyncio.gather(*flood, other)
    starts = [name for event, name in rec.events if event == "start" and name.startswith("a")]
    assert starts == [f"a{i}" for i in range(30)]


async def test_a_failing_update_does_not_drop_the_ones_queued_behind_it() -> None:
    processor = ChatOrderedUpdateProcessor(4)
    rec = Recorder()
    gate = asyncio.Event()

    async def boom() -> None:
        await gate.wait()
        raise RuntimeError("handler bug")

    first = asyncio.create_task(processor.process_update(message_update(7), boom()))
    await settle()
    second = asyncio.create_task(processor.process_update(message_update(7), rec.job("next")))
    await settle()
    gate.set()
    await asyncio.gather(first, second)
    assert rec.ended("next")


@pytest.mark.looptime
async def test_latency_is_observed_per_update_type_from_arrival_to_handled() -> None:
    seen: list[tuple[str, float]] = []
    processor = ChatOrderedUpdateProcessor(
        4,
        observe=lambda kind, s: seen.append((kind, s)),
        clock=asyncio.get_running_loop().time,  # virtual time: it moves only when we sleep
    )

    async def handler(seconds: float) -> None:
        await asyncio.sleep(seconds)

    # The second update arrives with the first and waits for it: its latency counts the wait.
    await asyncio.gather(
        processor.process_update(message_update(3), handler(2.0)),
        processor.process_update(message_update(3), handler(0.5)),
    )
    assert seen == [("message", 2.0), ("message", 2.5)]


def test_keys_and_types() -> None:
    update = message_update(-100123, "/latest")
    assert chat_key(update) == -100123
    assert update_type(update) == "message"
    assert chat_key(object()) is None
    assert update_type(object()) == "other"
