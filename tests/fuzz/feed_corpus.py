"""Hostile feeds for the feed fuzzer: a fixed corpus and a hypothesis strategy.

Documents are built as bytes, so that they can be anything a server might send: broken XML,
the wrong encoding, entity bombs, values far beyond any column. `GOOD_FEED` is the well-behaved
feed whose stories the fuzzer checks are never lost or changed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from hypothesis import strategies as st

XXE_PATH = "/xxe-target"
"""A path on the feed server that external entities point at: nothing may ever fetch it."""


@dataclass(frozen=True)
class Item:
    """One entry's fields as raw XML text (already escaped, or deliberately not)."""

    guid: str | None = None
    link: str | None = None
    title: str | None = None
    summary: str | None = None
    date: str | None = None
    categories: tuple[str, ...] = ()


def rss(items: Iterable[Item], *, prolog: str = '<?xml version="1.0" encoding="utf-8"?>') -> str:
    body = []
    for item in items:
        parts = ["<item>"]
        if item.guid is not None:
            parts.append(f"<guid>{item.guid}</guid>")
        if item.link is not None:
            parts.append(f"<link>{item.link}</link>")
        if item.title is not None:
            parts.append(f"<title>{item.title}</title>")
        if item.summary is not None:
            parts.append(f"<description>{item.summary}</description>")
        if item.date is not None:
            parts.append(f"<pubDate>{item.date}</pubDate>")
        parts += [f"<category>{c}</category>" for c in item.categories]
        parts.append("</item>")
        body.append("".join(parts))
    return (
        f'{prolog}\n<rss version="2.0"><channel><title>Fuzz</title>'
        "<link>https://fuzz.example/</link><description>d</description>"
        f"{''.join(body)}</channel></rss>"
    )


def atom(items: Iterable[Item], *, prolog: str = '<?xml version="1.0" encoding="utf-8"?>') -> str:
    body = []
    for item in items:
        parts = ["<entry>"]
        if item.guid is not None:
            parts.append(f"<id>{item.guid}</id>")
        if item.link is not None:
            parts.append(f'<link rel="alternate" href="{item.link}"/>')
        if item.title is not None:
            parts.append(f'<title type="html">{item.title}</title>')
        if item.summary is not None:
            parts.append(f"<summary>{item.summary}</summary>")
        if item.date is not None:
            parts.append(f"<updated>{item.date}</updated>")
        parts += [f'<category term="{c}"/>' for c in item.categories]
        parts.append("</entry>")
        body.append("".join(parts))
    return (
        f'{prolog}\n<feed xmlns="http://www.w3.org/2005/Atom"><title>Fuzz</title>'
        '<id>urn:fuzz</id><updated>2026-11-30T09:00:00Z</updated><link href="https://fuzz.example/"/>'
        f"{''.join(body)}</feed>"
    )


def good_items(prefix: str, count: int) -> list[Item]:
    sections = ("World", "Sports", "Culture", "Science")
    return [
        Item(
            guid=f"{prefix}-{n}",
            link=f"https://good.example/{prefix}/{n}",
            title=f"Good story {n} &amp; more",
            summary=f"&lt;p&gt;Paragraph {n}&lt;/p&gt;",
            date=f"Mon, 30 Nov 2026 {n % 12:02d}:00:00 +0000",
            categories=(sections[n % len(sections)],),
        )
        for n in range(count)
    ]


GOOD_FEED = rss(good_items("good", 30)).encode()
# the same guids again from another source, and the good feed's own guids in Atom: a hostile
# feed must never rewrite a story that another source stored first
SHARED_ITEMS = [
    Item(guid=f"good-{n}", link=f"https://evil.example/{n}", title="Phish", summary="x")
    for n in range(5)
]


def _lol(levels: int, fanout: int) -> str:
    lines = ['<!ENTITY lol0 "lollollollol">']
    lines += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * fanout}">' for i in range(1, levels + 1)]
    return "\n".join(lines)


def billion_laughs(kind: str) -> bytes:
    prolog = f'<?xml version="1.0"?>\n<!DOCTYPE {kind} [\n{_lol(9, 10)}\n]>'
    items = [Item(guid="lol", title="&lol9;", summary="&lol9;", categories=("&lol9;",))]
    return (rss(items, prolog=prolog) if kind == "rss" else atom(items, prolog=prolog)).encode()


