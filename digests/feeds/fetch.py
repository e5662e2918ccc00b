"""Feed bytes from where a source points: an http(s) URL, a file:// URL or a local path."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

from digests.feeds.parse import FeedError

USER_AGENT = "newsbot/0.1 (+feed reader)"


@dataclass(frozen=True)
class Fetched:
    """A fetch's outcome: the body, or None when the server answered 304 Not Modified to the
    validators sent; and the validators to send next time (None for a file)."""

    body: bytes | None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None  # the HTTP Content-Type, whose charset the parser needs

    @property
    def not_modified(self) -> bool:
        return self.body is None


# ASYNC109 would have callers wrap this in asyncio.timeout; the agreed interface takes the
# number instead, and the whole download is bounded by asyncio.timeout inside.
async def fetch_source(
    source: str,
    *,
    client: httpx.AsyncClient,
    timeout: float = 20.0,  # noqa: ASYNC109
    max_bytes: int = 10_000_000,
) -> bytes:
    """Bytes of an http(s) URL, a file:// URL or a local path; FeedError says what went wrong."""
    fetched = await fetch_conditional(source, client=client, timeout=timeout, max_bytes=max_bytes)
    if fetched.body is None:  # no validators were sent: a 304 is the server's mistake
        raise FeedError("HTTP 304 Not Modified to an unconditional request")
    return fetched.body


async def fetch_conditional(
    source: str,
    *,
    client: httpx.AsyncClient,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = 20.0,  # noqa: ASYNC109
    max_bytes: int = 10_000_000,
) -> Fetched:
    """Like fetch_source, but an http(s) fetch sends the validators given (If-None-Match,
    If-Modified-Since) and a 304 answer comes back as Fetched(body=None)."""
    if not source.strip():
        raise FeedError("empty source: give an http(s) URL or a file path")
    try:
        parts = urlsplit(source)
    except ValueError as exc:  # e.g. "http://[::1/feed"
        raise FeedError(f"invalid URL: {exc}: {source}") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise FeedError(f"invalid URL (no host): {source}")
        conditions = {}
        if etag:
            conditions["If-None-Match"] = etag
        if last_modified:
            conditions["If-Modified-Since"] = last_modified
        try:
            # httpx's timeout is per network operation; asyncio's bounds the whole download
            async with asyncio.timeout(timeout):
                return await _download(
                    source,
                    client=client,
                    limits=httpx.Timeout(timeout),
                    max_bytes=max_bytes,
                    conditions=conditions,
                )
        except (TimeoutError, httpx.TimeoutException):
            raise FeedError(f"timed out after {timeout:g} s") from None
        except httpx.InvalidURL as exc:  # not an HTTPError
            raise FeedError(f"invalid URL: {_describe(exc)}") from None
        except httpx.HTTPError as exc:
            raise _http_failure(exc) from None
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise FeedError(f"file URL must be on this machine: {source}")
        path = url2pathname(parts.path)
    elif len(scheme) > 1:  # a one-letter "scheme" is a Windows drive
        raise FeedError(f"unsupported source {source!r}: use an http(s) URL or a file path")
    else:
        path = source
    return Fetched(await asyncio.to_thread(_read_file, path, max_bytes))


def _read_file(name: str, max_bytes: int) -> bytes:
    path = Path(name).expanduser()
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except FileNotFoundError:
        raise FeedError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise FeedError(f"is a directory, not a feed file: {path}") from None
    except PermissionError:
        raise FeedError(f"permission denied: {path}") from None
    except OSError as exc:
        raise FeedError(f"could not read {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise FeedError(f"file larger than {max_bytes} bytes: {path}")
    return data


async def _download(
    url: str,
    *,
    client: httpx.AsyncClient,
    limits: httpx.Timeout,
    max_bytes: int,
    conditions: dict[str, str],
) -> Fetched:
    async with client.stream(
        "GET",
        url,
        headers={"User-Agent": USER_AGENT, **conditions},
        timeout=limits,
        follow_redirects=True,
    ) as response:
        etag = response.headers.get("etag") or conditions.get("If-None-Match")
        modified = response.headers.get("last-modified") or conditions.get("If-Modified-Since")
        if response.status_code == HTTPStatus.NOT_MODIFIED and conditions:
            return Fetched(None, etag=etag, last_modified=modified)
        if not response.is_success:
            raise FeedError(_status_line(response))
        too_big = FeedError(f"response larger than {max_bytes} bytes")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise too_big
        body = bytearray()
        # aiter_bytes decompresses, so the limit also holds against compression bombs
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise too_big
        return Fetched(
            bytes(body),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            content_type=response.headers.get("content-type"),
        )


def _http_failure(exc: httpx.HTTPError) -> FeedError:
    if isinstance(exc, httpx.TooManyRedirects):
        return FeedError("too many redirects")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return FeedError(f"invalid URL: {_describe(exc)}")
    if isinstance(exc, httpx.ConnectError):
        return FeedError(f"could not connect: {_connect_reason(exc)}")
    return FeedError(f"download failed: {_describe(exc)}")


def _status_line(response: httpx.Response) -> str:
    phrase = response.reason_phrase
    if not phrase:
        try:
            phrase = HTTPStatus(response.status_code).phrase
        except ValueError:
            phrase = ""
    return f"HTTP {response.status_code} {phrase}".rstrip()


def _connect_reason(exc: httpx.ConnectError) -> str:
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return "host not found"
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
    return _describe(exc)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            for inner in current.exceptions:
                yield from _causes(inner)
        current = current.__cause__ or current.__context__


def _describe(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
