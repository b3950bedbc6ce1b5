"""Read JSON Lines with errors that name the file, the line and what was expected.

UTF-8 only (a leading byte-order mark is accepted); compressed or binary files, bytes that
are not UTF-8, malformed JSON and an object with the same key twice are each one clear line.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

BINARY_MAGIC = {b"\x1f\x8b": "gzip-compressed (decompress it first: gunzip)", b"PK\x03\x04": "a zip archive",
                b"BZh": "bzip2-compressed", b"\xfd7zXZ": "xz-compressed", b"(\xb5/\xfd": "zstd-compressed",
                b"PAR1": "a Parquet file"}


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def check_text_file(path: str | Path) -> Path:
    """``path`` when it is a readable text file; ``ValueError`` for a folder, a missing file or
    compressed/binary data (UTF-8 is checked line by line by the readers)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a file (pass a .jsonl/.csv file, or a save_to_disk folder "
                         f"where a dataset folder is accepted)")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    with path.open("rb") as f:
        head = f.read(8)
    for magic, what in BINARY_MAGIC.items():
        if head.startswith(magic):
            raise ValueError(f"{path}:1: the file is {what}, not UTF-8 text")
    return path


def decode_line(raw: bytes, line_no: int) -> tuple[str | None, str | None]:
    """(text, None) for a UTF-8 line (a BOM on line 1 removed), or (None, problem) saying where it breaks."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, (f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}; "
                      "re-save the file as UTF-8, e.g. from Latin-1)")
    return (text.removeprefix("\ufeff") if line_no == 1 else text), None


def iter_jsonl(path: str | Path, skip_blank: bool = True) -> Iterator[tuple[int, dict | None, str | None]]:
    """``(line number, object, None)`` per line, or ``(line number, None, problem)`` for a bad one."""
    path = check_text_file(path)
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, 1):
            line, problem = decode_line(raw, line_no)
            if problem:
                yield line_no, None, problem
                continue
            if skip_blank and not line.strip():
                continue
            try:
                obj = json.loads(line, object_pairs_hook=_no_duplicates)
            except _DuplicateKey as err:
                yield line_no, None, f"duplicate key {err.args[0]!r} in one JSON object (which value is meant?)"
                continue
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
