"""The publisher's HTTP API over real HTTP: the bot as `newsbot run` serves it, the fake Bot
API behind it, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from digests.db import make_engine, make_session_factory
from digests.models import ApiRequest, Article, BreakingPush, Delivery, PushOrigin, PushStatus
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import e2e_settings, running_service
from tests.e2e.test_breaking import add_readers, wait_for_push_done

TOKEN = "cms-token-0123456789abcdef"
OTHER = "second-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def api(
    fake_api: FakeBotApiServer, db_url: str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The bot with its API on, and an HTTP client pointed at /api/v1."""
    values: dict[str, Any] = {
        "http_host": "127.0.0.1",
        "http_port": 0,
        "api_tokens": f"{TOKEN},{OTHER}",
    }
    values.update(overrides)
    settings = e2e_settings(fake_api, db_url, **values)
    async with (
        running_service(settings) as (_app, base),
        httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as http,
    ):
        yield http


def story(n: int, *, sections: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "guid": f"cms-{n}",
        "url": f"https://meridian.example/story/{n}",
        "title": f"Story {n}",
        "summary": f"What happened in story {n}.",
        "sections": sections if sections is not None else ["World"],
        "published_at": "2026-11-24T09:30:00+01:00",
    }
    body.update(extra)
    return body


def sends(fake_api: FakeBotApiServer) -> Counter[int]:
    """Messages the bot sent, by chat."""
    return Counter(
        int(call.params["chat_id"])
        for call in fake_api.emulator.calls
        if call.method in {"sendMessage", "sendPhoto"}
    )


async def count(db_url: str, model: Any) -> int:
    engine = make_engine(db_url)
    try:
        async with make_session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await engine.dispose()


async def test_every_endpoint_needs_a_valid_token(fake_api: FakeBotApiServer, db_url: str) -> None:
    async with api(fake_api, db_url) as http:
        calls = [
            ("POST", "/articles", story(1)),
            ("GET", "/articles", None),
            ("POST", "/pushes", {"article_id": 1}),
            ("GET", "/pushes/1", None),
        ]
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-0123456789"},
            {"Authorization": "Basic eDp5"},
            {"Authorization": f"Bearer {TOKEN}x"},
        ):
            for method, path, body in calls:
                answer = await http.request(method, path, json=body, headers=headers)
                assert answer.status_code == 401, (method, path, headers, answer.text)
                assert answer.headers["WWW-Authenticate"] == "Bearer"
                assert TOKEN not in answer.text
        # the second token works as well as the first; the document needs no token
        ok = await http.get("/articles", headers={"Authorization": f"Bearer {OTHER}"})
        assert ok.status_code == 200
        metrics = (await http.get(str(http.base_url).removesuffix("/api/v1/") + "/metrics")).text
        assert (
            'newsbot_api_requests_total{method="POST",route="/articles",status="401"} 4.0'
            in metrics
        )
        document = (await http.get("/openapi.json")).json()
        assert {"/articles", "/pushes", "/pushes/{push_id}"} <= set(document["paths"])
        assert document["servers"] == [{"url": "/api/v1"}]
    assert await count(db_url, Article) == 0


async def test_the_api_is_off_without_tokens(fake_api: FakeBotApiServer, db_url: str) -> None:
    async with api(fake_api, db_url, api_tokens="") as http:
        assert (await http.get("/articles", headers=AUTH)).status_code == 404
        assert (await http.get("/openapi.json")).status_code == 404


