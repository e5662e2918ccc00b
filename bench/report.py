"""Targets from the issue, judged against measured figures, and the printed table."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

MIN_PUSH_RATE_RATIO = 0.90  # push rate vs the best bare PTB loop
MAX_CPU_RATIO = 1.00  # client CPU per message vs the best bare PTB loop
MIN_PAID_RATE = 1000.0  # messages/s sustained, paid broadcast against a 50 ms round trip
MAX_REPLY_SECONDS = 1.0  # a reader's /latest answered within this during the paid broadcast
MIN_LIMITED_RATE = 27.0  # messages/s with the fake server's limits on
MAX_PEAK_MB = 250.0

TARGETS = {
    "push_rate_vs_best_bare_loop": f">= {MIN_PUSH_RATE_RATIO}",
    "client_cpu_per_message_vs_best_bare_loop": f"<= {MAX_CPU_RATIO} (push and digest round)",
    "paid_broadcast_sustained_msgs_per_sec": f">= {MIN_PAID_RATE:.0f}",
    "paid_broadcast_reply_p99_seconds": f"<= {MAX_REPLY_SECONDS}",
    "lost_and_duplicated": 0,
    "limited_rate_msgs_per_sec": f">= {MIN_LIMITED_RATE}",
    "limited_429s": 0,
    "peak_memory_mb": f"<= {MAX_PEAK_MB:.0f}",
}


@dataclass(frozen=True)
class Row:
    scenario: str
    db: str
    messages: str = ""
    seconds: str = ""
    rate: str = ""
    client_us: str = ""
    server_us: str = ""
    ratio: str = ""
    cpu_ratio: str = ""
    too_many: str = ""
    peak_mb: str = ""
    target: str = ""
    verdict: str = ""


HEADERS = Row(
    "scenario",
    "db",
    "messages",
    "seconds",
    "msg/s",
    "client µs/msg",
    "server µs/msg",
    "rate ratio",
    "CPU ratio",
    "429s",
    "peak MB",
    "target",
    "",
)


_FIGURES = set(range(2, 11))  # columns aligned right


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _clean(phase: dict[str, Any]) -> tuple[int, int]:
    integrity = phase["integrity"]
    return integrity["lost"], integrity["duplicated"]


def _phase_row(name: str, db: str, phase: dict[str, Any], **cells: str) -> Row:
    return Row(
        name,
        db,
        messages=f"{phase['messages']:,}",
        seconds=_num(phase["seconds"]),
        rate=_num(phase["rate"]),
        client_us=_num(phase["client_us_per_message"], 0),
        server_us=_num(phase["server_us_per_message"], 0),
        too_many=str(phase["too_many_requests"]),
        **cells,
    )


def _bare_rows(db: str, bare: dict[str, Any], text: str) -> list[Row]:
    names = {
        "ptb_sequential": "bare PTB loop, one at a time",
        "ptb_few_in_flight": "bare PTB loop, {n} in flight",
        "lean_sequential": "bare loop on LeanRequest, one at a time",
        "lean_few_in_flight": "bare loop on LeanRequest, {n} in flight",
    }
    rows = []
    for key, name in names.items():
        loop = bare["loops"][key]
        label = name.format(n=loop["concurrency"]) + f" ({text})"
        note = "best bare loop: the reference" if key == bare["best"] else "(for information)"
        rows.append(_phase_row(label, db, loop, target=note))
    return rows


def rows_for(db: str, run: dict[str, Any]) -> list[Row]:
    """The table rows of one database's run, with PASS/FAIL on the rows that carry a target."""
    digest_run = run["scenario1"]
    digest, digest_vs = digest_run["digest_round"], digest_run["versus_bare"]
    fast = run["push_no_limits"]
    push_fast, push_vs = fast["push"], fast["versus_bare"]
    paid, limited, push = run["paid"], run["limited"], run["breaking"]
    peak = run["memory"]["peak_mb"]

    d_lost, d_dup = _clean(digest)
    f_lost, f_dup = _clean(push_fast)
    p_lost, p_dup = _clean(paid)
    l_lost, l_dup = _clean(limited)
    b_lost, b_dup = _clean(push)
    push_ok = (
        (push_vs["rate_ratio"] or 0) >= MIN_PUSH_RATE_RATIO
        and (push_vs["cpu_per_message_ratio"] or 9) <= MAX_CPU_RATIO
        and f_lost == f_dup == 0
    )
    digest_ok = (digest_vs["cpu_per_message_ratio"] or 9) <= MAX_CPU_RATIO and d_lost == d_dup == 0
    reply_p99 = paid["probes"]["p99"]
    paid_ok = (
        (paid["sustained_rate"] or 0) >= MIN_PAID_RATE
        and p_lost == p_dup == 0
        and paid["probes"]["answered"] == paid["probes"]["asked"] > 0
        and reply_p99 is not None
        and reply_p99 <= MAX_REPLY_SECONDS
    )
    limited_ok = (
        (limited["span_rate"] or 0) >= MIN_LIMITED_RATE
        and limited["too_many_requests"] == 0
        and l_lost == l_dup == 0
    )
    return [
        _phase_row(
            f"push, no limits ({push_fast['chats']:,} chats)",
            db,
            push_fast,
            ratio=_num(push_vs["rate_ratio"], 2),
            cpu_ratio=_num(push_vs["cpu_per_message_ratio"], 2),
            target=f"rate >= {MIN_PUSH_RATE_RATIO:.2f}, CPU <= {MAX_CPU_RATIO:.2f}, "
            f"lost {f_lost}, dup {f_dup}",
            verdict=_verdict(push_ok),
        ),
        *_bare_rows(db, fast["bare"], "push text"),
        _phase_row(
            "digest round, no limits",
            db,
            digest,
            ratio=_num(digest_vs["rate_ratio"], 2),
            cpu_ratio=_num(digest_vs["cpu_per_message_ratio"], 2),
            target=f"CPU <= {MAX_CPU_RATIO:.2f}, lost {d_lost}, dup {d_dup}",
            verdict=_verdict(digest_ok),
        ),
        *_bare_rows(db, digest_run["bare"], "digest text"),
        Row(
            f"paid broadcast push ({paid['chats']:,} chats, "
            f"{paid['latency'] * 1000:.0f} ms round trip), sustained",
            db,
            messages=f"{paid['messages']:,}",
            seconds=_num(paid["send_span"]),
            rate=_num(paid["sustained_rate"]),
            client_us=_num(paid["client_us_per_message"], 0),
            server_us=_num(paid["server_us_per_message"], 0),
            too_many=str(paid["too_many_requests"]),
            target=f">= {MIN_PAID_RATE:,.0f}/s, lost {p_lost}, dup {p_dup}; "
            f"{paid['probes']['answered']}/{paid['probes']['asked']} /latest answered, "
            f"p99 {_num(reply_p99, 2)} s (<= {MAX_REPLY_SECONDS:.0f} s)",
            verdict=_verdict(paid_ok),
        ),
        Row(
            f"digest round, limits on ({limited['chats']} chats)",
            db,
            messages=f"{limited['messages']:,}",
            seconds=_num(limited["send_span"]),
            rate=_num(limited["span_rate"]),
            client_us=_num(limited["client_us_per_message"], 0),
            server_us=_num(limited["server_us_per_message"], 0),
            too_many=str(limited["too_many_requests"]),
            target=f">= {MIN_LIMITED_RATE:.0f}/s, 0 x 429, lost {l_lost}, dup {l_dup}",
            verdict=_verdict(limited_ok),
        ),
        Row(
            f"breaking push, limits on ({push['chats']:,} chats)",
            db,
            messages=f"{push['messages']:,}",
            seconds=_num(push["time_to_last_delivery"]),
            rate=_num(push["rate_to_last"]),
            client_us=_num(push["client_us_per_message"], 0),
            server_us=_num(push["server_us_per_message"], 0),
            too_many=str(push["too_many_requests"]),
            target=f"lost {b_lost}, dup {b_dup} (both 0)",
            verdict=_verdict(b_lost == b_dup == 0),
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
