"""Targets from the issue, judged against measured figures, and the printed table."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

MIN_RATIO = 0.80  # digest round vs the bare PTB loop
MIN_LIMITED_RATE = 27.0  # messages/s with the fake server's limits on
MAX_PEAK_MB = 250.0


@dataclass(frozen=True)
class Row:
    scenario: str
    db: str
    messages: str = ""
    seconds: str = ""
    rate: str = ""
    ratio: str = ""
    too_many: str = ""
    peak_mb: str = ""
    target: str = ""
    verdict: str = ""


HEADERS = Row(
    "scenario", "db", "messages", "seconds", "msg/s", "ratio", "429s", "peak MB", "target", ""
)


_FIGURES = {2, 3, 4, 5, 6, 7}  # columns aligned right


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def rows_for(db: str, run: dict[str, Any]) -> list[Row]:
    """The table rows of one database's run, with PASS/FAIL on the rows that carry a target."""
    s1 = run["scenario1"]
    digest, seq, conc = s1["digest_round"], s1["bare_sequential"], s1["bare_concurrent"]
    ratio_seq, ratio_conc = s1["ratio_sequential"], s1["ratio_concurrent"]
    limited, push = run["limited"], run["breaking"]
    peak = run["memory"]["peak_mb"]
    d_lost, d_dup = digest["integrity"]["lost"], digest["integrity"]["duplicated"]
    l_lost, l_dup = limited["integrity"]["lost"], limited["integrity"]["duplicated"]
    p_lost, p_dup = push["integrity"]["lost"], push["integrity"]["duplicated"]
    limited_ok = (
        (limited["span_rate"] or 0) >= MIN_LIMITED_RATE
        and limited["too_many_requests"] == 0
        and l_lost == l_dup == 0
    )
    return [
        Row(
            "digest round, no limits",
            db,
            messages=f"{digest['messages']:,}",
            seconds=_num(digest["seconds"]),
            rate=_num(digest["rate"]),
            too_many=str(digest["too_many_requests"]),
            target=f"lost {d_lost}, dup {d_dup}",
            verdict=_verdict(d_lost == d_dup == 0),
        ),
        Row(
            "bare PTB loop, sequential",
            db,
            messages=f"{seq['messages']:,}",
            seconds=_num(seq["seconds"]),
            rate=_num(seq["rate"]),
            ratio=_num(ratio_seq, 2),
            too_many=str(seq["too_many_requests"]),
            target=f"digest/bare >= {MIN_RATIO:.2f}",
            verdict=_verdict(ratio_seq is not None and ratio_seq >= MIN_RATIO),
        ),
        Row(
            f"bare PTB loop, {conc['concurrency']} at once",
            db,
            messages=f"{conc['messages']:,}",
            seconds=_num(conc["seconds"]),
            rate=_num(conc["rate"]),
            ratio=_num(ratio_conc, 2),
            too_many=str(conc["too_many_requests"]),
            target="(for information)",
        ),
        Row(
            f"digest round, limits on ({limited['chats']} chats)",
            db,
            messages=f"{limited['messages']:,}",
            seconds=_num(limited["send_span"]),
            rate=_num(limited["span_rate"]),
            too_many=str(limited["too_many_requests"]),
            target=f">= {MIN_LIMITED_RATE:.0f}/s, 0 x 429, lost {l_lost}, dup {l_dup}",
            verdict=_verdict(limited_ok),
        ),
        Row(
            f"breaking push ({push['chats']} chats)",
            db,
            messages=f"{push['messages']:,}",
            seconds=_num(push["time_to_last_delivery"]),
            rate=_num(push["rate_to_last"]),
            too_many=str(push["too_many_requests"]),
            target=f"lost {p_lost}, dup {p_dup} (both 0)",
            verdict=_verdict(p_lost == p_dup == 0),
        ),
        Row(
            "peak memory (whole run)",
            db,
            peak_mb=_num(peak),
            target=f"<= {MAX_PEAK_MB:.0f} MB",
            verdict=_verdict(peak <= MAX_PEAK_MB),
        ),
    ]


def format_table(rows: list[Row]) -> str:
    """Aligned columns: text left, figures right."""
    table = [astuple(row) for row in (HEADERS, *rows)]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(table[0]))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if i in _FIGURES else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(table[0]), rule, *(line(cells) for cells in table[1:])])


def failures(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.verdict == "FAIL"]