async def test_stories_are_created_updated_and_listed(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    async with api(fake_api, db_url) as http:
        photo = {
            "image_url": "https://cdn.meridian.example/protest.jpg",
            "image_caption": "A protest outside the embassy. Photo: Shutterstock",
            "author": "Dana Levi",
        }
        created = await http.post("/articles", json=story(1, **photo), headers=AUTH)
        assert created.status_code == 201, created.text
        first = created.json()
        assert first["guid"] == "cms-1"
        assert first["sections"] == ["world"]
        assert first["published_at"].startswith("2026-11-24T08:30:00")  # stored as UTC
        assert first["image_caption"] == photo["image_caption"]
        assert first["author"] == "Dana Levi"
        assert first["push_id"] is None

        changed = story(1, title="Story 1, updated", sections=["World", "Politics"], **photo)
        updated = await http.post("/articles", json=changed, headers=AUTH)
        assert updated.status_code == 200, updated.text
        assert updated.json()["id"] == first["id"]
        assert updated.json()["title"] == "Story 1, updated"
        assert sorted(updated.json()["sections"]) == ["politics", "world"]

        # found by URL when the CMS gives no guid
        by_url = {k: v for k, v in story(1, title="By URL").items() if k != "guid"}
        again = await http.post("/articles", json=by_url, headers=AUTH)
        assert (again.status_code, again.json()["id"]) == (200, first["id"])

        for n in range(2, 6):
            posted = await http.post("/articles", json=story(n, sections=["Sports"]), headers=AUTH)
            assert posted.status_code == 201
        listed = await http.get("/articles", params={"section": "sports", "limit": 3}, headers=AUTH)
        assert listed.status_code == 200
        assert [a["guid"] for a in listed.json()["articles"]] == ["cms-5", "cms-4", "cms-3"]
        everything = await http.get("/articles", headers=AUTH)
        assert len(everything.json()["articles"]) == 5
        unknown = await http.get("/articles", params={"section": "cooking"}, headers=AUTH)
        assert unknown.status_code == 404
    assert await count(db_url, Article) == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in story(1).items() if k != "title"}, "title"),
        (story(1, title="   "), "title"),
        (story(1, url="ftp://meridian.example/1"), "url"),
        (story(1, image_url="javascript:alert(1)"), "image_url"),
        (story(1, published_at="2026-11-24T09:30:00"), "published_at"),  # no time zone
        (story(1, sections=[""]), "sections"),
        (story(1, sections=[f"S{n}" for n in range(11)]), "sections"),
        (story(1, title="x" * 401), "title"),
        (story(1, colour="red"), "colour"),
        ({"title": "Neither guid nor url"}, None),
    ],
)
async def test_bad_bodies_get_422_naming_the_field_and_store_nothing(
    fake_api: FakeBotApiServer, db_url: str, body: dict[str, Any], field: str | None
) -> None:
    async with api(fake_api, db_url) as http:
        answer = await http.post("/articles", json=body, headers=AUTH)
        assert answer.status_code == 422, answer.text
        problems = answer.json()["detail"]
        if field is not None:
            assert any(field in problem["loc"] for problem in problems), problems
        else:
            assert "guid or a url" in problems[0]["msg"]
        not_json = await http.post(
            "/articles", content=b"{", headers={**AUTH, "Content-Type": "application/json"}
        )
        assert not_json.status_code == 422
    assert await count(db_url, Article) == 0


async def test_new_sections_stop_at_max_sections(fake_api: FakeBotApiServer, db_url: str) -> None:
    async with api(fake_api, db_url, max_sections=2) as http:
        assert (
            await http.post("/articles", json=story(1, sections=["A", "B"]), headers=AUTH)
        ).status_code == 201
        refused = await http.post("/articles", json=story(2, sections=["C"]), headers=AUTH)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "sections"]
        existing = await http.post("/articles", json=story(3, sections=["b"]), headers=AUTH)
        assert existing.status_code == 201
    assert await count(db_url, Article) == 2


