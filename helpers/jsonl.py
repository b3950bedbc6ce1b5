"""Read JSON Lines with errors that name the file and the line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


def iter_jsonl(path: str | Path, skip_blank: bool = True) -> Iterator[tuple[int, dict | None, str | None]]:
    """``(line number, object, None)`` per line, or ``(line number, None, problem)`` for a bad one."""
    with Path(path).open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if skip_blank and not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                yield line_no, None, f"malformed JSON ({err.msg} at column {err.colno})"
                continue
            if isinstance(obj, dict):
                yield line_no, obj, None
            else:
                yield line_no, None, f"expected a JSON object, got {type(obj).__name__}"


def read_jsonl(path: str | Path) -> list[tuple[int, dict]]:
    """Every object with its line number; ``ValueError`` naming ``file:line`` at the first bad line."""
    rows = []
    for line_no, obj, problem in iter_jsonl(path):
        if problem:
            raise ValueError(f"{path}:{line_no}: {problem}")
        rows.append((line_no, obj))
    return rows