def quadratic_blowup() -> bytes:
    """One 200 kB entity referenced 20,000 times: 4 GB if expanded."""
    prolog = f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY a "{"a" * 200_000}">]>'
    return rss([Item(guid="qb", title="q", summary="&a;" * 20_000)], prolog=prolog).encode()


def external_entities(base: str) -> list[tuple[str, bytes]]:
    target = f"{base}{XXE_PATH}"
    system = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
        f'<!ENTITY web SYSTEM "{target}">]>'
    )
    parameter = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY % remote SYSTEM "{target}"> %remote;]>'
    )
    dtd = f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "{target}">'
    item = Item(guid="xxe", title="a &xxe; &web; b", summary="&xxe;&web;", categories=("&web;",))
    return [
        ("xxe-system", rss([item], prolog=system).encode()),
        ("xxe-parameter", rss([Item(guid="xxe-p", title="p")], prolog=parameter).encode()),
        ("xxe-dtd", rss([Item(guid="xxe-d", title="d")], prolog=dtd).encode()),
        ("xxe-atom", atom([item], prolog=system.replace("rss", "feed", 1)).encode()),
        (
            "xinclude",
            rss([Item(guid="xi", title="x")])
            .replace(
                "<channel>",
                '<channel><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                f'href="{target}"/>',
            )
            .encode(),
        ),
    ]


CONTROLS = "".join(chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127)) + "\ufffe\u200b"


def _every_field(value: str, n: int = 0) -> Item:
    return Item(
        guid=f"ctl{n}{value}",
        link=f"https://x.example/{n}{value}",
        title=f"Ti{value}tle",
        summary=f"Su{value}mmary",
        date=f"Mon, 30 Nov 2026 0{value}9:00:00 +0000",
        categories=(f"Cat{value}",),
    )


def encodings() -> list[tuple[str, bytes]]:
    accents = Item(guid="enc", title="Café naïve – “quoted” Ærø", summary="Zürich € ✓ 中文")
    text = rss([accents])
    no_decl = rss([accents], prolog="")
    return [
        ("utf8-declared-latin1-bytes", text.encode("latin-1", "replace")),
        ("utf8-declared-cp1252-bytes", text.encode("cp1252", "replace")),
        ("utf8-declared-utf16le-bytes", text.encode("utf-16-le")),
        ("utf8-declared-utf16-with-bom", text.encode("utf-16")),
        ("utf16-no-declaration", no_decl.encode("utf-16")),
        ("utf8-bom", b"\xef\xbb\xbf" + text.encode()),
        ("utf8-bom-twice", b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode()),
        ("utf16-declared-utf8-bytes", text.replace("utf-8", "utf-16").encode()),
        ("unknown-encoding", text.replace("utf-8", "x-no-such-charset").encode()),
        ("utf32", text.replace("utf-8", "utf-32").encode("utf-32")),
        ("ebcdic", text.replace("utf-8", "cp500").encode("cp500", "replace")),
        ("invalid-utf8", text.encode().replace("Café".encode(), b"Caf\xc3\x28\xff\xfe")),
        (
            "surrogate-refs",
            rss([Item(guid="sur", title="&#xD800;&#xDFFF;", summary="&#0;")]).encode(),
        ),
        (
            "raw-controls-every-field",
            rss([_every_field(c, n) for n, c in enumerate(CONTROLS)]).encode(
                "utf-8", "surrogatepass"
            ),
        ),
        (
            "escaped-controls-every-field",
            rss([_every_field(f"&#{ord(c)};", n) for n, c in enumerate(CONTROLS)]).encode(),
        ),
        ("atom-raw-controls", atom([_every_field("\x00\x07\x1b", 1)]).encode()),
    ]


