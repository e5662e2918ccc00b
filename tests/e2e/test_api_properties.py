"""Property-based test of the HTTP API: schemathesis reads the OpenAPI document the bot serves
and throws generated requests (valid and invalid bodies, headers, paths, query strings) at
every operation over real HTTP. No answer may be a 5xx, and every answer must match the
document (status code, content type, body schema)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
from sqlalchemy import func, select

from digests.db import make_engine, make_session_factory
from digests.models import BreakingPush
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import e2e_settings, logged_errors, running_service
from tests.e2e.test_api import AUTH, TOKEN, story
from tests.e2e.test_breaking import add_readers

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "40"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


UNPUBLISH = "/articles/unpublish"


async def schemathesis(base: str, where: Path, operations: list[str]) -> str:
    """Run schemathesis on the served document's `operations` (in `where`, a directory);
    its output (it must pass)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base}/api/v1/openapi.json",
        *operations,
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "20261124",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report-dir",
        str(where / "schemathesis"),
        cwd=where,  # its cache of crashes goes there, not into the repository
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
    )
    output, _ = await asyncio.wait_for(process.communicate(), 600)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    return text


async def test_generated_requests_get_no_server_error(
    fake_api: FakeBotApiServer, tmp_path: Path, db_url: str
) -> None:
    settings = e2e_settings(
        fake_api, db_url, http_host="127.0.0.1", http_port=0, api_tokens=TOKEN, max_sections=12
    )
    readers = [8100 + n for n in range(4)]
    for user in readers:
        fake_api.emulator.add_user(user, f"Reader {user}", started=True)
    with logged_errors() as errors:
        async with running_service(settings) as (_app, base):
            async with httpx.AsyncClient(base_url=f"{base}/api/v1") as http:
                for n in range(1, 4):  # stories for article ids 1-3, which generated ids hit
                    posted = await http.post("/articles", json=story(n), headers=AUTH)
                    assert posted.status_code == 201
            await add_readers(db_url, readers, "World")
            # unpublishing last: generated ids hit stories 1-3, which the pushes need first
            runs = [tmp_path / "others", tmp_path / "unpublish"]
            for where in runs:
                where.mkdir()
            others = await schemathesis(base, runs[0], ["--exclude-path", UNPUBLISH])
            assert "No issues found" in others or " passed" in others, others[-3000:]
            unpublish = await schemathesis(base, runs[1], ["--include-path", UNPUBLISH])
            assert "1 selected" in unpublish or "1 total" in unpublish, unpublish[-3000:]
            assert "No issues found" in unpublish or " passed" in unpublish, unpublish[-3000:]
    assert not errors, [record.getMessage() for record in errors]
    engine = make_engine(db_url)
    try:
        async with make_session_factory(engine)() as session:
            per_story = list(
                await session.execute(
                    select(BreakingPush.article_id, func.count()).group_by(BreakingPush.article_id)
                )
            )
        # the generator pushed stories too (and made some): each story at most once
        assert per_story and all(pushes == 1 for _story, pushes in per_story), per_story
    finally:
        await engine.dispose()
