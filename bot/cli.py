"""The `newsbot` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from digests.db import make_engine, make_session_factory, upgrade
from digests.feeds.ingest import IngestReport, ingest_sources
from digests.feeds.state import Backoff
from digests.settings import Settings, SettingsError, load_settings

log = logging.getLogger("newsbot")


def secrets_of(settings: Settings) -> list[str]:
    """Every secret the settings hold, as it could appear in a message or a URL: the bot
    token (and its secret half), passwords in DATABASE_URL and REDIS_URL, the webhook secret."""
    found: list[str] = []
    if settings.telegram_bot_token is not None:
        token = settings.telegram_bot_token.get_secret_value()
        found += [token, token.partition(":")[2]]
    for url in (settings.database_url, settings.redis_url):
        raw = url.get_secret_value() if isinstance(url, SecretStr) else url
        password = make_url(raw).password if raw and "://" in raw else None
        if password:
            found += [str(password), quote(str(password), safe="")]
    if settings.webhook_secret is not None:
        found.append(settings.webhook_secret.get_secret_value())
    # longest first, so that a secret containing another is replaced whole
    return sorted({secret for secret in found if len(secret) >= 4}, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    return text


class RedactingFormatter(logging.Formatter):
    """Formats a record, its traceback and stack included, with every secret replaced."""

    def __init__(self, fmt: str, secrets: Sequence[str]) -> None:
        super().__init__(fmt)
        self.secrets = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def setup_logging(settings: Settings, *, quiet: bool = False) -> None:
    """Log to stderr with every secret redacted; HTTP clients' request lines (which carry the
    token in the URL) stay silent."""
    level = logging.WARNING if quiet else getattr(logging, settings.log_level)
    handler = logging.StreamHandler()
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets_of(settings))
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiohttp", "apscheduler", "aiosqlite", "alembic"):
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
            max_sections=settings.max_sections,
            feeds=settings.feed_urls,
            on_report=show,
            # an operator's run is a request to try now; failures still count and back off
            backoff=Backoff(base=timedelta(minutes=settings.feed_poll_minutes)),
            respect_backoff=False,
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
    """Entry point of the `newsbot` console command: whatever goes wrong ends in one line
    on stderr with no secret in it (the traceback, redacted too, only at DEBUG)."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"newsbot: {exc}", file=sys.stderr)
        return 2
    secrets = secrets_of(settings)
    try:
        return _main(args, settings, secrets)
    except Exception as exc:
        log.debug("newsbot stopped on an unexpected error", exc_info=exc)
        reason = redact(f"{type(exc).__name__}: {exc}", secrets)
        print(f"newsbot: unexpected error: {reason}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace, settings: Settings, secrets: Sequence[str]) -> int:
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
        logging.getLogger("digests.feeds.ingest").setLevel(logging.ERROR)
    try:
        if args.command == "db":
            return asyncio.run(_db_upgrade(settings))
        if args.command == "ingest":
            return asyncio.run(_ingest(settings, args.sources))
        if interactive:
            from bot.local.shell import run_shell

            if args.command == "run":
                print("No TELEGRAM_BOT_TOKEN set: starting the terminal chat.", file=sys.stderr)
            return asyncio.run(run_shell(settings, demo=args.demo))
        from bot.runtime import StartError, serve

        try:
            asyncio.run(serve(settings))
        except StartError as exc:
            print(f"newsbot: {redact(str(exc), secrets)}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 130
    except (OSError, DBAPIError) as exc:
        reason = redact(str(exc.orig if isinstance(exc, DBAPIError) else exc), secrets)
        print(f"newsbot: database or network error: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
