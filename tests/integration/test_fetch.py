"""fetch_source against a real HTTP server on 127.0.0.1 and the real file system."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web

import digests
from digests.feeds.fetch import USER_AGENT, fetch_source
from digests.feeds.parse import FeedError, parse_feed

SAMPLE = Path(digests.__file__).parent / "data" / "sample_feed.xml"
FAST = 0.5  # seconds; every slow handler below takes longer than this


@dataclass
class FeedServer:
    url: str
    release: asyncio.Event
    user_agents: list[str] = field(default_factory=list)


def build_app(server: FeedServer) -> web.Application:
    sample = SAMPLE.read_bytes()

    async def feed(request: web.Request) -> web.Response:
        server.user_agents.append(request.headers.get("User-Agent", ""))
        return web.Response(body=sample, content_type="application/rss+xml")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such feed")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="try later")

    async def slow(request: web.Request) -> web.Response:
        await server.release.wait()
        return web.Response(body=sample)

    async def trickle(request: web.Request) -> web.StreamResponse:
        # every chunk comes quickly, so only a deadline on the whole download stops this
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(60):  # 3 s: ends, so a missing deadline fails the test, not hangs it
            if server.release.is_set():
                break
            await response.write(b"<!-- still coming -->\n")
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/feed.xml")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 2_000)

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(4):
            await response.write(b"x" * 500)
        await response.write_eof()
        return response

    async def bomb(request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(b"\0" * 200_000), headers={"Content-Encoding": "gzip"}
        )

    app = web.Application()
    app.router.add_get("/feed.xml", feed)
    app.router.add_get("/missing.xml", missing)
    app.router.add_get("/broken.xml", broken)
    app.router.add_get("/slow.xml", slow)
    app.router.add_get("/trickle.xml", trickle)
    app.router.add_get("/moved.xml", moved)
    app.router.add_get("/loop", loop)
    app.router.add_get("/big.xml", big)
    app.router.add_get("/big-chunked.xml", big_chunked)
    app.router.add_get("/bomb.xml", bomb)
    return app


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    state = FeedServer(url="", release=asyncio.Event())
    runner = web.AppRunner(build_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}"
    yield state
    state.release.set()  # lets the slow handlers finish so cleanup does not wait on them
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: a proxy from the environment must not see loopback requests
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


# --- HTTP -----------------------------------------------------------------------------------


async def test_fetches_a_feed_with_our_user_agent(
    server: FeedServer, client: httpx.AsyncClient
) -> None:
    data = await fetch_source(f"{server.url}/feed.xml", client=client, timeout=FAST)

    assert data == SAMPLE.read_bytes()
    assert server.user_agents == [USER_AGENT]
    assert len(parse_feed(data, source=f"{server.url}/feed.xml").entries) == 30


async def test_follows_redirects(server: FeedServer, client: httpx.AsyncClient) -> None:
    data = await fetch_source(f"{server.url}/moved.xml", client=client, timeout=FAST)

    assert data == SAMPLE.read_bytes()


async def test_redirect_loop_is_reported(server: FeedServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(FeedError, match="^too many redirects$"):
        await fetch_source(f"{server.url}/loop", client=client, timeout=5)


@pytest.mark.parametrize(
    ("path", "message"),
    [("/missing.xml", "HTTP 404 Not Found"), ("/broken.xml", "HTTP 503 Service Unavailable")],
)
async def test_http_errors_are_reported_by_status(
    server: FeedServer, client: httpx.AsyncClient, path: str, message: str
) -> None:
    with pytest.raises(FeedError) as caught:
        await fetch_source(f"{server.url}{path}", client=client, timeout=FAST)

    assert str(caught.value) == message


@pytest.mark.parametrize("path", ["/slow.xml", "/trickle.xml"])
async def test_slow_servers_time_out(
    server: FeedServer, client: httpx.AsyncClient, path: str
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(FeedError) as caught:
        await fetch_source(f"{server.url}{path}", client=client, timeout=FAST)

    assert str(caught.value) == "timed out after 0.5 s"
    assert loop.time() - started < FAST + 1


@pytest.mark.parametrize("path", ["/big.xml", "/big-chunked.xml", "/bomb.xml"])
async def test_bodies_over_the_limit_are_refused(
    server: FeedServer, client: httpx.AsyncClient, path: str
) -> None:
    with pytest.raises(FeedError) as caught:
        await fetch_source(f"{server.url}{path}", client=client, timeout=FAST, max_bytes=1_000)

    assert str(caught.value) == "response larger than 1000 bytes"


async def test_a_body_at_the_limit_is_accepted(
    server: FeedServer, client: httpx.AsyncClient
) -> None:
    data = await fetch_source(f"{server.url}/big.xml", client=client, timeout=FAST, max_bytes=2_000)

    assert data == b"x" * 2_000


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # the port was free a moment ago and nothing listens on it now

    with pytest.raises(FeedError) as caught:
        await fetch_source(f"http://127.0.0.1:{port}/feed.xml", client=client, timeout=FAST)

    assert str(caught.value) == "could not connect: connection refused"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("http://", "invalid URL (no host): http://"),
        ("http://[::1/feed.xml", "invalid URL: "),
        ("ftp://meridian.example/feed.xml", "unsupported source 'ftp://meridian.example/"),
        ("file://elsewhere.example/feed.xml", "file URL must be on this machine: "),
        ("  ", "empty source"),
    ],
)
async def test_sources_that_cannot_be_fetched(
    client: httpx.AsyncClient, source: str, message: str
) -> None:
    with pytest.raises(FeedError) as caught:
        await fetch_source(source, client=client, timeout=FAST)

    assert str(caught.value).startswith(message)


# --- local files ----------------------------------------------------------------------------


async def test_reads_a_local_file(tmp_path: Path, client: httpx.AsyncClient) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(SAMPLE.read_bytes())

    assert await fetch_source(str(path), client=client) == SAMPLE.read_bytes()


async def test_reads_a_file_url(tmp_path: Path, client: httpx.AsyncClient) -> None:
    path = tmp_path / "my feed #1.xml"
    path.write_bytes(b"<rss/>")

    assert await fetch_source(path.as_uri(), client=client) == b"<rss/>"


async def test_missing_file(tmp_path: Path, client: httpx.AsyncClient) -> None:
    path = tmp_path / "nope.xml"

    with pytest.raises(FeedError) as caught:
        await fetch_source(str(path), client=client)

    assert str(caught.value) == f"file not found: {path}"


async def test_missing_file_url(tmp_path: Path, client: httpx.AsyncClient) -> None:
    with pytest.raises(FeedError, match="^file not found: .*nope.xml$"):
        await fetch_source((tmp_path / "nope.xml").as_uri(), client=client)


async def test_directory_is_not_a_feed(tmp_path: Path, client: httpx.AsyncClient) -> None:
    with pytest.raises(FeedError) as caught:
        await fetch_source(str(tmp_path), client=client)

    assert str(caught.value) == f"is a directory, not a feed file: {tmp_path}"


async def test_large_file_is_refused(tmp_path: Path, client: httpx.AsyncClient) -> None:
    path = tmp_path / "huge.xml"
    path.write_bytes(b"x" * 1_001)

    with pytest.raises(FeedError, match="^file larger than 1000 bytes: "):
        await fetch_source(str(path), client=client, max_bytes=1_000)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
async def test_unreadable_file(tmp_path: Path, client: httpx.AsyncClient) -> None:
    path = tmp_path / "secret.xml"
    path.write_bytes(b"<rss/>")
    path.chmod(0)

    with pytest.raises(FeedError, match="^permission denied: "):
        await fetch_source(str(path), client=client)
