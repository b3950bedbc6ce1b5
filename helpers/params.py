"""Check notebook parameters early, so a wrong papermill ``-p`` fails with one clear line."""
from __future__ import annotations

from typing import Any


def check(**spec: tuple[Any, type | tuple[type, ...]]) -> None:
    """``check(MODEL=(MODEL, str), STEPS=(STEPS, int))`` raises TypeError on the first mismatch."""
    for name, (value, expected) in spec.items():
        types = expected if isinstance(expected, tuple) else (expected,)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            continue  # an int is a fine float
        if isinstance(value, bool) and bool not in types:
            ok = False
        else:
            ok = isinstance(value, types)
        if not ok:
            want = " or ".join(t.__name__ for t in types)
            raise TypeError(
                f"parameter {name} must be {want}, got {type(value).__name__} {value!r}. "
                f"With papermill pass e.g. -p {name} <value> (-p parses numbers/booleans; -r passes raw strings)."
            )
