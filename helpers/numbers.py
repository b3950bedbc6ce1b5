"""Numbers as the course writes them in answers: ``504.0`` → ``504``, fractions and percents kept.

    >>> format_number("504.0"), format_number(0.8333333333333334), format_number("2/6")
    ('504', '0.833333', '2/6')
"""
from __future__ import annotations

import math
import re
from typing import Any

NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?%?")  # 9, 2.5, 2/6, 12%


def format_number(value: Any) -> str | None:
    """``504.0`` → ``504``, ``0.8333333333333334`` → ``0.833333``; fractions/percent kept; else None."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        x = float(text)
    except ValueError:
        return text if NUMBER_RE.fullmatch(text) else None
    if not math.isfinite(x):
        return None
    if x.is_integer():
        return str(int(x))
    return f"{round(x, 6):.6f}".rstrip("0").rstrip(".")
