"""Units read and written in one way everywhere: how long something took (4h05m, 3m20s, 45s), and the whole
numbers a script or a log gives (counts, steps, sizes), refused when they cannot be one."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """4h05m for hours (seconds say nothing there), 3m20s under an hour, 45s under a minute; "—" for unknown."""
    if seconds is None:
        return "—"
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


# a count, step or size a script or log gives has at most this many digits; a longer run of digits is not one
# (and int() refuses 4,300 digits or more: a hostile input must not take a reader or a check down)
MAX_INT_DIGITS = 20


def parse_int(text: str | bytes | None) -> int | None:
    """A whole number as scripts and logs write it ("8", "21,400", "-9"); None for anything else, or for more
    than MAX_INT_DIGITS digits."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    digits = text.replace(",", "")
    sign = -1 if digits.startswith("-") else 1  # torchrun's "exitcode: -9"
    digits = digits[1:] if sign < 0 else digits
    if not digits or len(digits) > MAX_INT_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    return sign * int(digits)


def parse_count(text: str | None) -> int | None:
    """A count as a script writes it: plain ASCII digits only ("8"; not "1,2", "-1" or "²"), else None."""
    return parse_int(text) if text and text.isascii() and text.isdigit() else None
