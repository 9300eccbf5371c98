"""Client order ids as most venues take them: the strategy's prefix, a separator and a unique number in base 36,
within the venue's length and charset (a venue module says which)."""

from __future__ import annotations

import re

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(n: int) -> str:
    """A non-negative int in base 36 (lowercase): 13 digits for ms × 1000."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"an order number must be a non-negative int, got {n!r}")
    text = ""
    while True:
        n, digit = divmod(n, 36)
        text = _DIGITS[digit] + text
        if not n:
            return text


def prefixed_id(venue: str, prefix: str, n: int, *, limit: int, allowed: str, described: str,
                separator: str = "-") -> str:
    """`<prefix><separator><n in base 36>`, refused with a one-line ValueError when the prefix has a character
    outside `allowed` (a regex character class body, e.g. "A-Za-z0-9_-", described to the user as `described`)
    or leaves no room for the number within `limit` characters."""
    if not isinstance(prefix, str) or not prefix or not re.fullmatch(f"[{allowed}]+", prefix):
        raise ValueError(f"{venue} client ids take only {described}: prefix {prefix!r} cannot make one")
    number = base36(n)
    value = f"{prefix}{separator}{number}"
    if len(value) > limit:
        room = limit - len(separator) - len(number)
        raise ValueError(f"{venue} client ids are at most {limit} characters (longer than {limit} with the order "
                         f"number): prefix {prefix!r} is too long, keep it to at most {room}")
    return value
