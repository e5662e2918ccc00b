"""POST /api/v1/articles/unpublish over real HTTP, with readers in Telegram (the fake Bot
API): an unpublished story is gone from what readers find, its push is withdrawn, and a new
POST /articles publishes it again; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from digests.db import make_engine, make_session_factory
from digests.models import Delivery, DeliveryKind, DeliveryStatus, PushAction, StoryCount
from fakebotapi.emulator import too_many_requests
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader
from tests.e2e.test_api import AUTH, api, count, story
from tests.e2e.test_breaking import add_readers, wait_for_push_done
from tests.e2e.test_readers import position
from tests.e2e.test_search_and_inline import inline


async def wait_for_withdrawal(http: httpx.AsyncClient, push_id: int) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            report = (await http.get(f"/pushes/{push_id}", headers=AUTH)).json()
            actions = report["actions"]
            if actions and actions[-1]["kind"] == "withdraw" and actions[-1]["done"]:
                return report
            await asyncio.sleep(0.05)


async def story_counts(db_url: str) -> dict[int, int]:
    engine = make_engine(db_url)
    try:
        async with make_session_factory(engine)() as session:
            rows = await session.execute(select(StoryCount.scope, StoryCount.stories))
            return {scope: int(stories) for scope, stories in rows if stories}
    finally:
        await engine.dispose()


async def test_unpublishing_a_pushed_story_hides_it_and_withdraws_the_push(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    readers = [7800 + n for n in range(3)]
    for user in readers:
        fake_api.emulator.add_user(user, f"Reader {user}", started=True)
    reader = Reader(fake_api, readers[0])
    async with api(fake_api, db_url) as http:
        posted = await http.post(
            "/articles",
            json=story(1, title="Minister resigns over leaked memo", published_at=None),
            headers=AUTH,
        )
        assert posted.status_code == 201, posted.text
        other = story(2, title="Harbour reopens", published_at="2026-11-20T09:00:00Z")
        assert (await http.post("/articles", json=other, headers=AUTH)).status_code == 201
        await add_readers(db_url, readers, "World")
        push = (await http.post("/pushes", json={"guid": "cms-1"}, headers=AUTH)).json()
        await wait_for_push_done(db_url)
        assert all(len(fake_api.emulator.messages(user)) == 1 for user in readers)
        [latest] = await reader.send("/latest")
        assert latest.text.startswith("Minister resigns") and position(latest.text) == (1, 2)

        gone = await http.post("/articles/unpublish", json={"guid": "cms-1"}, headers=AUTH)
        assert gone.status_code == 200, gone.text
        answer = gone.json()
        assert answer["article"]["unpublished_at"] is not None
        assert answer["article"]["sections"] == []
        assert answer["article"]["push_id"] == push["id"]
        assert answer["withdrawal"]["kind"] == "withdraw"
        report = await wait_for_withdrawal(http, push["id"])
        assert report["withdrawn_at"] is not None
        assert (report["actions"][-1]["edited"], report["actions"][-1]["failed"]) == (3, 0)
        for user in readers[1:]:
            assert fake_api.emulator.messages(user) == []  # the push was deleted

        # readers find it nowhere: /latest (all, and its section), /search, inline mode
        [latest] = await reader.send("/latest")
        assert latest.text.startswith("Harbour reopens") and position(latest.text) == (1, 1)
        [world] = await reader.send("/latest world")
        assert world.text.startswith("Harbour reopens") and position(world.text) == (1, 1)
        [searched] = await reader.send("/search minister memo")
        assert "Minister" not in searched.text
        offered = await inline(fake_api, readers[1], "minister")
        assert offered["results"] == []
        assert [r["title"] for r in (await inline(fake_api, readers[1], ""))["results"]] == [
            "Harbour reopens"
        ]
        listed = (await http.get("/articles", headers=AUTH)).json()["articles"]
        assert [a["guid"] for a in listed] == ["cms-2"]
        counts = await story_counts(db_url)
        assert counts[0] == 1 and sum(v for k, v in counts.items() if k) == 1

        # again: nothing more happens, the same answer
        again = await http.post(
            "/articles/unpublish", json={"url": "https://meridian.example/story/1"}, headers=AUTH
        )
        assert again.status_code == 200, again.text
        assert again.json()["article"]["unpublished_at"] == answer["article"]["unpublished_at"]
        assert again.json()["withdrawal"]["id"] == answer["withdrawal"]["id"]
        assert await count(db_url, PushAction) == 1
        refused = await http.post("/pushes", json={"guid": "cms-1"}, headers=AUTH)
        assert refused.status_code == 409
        unknown = await http.post("/articles/unpublish", json={"guid": "nope"}, headers=AUTH)
        assert unknown.status_code == 404
        both = await http.post(
            "/articles/unpublish", json={"guid": "cms-1", "article_id": 1}, headers=AUTH
        )
        assert both.status_code == 422
        unauthorised = await http.post("/articles/unpublish", json={"guid": "cms-1"})
        assert unauthorised.status_code == 401

        # the CMS publishes it again: back where it was, and no new push
        back = await http.post(
            "/articles",
            json=story(1, title="Minister resigns over leaked memo", published_at=None),
            headers=AUTH,
        )
        assert back.status_code == 200, back.text
        assert (back.json()["unpublished_at"], back.json()["sections"]) == (None, ["world"])
        [latest] = await reader.send("/latest world")
        assert latest.text.startswith("Minister resigns") and position(latest.text) == (1, 2)
        counts = await story_counts(db_url)
        assert counts[0] == 2 and sum(v for k, v in counts.items() if k) == 2
    assert all(fake_api.emulator.messages(user) == [] for user in readers[1:])


async def rows_by_status(db_url: str) -> dict[DeliveryStatus, list[Delivery]]:
    engine = make_engine(db_url)
    try:
        async with make_session_factory(engine)() as session:
            rows = await session.scalars(
                select(Delivery).where(Delivery.kind == DeliveryKind.BREAKING)
            )
            found: dict[DeliveryStatus, list[Delivery]] = {}
            for row in rows:
                found.setdefault(row.status, []).append(row)
            return found
    finally:
        await engine.dispose()


async def test_unpublishing_during_a_push_stops_what_is_not_sent(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    readers = [7901, 7902, 7903]
    for user in readers:
        fake_api.emulator.add_user(user, f"Reader {user}", started=True)
    # one reader's chat is under a long flood wait: its message waits in the database
    fake_api.emulator.fail_next("sendMessage", 7903, error=too_many_requests(120))
    async with api(fake_api, db_url) as http:
        await http.post("/articles", json=story(1), headers=AUTH)
        await add_readers(db_url, readers, "World")
        push = (await http.post("/pushes", json={"guid": "cms-1"}, headers=AUTH)).json()
        async with asyncio.timeout(30):
            while True:
                rows = await rows_by_status(db_url)
                if len(rows.get(DeliveryStatus.SENT, [])) == 2 and DeliveryStatus.PENDING in rows:
                    break
                await asyncio.sleep(0.05)
        assert (await http.get(f"/pushes/{push['id']}", headers=AUTH)).json()["status"] == (
            "sending"
        )

        gone = await http.post("/articles/unpublish", json={"guid": "cms-1"}, headers=AUTH)
        assert gone.status_code == 200, gone.text
        report = await wait_for_withdrawal(http, push["id"])
        assert report["status"] == "done"
        assert report["counts"]["pending"] == 0
        assert (report["actions"][-1]["edited"], report["actions"][-1]["failed"]) == (2, 0)
    rows = await rows_by_status(db_url)
    [stopped] = rows[DeliveryStatus.FAILED]
    assert stopped.error == "the story was unpublished"
    assert set(rows) == {DeliveryStatus.SENT, DeliveryStatus.FAILED}
    # what went out was withdrawn, and what had not never went
    assert all(fake_api.emulator.messages(user) == [] for user in readers)
