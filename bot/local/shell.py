"""`newsbot shell`: talk to the real bot in a terminal, no Telegram account or token.

The same Application, handlers and database run as with Telegram; only the transport differs:
python-telegram-bot talks in-process to `LocalRequest`, and this module plays the reader.
Each typed line is a message; a number presses that inline button of the bot's last keyboard.
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from telegram import Update

from bot.app import build_application, utcnow
from bot.local.request import LocalRequest, ShownMessage
from digests.db import make_engine, make_session_factory, upgrade
from digests.feeds.ingest import store_entries
from digests.feeds.parse import parse_feed
from digests.settings import Settings

READER_ID = 1001


def sample_feed_path() -> Path:
    """The bundled sample feed (installed with the package)."""
    from importlib.resources import as_file, files

    resource = files("digests") / "data" / "sample_feed.xml"
    with as_file(resource) as path:
        return Path(path)


@dataclass
class Choice:
    message_id: int
    data: str | None
    url: str | None


@dataclass
class Transcript:
    """Prints what the bot shows the reader: new messages, edits, and numbered buttons."""

    out: TextIO
    seen: dict[int, int] = field(default_factory=dict)  # message id -> edit count shown
    choices: dict[int, Choice] = field(default_factory=dict)

    def show(self, messages: list[ShownMessage], answers: list[str]) -> None:
        fresh_choices: dict[int, Choice] = {}
        for message in messages:
            shown = self.seen.get(message.message_id)
            if shown is not None and shown == message.edit_count:
                continue
            self.seen[message.message_id] = message.edit_count
            label = "bot (edited)" if shown is not None else "bot"
            self._print_message(label, message, fresh_choices)
        for answer in answers:
            self.out.write(f"  ({answer})\n")
        if fresh_choices:
            self.choices = fresh_choices
        self.out.flush()

    def _print_message(self, label: str, message: ShownMessage, choices: dict[int, Choice]) -> None:
        lines = message.text.splitlines() or [""]
        if message.photo is not None:
            lines = [f"[photo {message.photo}]", *lines]
        self.out.write(f"{label}: {lines[0]}\n")
        for line in lines[1:]:
            self.out.write(f"     {line}\n")
        for row in message.keyboard:
            cells = []
            for button in row:
                number = len(choices) + 1
                choices[number] = Choice(
                    message.message_id, button.get("callback_data"), button.get("url")
                )
                suffix = f" <{button['url']}>" if button.get("url") else ""
                cells.append(f"[{number}] {button['text']}{suffix}")
            self.out.write("     " + "   ".join(cells) + "\n")


class TerminalChat:
    """Drives one Application in-process on behalf of a single local reader."""

    def __init__(self, settings: Settings, *, out: TextIO = sys.stdout) -> None:
        self.chat = LocalRequest(READER_ID, "Reader", "reader")
        admins = (*settings.admin_ids, READER_ID)  # the local reader is the editor too
        self.settings = settings.model_copy(update={"admin_ids": admins})
        self.application = build_application(
            self.settings,
            request=self.chat,
            updates_request=self.chat,
            with_jobs=False,
        )
        self.transcript = Transcript(out)
        self.out = out

    async def __aenter__(self) -> TerminalChat:
        await self.application.initialize()
        if self.application.post_init is not None:
            await self.application.post_init(self.application)
        await self.application.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.application.stop()
        await self.application.shutdown()
        if self.application.post_shutdown is not None:
            await self.application.post_shutdown(self.application)

    async def say(self, line: str) -> None:
        """One line from the reader: a number presses a button, anything else is a message."""
        line = line.strip()
        if not line:
            return
        answers: list[str] = []
        if line.isdigit() and int(line) in self.transcript.choices:
            choice = self.transcript.choices[int(line)]
            if choice.data is None:
                self.out.write(f"  (opens {choice.url} in a browser)\n")
                return
            try:
                query_id, update = self.chat.press_button(choice.message_id, choice.data)
            except ValueError:  # an edit has taken that button away since it was numbered
                self.out.write("  (that button is no longer there)\n")
                self.out.flush()
                return
            await self._process(update)
            if self.chat.callback_answers.get(query_id):
                answers.append(self.chat.callback_answers[query_id])
        else:
            await self._process(self.chat.user_sends(line))
        self.transcript.show(self.chat.messages, answers)

    async def _process(self, raw: dict[str, Any]) -> None:
        await self.application.process_update(Update.de_json(raw, self.application.bot))


async def load_demo(settings: Settings) -> Settings:
    """A fresh SQLite database in a temporary folder, loaded with the sample feed.

    The sample's dates are moved so that its newest story is half an hour old: the demo then
    has stories for /latest and for today's digest whatever the date.
    """
    folder = Path(tempfile.mkdtemp(prefix="newsbot-demo-"))
    demo = settings.model_copy(update={"database_url": f"sqlite:///{folder / 'demo.db'}"})
    path = sample_feed_path()
    now = utcnow()
    parsed = parse_feed(path.read_bytes(), source=str(path))
    newest = max((e.published for e in parsed.entries if e.published), default=now)
    shift = now - timedelta(minutes=30) - newest
    entries = [
        replace(e, published=e.published + shift if e.published else None) for e in parsed.entries
    ]
    engine = make_engine(demo.database_url)
    try:
        await upgrade(engine)
        async with make_session_factory(engine).begin() as session:
            report = await store_entries(
                session,
                entries,
                now=now,
                category_map=demo.categories,
                default_section=demo.default_section,
                source=path.name,
            )
    finally:
        await engine.dispose()
    print(f"demo: {report.line()}", file=sys.stderr)
    return demo


async def run_shell(
    settings: Settings,
    *,
    demo: bool,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    """Read lines until end of input; print the bot's replies as text. Without a standard
    input at all (closed, as some supervisors leave it) there is simply nothing to read."""
    stdin = stdin or sys.stdin or io.StringIO()
    out = out or sys.stdout or io.StringIO()
    if demo:
        settings = await load_demo(settings)
    interactive = stdin.isatty()
    async with TerminalChat(settings, out=out) as chat:
        services = chat.application.bot_data
        out.write(
            f"newsbot terminal chat ({services.settings.publisher_name}). "
            "Type /start, /help or /latest; a number presses a button; Ctrl-D quits.\n"
        )
        out.flush()
        while True:
            if interactive:
                out.write("> ")
                out.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            if not interactive and line.strip():
                out.write(f"> {line.strip()}\n")
            await chat.say(line)
    return 0
