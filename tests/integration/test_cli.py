"""The `newsbot` command line as an operator runs it: real processes, real output."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parents[2] / "digests" / "data" / "sample_feed.xml"
BROKEN = Path(__file__).parents[1] / "data" / "feeds" / "not_a_feed.html"


def newsbot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), **env},
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_ingest_twice_stores_each_story_once(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url}
    first = newsbot("ingest", str(SAMPLE), env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "30 new, 0 updated, 0 unchanged" in first.stdout
    second = newsbot("ingest", str(SAMPLE), env=env, cwd=tmp_path)
    assert "0 new, 0 updated, 30 unchanged" in second.stdout


def test_broken_source_is_one_clear_line_and_others_import(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    result = newsbot("ingest", str(BROKEN), "/no/such/feed.xml", str(SAMPLE), env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any("not_a_feed.html: error: not a RSS/Atom feed" in line for line in lines)
    assert any("feed.xml: error: file not found" in line for line in lines)
    assert any("sample_feed.xml: 30 new" in line for line in lines)
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_setting_names_the_variable(tmp_path: Path) -> None:
    result = newsbot("db", "upgrade", env={"DEFAULT_TIMEZONE": "Mars/Olympus"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("newsbot: invalid setting DEFAULT_TIMEZONE")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing"}
    result = newsbot("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "newsbot: database or network error" in result.stderr
    assert "Traceback" not in result.stderr


def test_shell_demo_with_piped_input(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "shell", "--demo"],
        input="/start\n/latest\n2\n",
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "> /latest" in result.stdout
    assert "2 / 30" in result.stdout
    assert "Traceback" not in result.stderr


def test_run_without_a_token_and_no_terminal_fails_loudly(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "TELEGRAM_BOT_TOKEN": ""}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        input="",  # a deployment: stdin is no terminal
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), **env},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("newsbot: TELEGRAM_BOT_TOKEN is not set")
    assert result.stdout == ""


def test_webhook_url_without_a_secret_is_refused(tmp_path: Path) -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": "1:x",
        "WEBHOOK_URL": "https://bot.example/tg",
        "WEBHOOK_SECRET": "",
    }
    result = newsbot("run", env=env, cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("newsbot: invalid setting WEBHOOK_SECRET: must be set when WEBHOOK_URL")


def test_a_closed_standard_input_is_no_crash(tmp_path: Path) -> None:
    """Some process supervisors start a service with its standard input closed."""
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    for command, code in (("shell", 0), ("run", 2)):
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", command],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
            preexec_fn=lambda: os.close(0),  # Python then starts with sys.stdin None
        )
        assert result.returncode == code, (command, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr


@pytest.fixture
def failing_feed() -> Iterator[tuple[str, list[str]]]:
    """A loopback feed URL that always answers 503, and the paths it was asked for."""
    asked: list[str] = []

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed", asked
    finally:
        server.shutdown()
        server.server_close()


def test_ingest_tries_a_feed_that_is_backing_off(
    db_url: str, tmp_path: Path, failing_feed: tuple[str, list[str]]
) -> None:
    url, asked = failing_feed
    env = {"DATABASE_URL": db_url, "NO_PROXY": "*", "no_proxy": "*"}
    first = newsbot("ingest", url, env=env, cwd=tmp_path)
    second = newsbot("ingest", url, env=env, cwd=tmp_path)
    assert asked == ["/feed", "/feed"]  # the second run was within the backoff window
    assert f"{url}: error: HTTP 503 Service Unavailable" in second.stdout
    assert (first.returncode, second.returncode) == (1, 1)


def test_shell_shows_photo_stories_and_pages_through_them(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).parents[2]),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'photos.db'}",
    }
    feed = Path(__file__).parents[1] / "data" / "feeds" / "photos_rss.xml"
    ingest = subprocess.run(
        [sys.executable, "-m", "bot.cli", "ingest", str(feed)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert ingest.returncode == 0, ingest.stderr
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "shell"],
        # the feed has no dates: its stories come in the feed's order, photos first. [2] is
        # Next ▶ on page 1, [3] on pages 2 to 4; then ◀ Previous
        input="/start\n/latest\n2\n3\n3\n3\n2\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    pages = result.stdout.split("> ")[3:]
    assert pages[0].startswith("2\nbot (edited): [photo https://cdn.photos.example/bridge.jpg]")
    assert pages[1].startswith("3\nbot (edited): [photo https://photos.example/news/img/thumb")
    assert pages[2].startswith("3\nbot (edited): [photo https://photos.example/media/harbour.jpg]")
    assert "📷 The harbour at dawn" in pages[2]  # the image's alt, as its caption
    # a photo cannot become text: the text page comes as a new message (the photo deleted)
    assert pages[3].startswith("3\nbot: Image without an image URL")
    assert pages[4].startswith("2\nbot (edited): [photo https://photos.example/media/harbour")
    assert "Traceback" not in result.stderr
