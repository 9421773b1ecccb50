"""The one duration format of every message and report (preflight/units.py)."""

from __future__ import annotations

import pytest

from preflight.units import duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0s"),
        (44.6, "45s"),
        (60, "1m00s"),
        (200, "3m20s"),
        (3599.4, "59m59s"),
        (3600, "1h00m"),
        (14_700, "4h05m"),
        (43_200, "12h00m"),
        (-5, "0s"),
    ],
)
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_parse_int_reads_what_scripts_and_logs_write():
    from preflight.units import MAX_INT_DIGITS, parse_int

    assert [parse_int(t) for t in ("8", "21,400", "-9", b"65536", "007")] == [8, 21400, -9, 65536, 7]
    # not a whole number: None, never an exception
    for text in (None, "", "-", "1.5", "1e3", "x8", "8x", "\u00b2", "\u0663", "9" * (MAX_INT_DIGITS + 1), "9" * 5000):
        assert parse_int(text) is None, text


def test_parse_count_takes_plain_digits_only():
    from preflight.units import parse_count

    assert [parse_count(t) for t in ("8", "0", "65536")] == [8, 0, 65536]
    for text in (None, "", "1,2", "-1", "+1", " 8", "\u00b2", "9" * 5000):
        assert parse_count(text) is None, text