def broken() -> list[tuple[str, bytes]]:
    whole = rss(good_items("brk", 40)).encode()
    atom_whole = atom(good_items("abrk", 40)).encode()
    rng = random.Random(1234)  # noqa: S311 - reproducible garbage, not crypto
    garbage = [rng.randbytes(size) for size in (1, 100, 5_000, 200_000)]
    return [
        ("empty", b""),
        ("whitespace", b" \n\t " * 100),
        ("truncated-half", whole[: len(whole) // 2]),
        ("truncated-in-tag", whole[: whole.index(b"<title>", 2000) + 4]),
        ("truncated-atom", atom_whole[: len(atom_whole) * 2 // 3]),
        ("unbalanced", whole.replace(b"</title>", b"", 7).replace(b"</item>", b"</channel>", 3)),
        ("unclosed-cdata", whole.replace(b"<description>", b"<description><![CDATA[", 1)),
        ("swapped-roots", whole.replace(b"</rss>", b"</feed>")),
        (
            "nested-items",
            rss([Item(guid="n1", title="<item><title>x</title></item>" * 50)]).encode(),
        ),
        (
            "deep-nesting",
            (
                "<rss version='2.0'><channel>"
                + "<a>" * 50_000
                + "</a>" * 50_000
                + "</channel></rss>"
            ).encode(),
        ),
        ("html-page", b"<!doctype html><html><body><item><title>x</title></item></body></html>"),
        ("json", b'{"items": [{"title": "not xml"}]}'),
        ("garbage-in-the-middle", whole[:3000] + garbage[2] + whole[3000:]),
        *((f"garbage-{len(g)}", g) for g in garbage),
        ("gzip-magic", b"\x1f\x8b\x08\x00" + garbage[1]),
        ("processing-instructions", whole.replace(b"<channel>", b"<?evil x?><channel>" * 10)),
    ]


def absurd() -> list[tuple[str, bytes]]:
    huge = "L" * 100_000
    dates = [
        "Thu, 01 Jan 1970 00:00:00 +0000",
        "Wed, 31 Dec 1969 23:59:59 +0000",
        "Mon, 01 Jan 1900 00:00:00 +0000",
        "Sat, 01 Jan 0001 00:00:00 +0000",
        "Fri, 31 Dec 9999 23:59:59 +0000",
        "Fri, 31 Dec 9999 23:59:59 -1400",
        "99999-01-01T00:00:00Z",
        "not a date",
        "Mon, 32 Foo 2026 25:61:61 +9999",
        "",
        "2026-02-30T00:00:00Z",
        "1e309",
        "-1",
    ]
    atom_dates = [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1969-07-20T20:17:40Z",
        "2026-13-45T99:99:99Z",
        "yesterday",
    ]
    many_categories = tuple(f"Category {n}" for n in range(3_000))
    return [
        ("long-guid", rss([Item(guid=huge, title="long guid")]).encode()),
        ("long-link", rss([Item(link=f"https://x.example/{huge}", title="long link")]).encode()),
        ("long-guid-and-link", rss([Item(guid=huge, link=f"https://x.example/{huge}")]).encode()),
        ("long-title", rss([Item(guid="lt", title="T" * 1_000_000)]).encode()),
        ("long-summary", rss([Item(guid="ls", title="s", summary="S" * 3_000_000)]).encode()),
        ("long-category", rss([Item(guid="lc", title="c", categories=(huge,))]).encode()),
        (
            "many-categories-one-entry",
            rss([Item(guid="mc", title="m", categories=many_categories)]).encode(),
        ),
        (
            "many-categories-many-entries",
            rss(
                Item(
                    guid=f"mce{n}", title=f"e{n}", categories=many_categories[n * 30 : n * 30 + 30]
                )
                for n in range(100)
            ).encode(),
        ),
        (
            "odd-dates-rss",
            rss(
                Item(guid=f"d{n}", title=f"date {d!r}", date=d) for n, d in enumerate(dates)
            ).encode(),
        ),
        (
            "odd-dates-atom",
            atom(
                Item(guid=f"ad{n}", title=f"date {d!r}", date=d) for n, d in enumerate(atom_dates)
            ).encode(),
        ),
        ("no-title-no-link", rss([Item(guid="only-guid"), Item(summary="only summary")]).encode()),
        ("duplicate-guids", rss(Item(guid="dup", title=f"dup {n}") for n in range(500)).encode()),
        ("shared-guids", rss(SHARED_ITEMS).encode()),
        ("shared-guids-atom", atom(SHARED_ITEMS).encode()),
        (
            "javascript-links",
            rss(
                [
                    Item(guid="js", link="javascript:alert(1)", title="js"),
                    Item(link="http://[::1/broken", title="bad ipv6"),
                ]
            ).encode(),
        ),
        (
            "whitespace-keys",
            rss(
                [Item(guid="   ", link="  ", title="  "), Item(guid="\u00a0", title="\u2028")]
            ).encode(),
        ),
    ]


def huge_feeds() -> list[tuple[str, bytes]]:
    def many(kind: str, count: int) -> list[Item]:
        return [
            Item(
                guid=f"{kind}-{n}",
                link=f"https://huge.example/{kind}/{n}",
                title=f"Huge {n}",
                summary="Lorem ipsum dolor sit amet. " * 4,
                date="Mon, 30 Nov 2026 09:00:00 +0000",
                categories=(f"Topic {n % 7}",),
            )
            for n in range(count)
        ]

    padded = rss(many("pad", 200)).replace("<channel>", "<channel><!--" + "x" * 11_000_000 + "-->")
    return [
        ("huge-rss-20k", rss(many("rss", 20_000)).encode()),
        ("huge-atom-3k", atom(many("atom", 3_000)).encode()),
        ("over-the-download-limit", padded.encode()),
    ]


def corpus(base: str) -> list[tuple[str, bytes]]:
    """Every fixed hostile case, by name; `base` is the feed server's address."""
    return [
        *broken(),
        *encodings(),
        ("billion-laughs-rss", billion_laughs("rss")),
        ("billion-laughs-atom", billion_laughs("feed")),
        ("quadratic-blowup", quadratic_blowup()),
        *external_entities(base),
        *absurd(),
        *huge_feeds(),
    ]


# ---- the hypothesis strategy -------------------------------------------------------------

_HOSTILE_CHARS = st.characters(exclude_categories=())  # surrogates and controls too
_FIELD_TEXT = st.one_of(
    st.text(_HOSTILE_CHARS, max_size=40),
    st.text(st.sampled_from(list("<>&;#x/\"' ]]>\x00\x07\r\n\t")), max_size=30),
    st.sampled_from(
        [
            "&amp;",
            "&lt;b&gt;",
            "&#0;",
            "&#x1F600;",
            "&bogus;",
            "<![CDATA[x]]>",
            "<b>bold</b>",
            "<script>x</script>",
            "]]>",
            "&#xD800;",
        ]
    ),
    st.integers(min_value=0, max_value=3_000).map(lambda n: "W" * n),
)
_DATES = st.one_of(
    st.sampled_from(
        [
            "Mon, 30 Nov 2026 09:00:00 +0000",
            "1969-12-31T23:59:59Z",
            "9999-12-31T23:59:59Z",
            "0000-00-00",
            "Tue, 31 Feb 2026 99:00:00 GMT",
        ]
    ),
    st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S +0000")),
    _FIELD_TEXT,
)


def _maybe(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    return st.none() | strategy


def _escaped(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Text as it would appear in a document: escaped, or raw (maybe breaking the XML)."""
    return st.one_of(strategy.map(escape), strategy)


_ITEMS = st.builds(
    Item,
    guid=_maybe(_escaped(_FIELD_TEXT)),
    link=_maybe(
        st.one_of(
            _escaped(_FIELD_TEXT).map(lambda s: "https://f.example/" + s), _escaped(_FIELD_TEXT)
        )
    ),
    title=_maybe(_escaped(_FIELD_TEXT)),
    summary=_maybe(_escaped(_FIELD_TEXT)),
    date=_maybe(_escaped(_DATES)),
    categories=st.lists(_escaped(_FIELD_TEXT), max_size=4).map(tuple),
)
_ENCODINGS = ["utf-8", "utf-16", "utf-16-le", "latin-1", "cp1252", "utf-32", "ascii"]


@st.composite
def _document(draw: st.DrawFn) -> bytes:
    build: Callable[..., str] = draw(st.sampled_from([rss, atom]))
    items: Sequence[Item] = draw(st.lists(_ITEMS, max_size=8))
    declared = draw(st.sampled_from([*_ENCODINGS, "bogus-charset", None]))
    prolog = "" if declared is None else f'<?xml version="1.0" encoding="{declared}"?>'
    text = build(items, prolog=prolog)
    # half the time as declared (so entries get through to the database), else any encoding
    honest = declared in _ENCODINGS and draw(st.booleans())
    actual = declared if honest and declared else draw(st.sampled_from(_ENCODINGS))
    data = text.encode(actual, "surrogatepass" if actual.startswith("utf") else "replace")
    if draw(st.integers(0, 3)) == 0:  # damage one in four: cut, splice garbage, flip bytes
        at = draw(st.integers(min_value=0, max_value=len(data)))
        how = draw(st.sampled_from(["cut", "splice", "flip"]))
        if how == "cut":
            data = data[:at]
        elif how == "splice":
            data = data[:at] + draw(st.binary(max_size=64)) + data[at:]
        elif data:
            index = min(at, len(data) - 1)
            data = data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]
    return data


FEEDS = st.one_of(_document(), st.binary(max_size=2_000))
"""Random documents: RSS or Atom of hostile entries, in any encoding, maybe damaged; or bytes."""