async def test_a_push_reaches_its_sections_readers_once(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    world, politics, sports = [7100 + n for n in range(6)], [7200, 7201], [7300, 7301]
    async with api(fake_api, db_url) as http:
        posted = await http.post(
            "/articles", json=story(1, sections=["World", "Politics"]), headers=AUTH
        )
        await http.post("/articles", json=story(2, sections=["Sports"]), headers=AUTH)
        article_id = posted.json()["id"]
        await add_readers(db_url, world, "World")
        await add_readers(db_url, politics, "Politics")
        await add_readers(db_url, sports, "Sports")
        await add_readers(db_url, [7400], "World", alerts=False)
        for user in [*world, *politics, *sports, 7400]:
            fake_api.emulator.add_user(user, f"Reader {user}", started=True)

        dry = await http.post("/pushes", json={"guid": "cms-1", "dry_run": True}, headers=AUTH)
        assert dry.status_code == 200, dry.text
        assert dry.json()["audience"] == 8  # World and Politics, alerts on
        assert "Story 1" in dry.json()["preview"] and "<b>" in dry.json()["preview_html"]
        assert await count(db_url, BreakingPush) == 0
        assert sends(fake_api) == Counter()

        pushed = await http.post("/pushes", json={"article_id": article_id}, headers=AUTH)
        assert pushed.status_code == 202, pushed.text
        push = pushed.json()
        assert (push["origin"], push["audience"]) == ("api", 8)
        await wait_for_push_done(db_url)
        report = (await http.get(f"/pushes/{push['id']}", headers=AUTH)).json()
        assert report["status"] == "done"
        assert report["counts"] == {
            "sent": 8,
            "blocked": 0,
            "failed": 0,
            "pending": 0,
            "uncertain": 0,
        }

        listed = (await http.get("/articles", headers=AUTH)).json()["articles"]
        assert {a["guid"]: a["push_id"] for a in listed} == {"cms-1": push["id"], "cms-2": None}
        again = await http.post(
            "/pushes", json={"url": "https://meridian.example/story/1"}, headers=AUTH
        )
        assert again.status_code == 409
        assert again.json()["push_id"] == push["id"]
        missing = await http.post("/pushes", json={"guid": "nope"}, headers=AUTH)
        assert missing.status_code == 404
        assert (await http.get("/pushes/999", headers=AUTH)).status_code == 404
        two_refs = await http.post("/pushes", json={"guid": "cms-1", "article_id": 1}, headers=AUTH)
        assert two_refs.status_code == 422

    assert sends(fake_api) == Counter([*world, *politics])


async def test_a_retried_push_with_the_same_key_pushes_once(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    readers = [7500 + n for n in range(5)]
    async with api(fake_api, db_url) as http:
        await http.post("/articles", json=story(1), headers=AUTH)
        await add_readers(db_url, readers, "World")
        for user in readers:
            fake_api.emulator.add_user(user, f"Reader {user}", started=True)
        keyed = {**AUTH, "Idempotency-Key": "push-cms-1-attempt"}
        # the client's first try and its retry race each other
        first, second = await asyncio.gather(
            http.post("/pushes", json={"guid": "cms-1"}, headers=keyed),
            http.post("/pushes", json={"guid": "cms-1"}, headers=keyed),
        )
        answers = sorted([first, second], key=lambda a: "Idempotent-Replayed" in a.headers)
        assert answers[0].status_code == 202, answers[0].text
        # the loser either waited for the winner's answer, or was told to retry
        assert answers[1].status_code in {202, 409}, answers[1].text
        third = await http.post("/pushes", json={"guid": "cms-1"}, headers=keyed)
        assert third.status_code == 202
        assert third.headers["Idempotent-Replayed"] == "true"
        assert third.json()["id"] == answers[0].json()["id"]
        reused = await http.post("/pushes", json={"guid": "cms-1", "dry_run": True}, headers=keyed)
        assert reused.status_code == 422
        assert reused.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
        # the same key of another token is another key
        other = await http.post(
            "/pushes",
            json={"guid": "cms-1"},
            headers={"Authorization": f"Bearer {OTHER}", "Idempotency-Key": "push-cms-1-attempt"},
        )
        assert other.status_code == 409  # not replayed: the story was pushed already
        await wait_for_push_done(db_url)
    assert await count(db_url, BreakingPush) == 1
    assert await count(db_url, Delivery) == len(readers)
    assert await count(db_url, ApiRequest) == 1
    assert sends(fake_api) == Counter(readers)


async def test_a_retried_article_post_with_the_same_key_replays(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    async with api(fake_api, db_url) as http:
        keyed = {**AUTH, "Idempotency-Key": "article-1"}
        first = await http.post("/articles", json=story(1), headers=keyed)
        second = await http.post("/articles", json=story(1), headers=keyed)
        assert (first.status_code, second.status_code) == (201, 201)
        assert second.json() == first.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        too_long = await http.post(
            "/articles", json=story(2), headers={**AUTH, "Idempotency-Key": "k" * 256}
        )
        assert too_long.status_code == 422
    assert await count(db_url, Article) == 1


async def test_api_pushes_are_marked_as_such(fake_api: FakeBotApiServer, db_url: str) -> None:
    async with api(fake_api, db_url) as http:
        await http.post("/articles", json=story(1), headers=AUTH)
        pushed = await http.post("/pushes", json={"guid": "cms-1"}, headers=AUTH)
        assert pushed.status_code == 202
        await wait_for_push_done(db_url)
    engine = make_engine(db_url)
    try:
        async with make_session_factory(engine)() as session:
            [push] = await session.scalars(select(BreakingPush))
            assert (push.origin, push.status, push.admin_chat_id) == (
                PushOrigin.API,
                PushStatus.DONE,
                None,
            )
    finally:
        await engine.dispose()


async def test_an_api_push_carries_the_photo_or_falls_back_to_text(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    readers = [7600 + n for n in range(3)]
    for user in readers:
        fake_api.emulator.add_user(user, f"Reader {user}", started=True)
    fake_api.emulator.refuse_images("https://cdn.meridian.example/broken/")
    photo = {
        "image_url": "https://cdn.meridian.example/embassy.jpg",
        "image_caption": "A protest was held outside the embassy. Photo: Shutterstock",
    }
    async with api(fake_api, db_url) as http:
        await http.post("/articles", json=story(1, **photo), headers=AUTH)
        broken = {**photo, "image_url": "https://cdn.meridian.example/broken/2.jpg"}
        await http.post("/articles", json=story(2, **broken), headers=AUTH)
        await add_readers(db_url, readers, "World")
        dry = (
            await http.post("/pushes", json={"guid": "cms-1", "dry_run": True}, headers=AUTH)
        ).json()
        assert dry["image_url"] == photo["image_url"]
        assert "Photo: Shutterstock" in dry["preview"]
        for guid in ("cms-1", "cms-2"):
            assert (
                await http.post("/pushes", json={"guid": guid}, headers=AUTH)
            ).status_code == 202
            await wait_for_push_done(db_url)
    for user in readers:
        first, second = fake_api.emulator.messages(user)
        assert first.photo == photo["image_url"]
        assert first.text.startswith("🚨 Breaking\n\nStory 1")
        assert "📷 A protest was held outside the embassy. Photo: Shutterstock" in first.text
        assert second.photo is None  # refused: the same story as text, once
        assert second.text.startswith("🚨 Breaking\n\nStory 2")


async def wait_for_action(http: httpx.AsyncClient, push_id: int, count: int) -> dict[str, Any]:
    """The push's report once its `count`-th action is done."""
    async with asyncio.timeout(30):
        while True:
            report = (await http.get(f"/pushes/{push_id}", headers=AUTH)).json()
            if len(report["actions"]) >= count and report["actions"][count - 1]["done"]:
                return report
            await asyncio.sleep(0.05)


async def test_a_correction_then_a_withdrawal_through_the_api(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    readers = [7700 + n for n in range(4)]
    for user in readers:
        fake_api.emulator.add_user(user, f"Reader {user}", started=True)
    photo = {"image_url": "https://cdn.meridian.example/dam.jpg", "image_caption": "Photo: AP"}
    async with api(fake_api, db_url) as http:
        await http.post("/articles", json=story(1, title="Dam bursts", **photo), headers=AUTH)
        await add_readers(db_url, readers, "World")
        early = await http.post("/pushes/1/correct", json={"note": "x"}, headers=AUTH)
        assert early.status_code == 404  # no push yet
        push = (await http.post("/pushes", json={"guid": "cms-1"}, headers=AUTH)).json()
        await wait_for_push_done(db_url)
        sent = {user: fake_api.emulator.messages(user)[0] for user in readers}
        assert all(m.photo == photo["image_url"] for m in sent.values())

        # the CMS fixes the story, then asks for the correction
        fixed = story(1, title="Dam holds after night of repairs", **photo)
        assert (await http.post("/articles", json=fixed, headers=AUTH)).status_code == 200
        blank = await http.post(f"/pushes/{push['id']}/correct", json={"note": " "}, headers=AUTH)
        assert blank.status_code == 422
        keyed = {**AUTH, "Idempotency-Key": "fix-1"}
        body = {"note": "The dam did not burst <b>"}
        asked = await http.post(f"/pushes/{push['id']}/correct", json=body, headers=keyed)
        assert asked.status_code == 202, asked.text
        retried = await http.post(f"/pushes/{push['id']}/correct", json=body, headers=keyed)
        assert retried.json()["id"] == asked.json()["id"]  # one correction, not two
        report = await wait_for_action(http, push["id"], 1)
        [correction] = report["actions"]
        assert (correction["kind"], correction["edited"], correction["failed"]) == ("correct", 4, 0)
        for user, before in sent.items():
            now = fake_api.emulator.message(user, before.message_id)  # the same message
            assert now.photo == photo["image_url"]
            assert "Dam holds after night of repairs" in now.text
            assert "✏️ Corrected: The dam did not burst <b>" in now.text  # escaped, shown as text
            assert "Photo: AP" in now.text
            assert len(fake_api.emulator.messages(user)) == 1  # nothing new was sent

        # one reader's message is older than Telegram's 48 hours: it stays, reported too old
        fake_api.emulator.age_message(readers[0], sent[readers[0]].message_id, 49 * 3600)
        gone = await http.post(f"/pushes/{push['id']}/withdraw", headers=AUTH)
        assert gone.status_code == 202, gone.text
        report = await wait_for_action(http, push["id"], 2)
        withdrawal = report["actions"][1]
        assert (withdrawal["kind"], withdrawal["edited"], withdrawal["too_old"]) == (
            "withdraw",
            3,
            1,
        )
        assert report["withdrawn_at"] is not None
        assert len(fake_api.emulator.messages(readers[0])) == 1
        for user in readers[1:]:
            assert fake_api.emulator.messages(user) == []
        again = await http.post(f"/pushes/{push['id']}/withdraw", json={}, headers=AUTH)
        late = await http.post(f"/pushes/{push['id']}/correct", json={"note": "y"}, headers=AUTH)
        assert (again.status_code, late.status_code) == (409, 409)
