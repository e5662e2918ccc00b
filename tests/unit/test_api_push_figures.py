"""The pure figures of bench/api_push.py: delivery timing, exactly-once, the rate ratio."""

from __future__ import annotations

import pytest

from bench.api_push import delivery_timing, exactly_once, rate_ratio


def test_timing_measures_from_the_start_on_the_same_clock() -> None:
    sends = [100.5 + k / 10 for k in range(11)]  # 11 sends, 0.1 s apart, from 100.5 to 101.5
    timing = delivery_timing(100.0, reversed(sends))

    assert timing["messages"] == 11
    assert timing["to_first_delivery_s"] == pytest.approx(0.5)
    assert timing["to_last_delivery_s"] == pytest.approx(1.5)
    assert timing["send_span_s"] == pytest.approx(1.0)
    assert timing["rate_msgs_per_s"] == pytest.approx(10.0)  # (11 - 1) / 1.0 s
    assert timing["most_in_one_second"] == 10  # 100.5 .. 101.4 within one second


def test_timing_of_nothing_and_of_one_send() -> None:
    assert delivery_timing(5.0, [])["to_first_delivery_s"] is None
    one = delivery_timing(5.0, [5.25])
    assert one["to_first_delivery_s"] == pytest.approx(0.25)
    assert one["rate_msgs_per_s"] is None


def test_exactly_once_holds_when_server_and_rows_agree() -> None:
    once = exactly_once({1, 2, 3}, {1: 1, 2: 1, 3: 1, 99: 1}, {1, 2, 3}, ignore={99})
    assert once["ok"]
    assert (once["duplicates"], once["missing"], once["outside_audience"]) == (0, 0, 0)
    assert once["rows_not_sent"] == once["rows_disagree_with_server"] == 0


def test_exactly_once_counts_duplicates_missing_strangers_and_rows() -> None:
    once = exactly_once({1, 2, 3, 4}, {1: 2, 2: 1, 3: 1, 7: 1}, {1, 2, 4})

    assert not once["ok"]
    assert once["duplicates"] == 1  # chat 1 twice
    assert once["missing"] == 1  # chat 4: its row says SENT, the server got nothing
    assert once["outside_audience"] == 1  # chat 7
    assert once["rows_not_sent"] == 1  # chat 3 arrived but its row is not SENT
    assert once["examples"]["rows_disagree"] == [1, 3, 4]


def test_rate_ratio() -> None:
    assert rate_ratio(27.0, 30.0) == pytest.approx(0.9)
    assert rate_ratio(None, 30.0) is None
    assert rate_ratio(27.0, 0.0) is None
