"""The `newsbot` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError

from digests.db import make_engine, make_session_factory, upgrade
from digests.ingest import IngestReport, ingest_sources
from digests.settings import Settings, SettingsError, load_settings

log = logging.getLogger("newsbot")


class RedactingFilter(logging.Filter):
    """Replaces the bot token wherever it would appear in a log line."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret and self.secret in record.getMessage():
            record.msg = record.getMessage().replace(self.secret, "<token>")
            record.args = None
        return True


def setup_logging(settings: Settings, *, quiet: bool = False) -> None:
    """Log to stderr; httpx request lines (which carry the token in the URL) stay silent."""
    level = logging.WARNING if quiet else getattr(logging, settings.log_level)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if settings.telegram_bot_token is not None:
        handler.addFilter(RedactingFilter(settings.telegram_bot_token.get_secret_value()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def utcnow() -> datetime:
    return datetime.now(UTC)


async def _db_upgrade(settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(f"database is up to date ({engine.url.render_as_string(hide_password=True)})")
    return 0


async def _ingest(settings: Settings, sources: Sequence[str]) -> int:
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        total = len(sources)
        done = 0

        def show(report: IngestReport) -> None:
            nonlocal done
            done += 1
            prefix = f"[{done}/{total}] " if total > 1 else ""
            print(prefix + report.line(), flush=True)

        reports = await ingest_sources(
            sources,
            session_factory=make_session_factory(engine),
            now=utcnow,
            category_map=settings.categories,
            default_section=settings.default_section,
            on_report=show,
        )
    finally:
        await engine.dispose()
    return 0 if all(report.ok for report in reports) else 1


def _is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsbot", description="A Telegram news-digest bot for publishers."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the bot on Telegram (without TELEGRAM_BOT_TOKEN, in a terminal: the local chat)",
    )
    run.add_argument("--demo", action="store_true", help="terminal chat: load the sample feed")
    shell = commands.add_parser("shell", help="talk to the bot in this terminal, no Telegram")
    shell.add_argument(
        "--demo", action="store_true", help="start on a fresh database loaded with the sample feed"
    )
    ingest = commands.add_parser("ingest", help="import articles from RSS/Atom URLs or files")
    ingest.add_argument("sources", nargs="+", metavar="SOURCE")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply pending schema migrations")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `newsbot` console command."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"newsbot: {exc}", file=sys.stderr)
        return 2
    no_token = args.command == "run" and settings.telegram_bot_token is None
    if no_token and not _is_terminal():
        # A deployment that forgot its token must not look healthy.
        print(
            "newsbot: TELEGRAM_BOT_TOKEN is not set: cannot connect to Telegram "
            "(set it in the environment or .env; `newsbot shell` chats in a terminal instead)",
            file=sys.stderr,
        )
        return 2
    interactive = args.command == "shell" or no_token
    setup_logging(settings, quiet=args.command != "run" or interactive)
    if args.command == "ingest":  # each source's outcome is printed as a line already
        logging.getLogger("digests.ingest").setLevel(logging.ERROR)
    try:
        if args.command == "db":
            return asyncio.run(_db_upgrade(settings))
        if args.command == "ingest":
            return asyncio.run(_ingest(settings, args.sources))
        if interactive:
            from bot.shell import run_shell

            if args.command == "run":
                print("No TELEGRAM_BOT_TOKEN set: starting the terminal chat.", file=sys.stderr)
            return asyncio.run(run_shell(settings, demo=args.demo))
        from bot.runtime import StartError, serve

        try:
            asyncio.run(serve(settings))
        except StartError as exc:
            print(f"newsbot: {exc}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 130
    except (OSError, DBAPIError) as exc:
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        print(f"newsbot: database or network error: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
