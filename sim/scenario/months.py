"""Calendar months as integers: ``index = year * 12 + (month - 1)``."""

from __future__ import annotations

import re

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(text: str) -> int:
    """``"2024-03"`` -> month index. Raises ``ValueError`` with a readable message."""
    if not isinstance(text, str):
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}")
    m = _MONTH.match(text.strip())
    if not m:
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}")
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12:
        raise ValueError(f"month {month} is not in 1..12 in {text!r}")
    if not 1900 <= year <= 2200:
        raise ValueError(f"year {year} is out of range in {text!r}")
    return year * 12 + month - 1


def format_month(index: int) -> str:
    """Month index -> ``"YYYY-MM"``."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_range(start: int, end: int) -> list[int]:
    """Inclusive range of month indices."""
    return list(range(start, end + 1))
