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
