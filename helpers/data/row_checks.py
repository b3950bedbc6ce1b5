"""Checks of raw rows before Arrow sees them: the fields each normaliser reads and their types,
course-schema rows by the one conversation validator (``helpers.conversation.problems``), and ids.

A value of the wrong type is one counted drop of its row (a reason naming the field), never a
column type that Arrow infers from it for the whole file; two rows with one id and different
content are an error naming both lines.
"""
from __future__ import annotations

import json

import numpy as np

from .. import conversation
from .read import Raw

# The fields each normaliser reads and the types it accepts (None = absent, the normaliser's own
# drop). A value of another type is one counted drop, never a column-wide coercion by Arrow.
TEXT, NUMBER, LIST = (str,), (str, int, float), (list,)
FIELDS = {
    "cmath": {"input": TEXT, "question": TEXT, "golden": NUMBER},
    "mawps": {"Question": TEXT, "Numbers": NUMBER, "Answer": NUMBER},
    "emoji": {"question": TEXT, "answer_zh": TEXT, "answer_en": TEXT, "prompt": (str, list), "chosen": LIST},
    "chat": {"tags": LIST, "tools": (str, list)},
}
_TYPE_NAMES = {str: "a string", int: "a number", float: "a number", list: "a list"}


def type_problem(row: dict, fields: dict[str, tuple]) -> str:
    """The first field of ``row`` whose value has a type the normaliser does not take, as a drop reason.

    >>> type_problem({"input": "q", "golden": [1]}, FIELDS["cmath"])
    'golden: expected a string or a number, got list'
    """
    for name, types in fields.items():
        value = row.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            expected = " or ".join(dict.fromkeys(_TYPE_NAMES[t] for t in types))
            return f"{name}: expected {expected}, got {type(value).__name__}"
    return ""


def chat_row_problem(row: dict) -> str:
    """Why a course-schema row cannot be normalised (``id``, field types, then the conversation rules), or ""."""
    if not isinstance(row.get("id"), str) or not row["id"].strip():
        return f"id: expected a non-empty string, got {row.get('id')!r}"
    problem = type_problem(row, FIELDS["chat"])
    if problem:
        return problem
    if not all(isinstance(t, str) for t in row.get("tags") or []):
        return "tags: expected a list of strings"
    # literal control text is cleaned (and counted) afterwards, so it is no reason to drop here
    return next(iter(conversation.problems(row.get("messages"), row.get("tools"), row.get("tags"),
                                           control_text=False)), "")


def check_unique_ids(raw: Raw, ids: list) -> None:
    """``ValueError`` naming both lines when two rows share an ``id`` but differ in content."""
    first: dict[str, tuple[int, str]] = {}
    for i, (row_id, row) in enumerate(zip(ids, raw.rows)):
        if not isinstance(row_id, str):
            continue
        digest = json.dumps({k: v for k, v in row.items() if k != "id"}, ensure_ascii=False, sort_keys=True)
        seen = first.setdefault(row_id, (i, digest))
        if seen[1] != digest:
            raise ValueError(f"{raw.where(i)}: id: {row_id!r} is already the id of line {raw.lines[seen[0]]} "
                             "with different content; give every sample its own id")


def check_ids_across(ids_by_source: dict[str, np.ndarray]) -> None:
    """``ValueError`` naming both sources when an ``id`` is used by two files or pools (within one
    file a repeated id is a duplicate row that dedup counts)."""
    owner: dict[str, str] = {}
    for name, ids in ids_by_source.items():
        for row_id in dict.fromkeys(ids.tolist()):
            other = owner.setdefault(row_id, name)
            if other != name:
                raise ValueError(f"id {row_id!r} is used by both {other} and {name}; ids must be unique across "
                                 "the sources (rename one)")
