"""A real WordPress (Debian's package, served by `php -S`, its own MariaDB database): posts
made through WordPress's PHP API, its real RSS and comments feeds ingested by the bot's
ingest, and what a reader then finds; a post trashed in WordPress is gone once the API
unpublishes it. Skipped where WordPress, php or MariaDB are absent (see wordpress_site.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from digests.db import make_engine, make_session_factory
from digests.feeds.ingest import ingest_sources
from digests.models import Article, Section
from digests.stories.naming import parse_category_map
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, e2e_settings, running_service
from tests.fakes.fixtures import fake_api
from tests.integration.wordpress_site import missing, wordpress_site

__all__ = ["fake_api"]

pytestmark = pytest.mark.skipif(
    (reason := missing()) is not None, reason=f"no WordPress here: {reason}"
)

TOKEN = "wordpress-token-0123456789"
CATEGORY_MAP = "tagname=,Europe=World"  # a tag dropped, a child category folded into its parent
TEASER = "The council met in the harbour hall on Tuesday night."
AFTER_FOLD = "Nobody expected the vote to run past midnight"

FEATURED_IN_FEED = """<?php
// README "For WordPress publishers": the featured image as the item's enclosure
add_action('rss2_item', function () {
    if (has_post_thumbnail()) {
        $url = get_the_post_thumbnail_url(null, 'large');
        echo '<enclosure url="' . esc_url($url) . '" length="0" type="image/jpeg" />' . "\\n";
    }
});
"""
PHOTO = "2026/12/summit.jpg"  # under the site's uploads

_POSTS = r"""
$category = function ($name, $parent = 0) {
    $made = wp_insert_term($name, 'category', ['parent' => $parent]);
    return is_wp_error($made) ? get_cat_ID($name) : $made['term_id'];
};
$world = $category('World');
$cats = [
    'world' => $world,
    'europe' => $category('Europe', $world),
    'economy' => $category('Экономика'),
    'sport' => $category('Спорт'),
    'fbi' => $category('FBI'),
];
$minutes = 0;
$make = function ($title, $cat, $extra = []) use (&$minutes, $cats) {
    $minutes += 10;
    $id = wp_insert_post(array_merge([
        'post_title' => $title,
        'post_content' => "<p>$title: the full story.</p>",
        'post_status' => 'publish',
        'post_date_gmt' => gmdate('Y-m-d H:i:s', time() - 86400 + $minutes * 60),
    ], $extra), true);
    if (is_wp_error($id)) { throw new Exception($id->get_error_message()); }
    if ($cat !== null) { wp_set_post_categories($id, [$cats[$cat]]); }
    return $id;
};
$ids = [];
$ids['summit'] = $make('Summit opens', 'world', [
    'post_content' => '<p>Leaders arrive 🎉 for the summit 👍.</p>',
    'tags_input' => ['climate', 'tagname'],
]);
$photo = wp_insert_attachment([
    'guid' => content_url('uploads/' . PHOTO),
    'post_mime_type' => 'image/jpeg',
    'post_title' => 'Summit',
    'post_status' => 'inherit',
], false, $ids['summit']);
update_post_meta($photo, '_wp_attached_file', PHOTO);
set_post_thumbnail($ids['summit'], $photo);
$ids['economy'] = $make('Рынки растут', 'economy');
$ids['sport'] = $make('Матч отменён', 'sport');
$ids['fbi'] = $make('FBI raids office', 'fbi');
$ids['europe'] = $make('Paris votes', 'europe');
$ids['teaser'] = $make('Council vote', 'world', [
    'post_content' => '<p>' . TEASER . '</p><!--more--><p>' . AFTER_FOLD . '.</p>',
]);
$ids['edited'] = $make('Bridge closes', 'world');
wp_update_post(['ID' => $ids['edited'], 'post_title' => 'Bridge reopens after repairs']);
$ids['protected'] = $make('Members only', 'world', ['post_password' => 'secret']);
$ids['draft'] = $make('Unfinished draft', 'world', ['post_status' => 'draft']);
$ids['private'] = $make('Staff notice', 'world', ['post_status' => 'private']);
$ids['future'] = $make('Tomorrow morning', 'world', [
    'post_status' => 'future',
    'post_date_gmt' => gmdate('Y-m-d H:i:s', time() + 86400),
]);
$ids['trashed'] = $make('Wrong figures published', 'world');
wp_insert_comment([
    'comment_post_ID' => $ids['summit'],
    'comment_author' => 'A reader',
    'comment_content' => 'Great summit coverage!',
    'comment_approved' => 1,
]);
$out = [];
foreach ($ids as $key => $id) {
    $p = get_post($id);
    $out[$key] = [
        'id' => $id,
        'link' => get_permalink($id),
        'status' => $p->post_status,
        'title' => $p->post_title,
        'date_gmt' => $p->post_date_gmt,
    ];
}
echo json_encode($out);
"""


async def ingest(db_url: str, *sources: str) -> list[Any]:
    engine = make_engine(db_url)
    try:
        return await ingest_sources(
            list(sources),
            session_factory=make_session_factory(engine),
            now=lambda: datetime.now(UTC),
            category_map=parse_category_map(CATEGORY_MAP),
            default_section="General",
        )
    finally:
        await engine.dispose()


async def stored(db_url: str) -> tuple[dict[str, Article], dict[str, Section]]:
    engine = make_engine(db_url)
    try:
        async with make_session_factory(engine)() as session:
            articles = {a.link or "": a for a in await session.scalars(select(Article))}
            sections = {s.name: s for s in await session.scalars(select(Section))}
            return articles, sections
    finally:
        await engine.dispose()


async def test_a_real_wordpress_as_readers_see_it(
    fake_api: FakeBotApiServer, db_url: str, tmp_path: Path
) -> None:
    with wordpress_site(tmp_path, mu_plugins={"featured.php": FEATURED_IN_FEED}) as wp:
        wp.php("wp_delete_post(1, true); echo 1;")  # WordPress's own "Hello world!"
        posts: dict[str, dict[str, Any]] = wp.php(
            f"define('TEASER', {json.dumps(TEASER)}); "
            f"define('AFTER_FOLD', {json.dumps(AFTER_FOLD)}); "
            f"define('PHOTO', {json.dumps(PHOTO)});\n" + _POSTS
        )
        assert [posts[key]["status"] for key in ("draft", "private", "future")] == [
            "draft",
            "private",
            "future",
        ]
        by_title = {post["title"]: post for post in posts.values()}
        feed, comments = f"{wp.url}/?feed=rss2", f"{wp.url}/?feed=comments-rss2"
        [from_feed, from_comments] = await ingest(db_url, feed, comments)
        assert from_feed.ok and from_comments.ok, (from_feed.line(), from_comments.line())
        assert from_comments.new == 0  # "Comment on Summit opens by A reader" is no story

        articles, sections = await stored(db_url)
        published = {
            "Summit opens",
            "Рынки растут",
            "Матч отменён",
            "FBI raids office",
            "Paris votes",
            "Council vote",
            "Bridge reopens after repairs",
            "Wrong figures published",
        }
        assert {a.title for a in articles.values()} == published  # each once
        assert len(articles) == len(published)
        for title in published:  # stored under its permalink, at its own time
            post = by_title[title]
            article = articles[post["link"]]
            assert article.title == title
            gmt = datetime.fromisoformat(post["date_gmt"]).replace(tzinfo=UTC)
            assert article.published_at.replace(tzinfo=UTC) == gmt
        for left_out in ("Members only", "Unfinished draft", "Staff notice", "Tomorrow morning"):
            assert by_title[left_out]["link"] not in articles  # protected, draft, private, future
        assert not any("#comment" in link for link in articles)

        # categories: Cyrillic ones apart, all caps kept, the tag dropped, Europe folded
        assert {"World", "Экономика", "Спорт", "FBI", "Climate"} <= set(sections), sorted(sections)
        assert "tagname" not in {name.casefold() for name in sections}
        assert "Europe" not in sections
        assert sections["Экономика"].slug != sections["Спорт"].slug
        paris = articles[by_title["Paris votes"]["link"]]
        assert [s.name for s in paris.sections] == ["World"]
        summit = articles[by_title["Summit opens"]["link"]]
        assert {s.name for s in summit.sections} == {"World", "Climate"}
        # its featured image, not WordPress's emoji images (s.w.org), is the photo
        assert summit.image_url == f"{wp.url}/wp-content/uploads/{PHOTO}"
        assert all(a.image_url is None for a in articles.values() if a is not summit)
        teaser = articles[by_title["Council vote"]["link"]]
        assert teaser.summary.startswith(TEASER)
        assert AFTER_FOLD not in teaser.summary and "[…]" not in teaser.summary

        # trashed in WordPress: the feed just stops listing it, so the story stays...
        wp.php(f"wp_trash_post({by_title['Wrong figures published']['id']}); echo 1;")
        await ingest(db_url, feed)
        articles, _ = await stored(db_url)
        assert by_title["Wrong figures published"]["link"] in articles

    # ...until the publisher's plugin unpublishes it through the API
    settings = e2e_settings(fake_api, db_url, http_host="127.0.0.1", http_port=0, api_tokens=TOKEN)
    fake_api.emulator.add_user(6100, "Reader", started=True)
    reader = Reader(fake_api, 6100)
    async with running_service(settings) as (_app, base):
        [before] = await reader.send("/latest")
        assert before.text.startswith("Wrong figures published")
        async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as http:
            gone = await http.post(
                "/articles/unpublish",
                json={"url": by_title["Wrong figures published"]["link"]},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert gone.status_code == 200, gone.text
        [after] = await reader.send("/latest")
        assert after.text.startswith("Bridge reopens after repairs")
        assert "/ 7" in after.text
