"""Read a raw source — JSONL, CSV, a ``save_to_disk`` folder or a hub id — into plain Python rows,
each with the line it starts on, so a bad row is one counted drop or one error naming the file,
the line and the field, before Arrow infers a column type from it.

    >>> raw = read_rows("data/cmath.jsonl")
    >>> raw.columns[:2], raw.lines[:2]
    (['grade', 'input'], [1, 2])
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from datasets import load_dataset, load_from_disk

from .. import paths
from ..jsonl import check_text_file, decode_line, read_jsonl


@dataclass
class Raw:
    """The rows of one source: ``rows[i]`` starts on ``lines[i]`` (a row number for folders and the hub)."""

    name: str
    rows: list[dict]
    lines: list[int]
    columns: list[str] = field(default_factory=list)

    def where(self, i: int) -> str:
        """``file:line`` of row ``i``."""
        return f"{self.name}:{self.lines[i]}"


def _columns(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def read_rows(path: str | Path, *, hub: bool = False, split: str = "train") -> Raw:
    """A raw source as Python rows: JSONL/JSON lines, CSV (every value text), a ``save_to_disk`` folder, or a hub id."""
    if hub:
        try:
            ds = load_dataset(str(path), split=split)
        except Exception as err:  # offline: ConnectionError, DatasetNotFoundError, OSError…
            raise ConnectionError(
                f"could not load {path!r} (split {split!r}) from the Hugging Face Hub: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}\n"
                "Offline? Use SOURCE='local' (the samples in data/), or run once with internet."
            ) from None
        return Raw(str(path), ds.to_list(), list(range(1, len(ds) + 1)), list(ds.column_names))
    path = Path(path)
    name = display_path(path)
    if path.is_dir():
        if not ((path / "dataset_info.json").is_file() and (path / "state.json").is_file()):
            raise ValueError(f"{name} is a folder but not a save_to_disk dataset (no dataset_info.json and "
                             f"state.json); pass a .jsonl or .csv file, or a folder written by save_to_disk")
        ds = load_from_disk(str(path))
        return Raw(name, ds.to_list(), list(range(1, len(ds) + 1)), list(ds.column_names))
    if not path.exists():
        raise FileNotFoundError(f"raw source {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{name}: the file is empty (an empty pool cannot be normalised)")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv"):
        raise ValueError(f"{name}: unknown file type {path.suffix!r}; use .jsonl, .json, .csv or a save_to_disk folder")
    check_text_file(path)
    if suffix == ".csv":
        raw = _read_csv(path, name)
    else:
        numbered = read_jsonl(path)
        raw = Raw(name, [obj for _, obj in numbered], [n for n, _ in numbered], _columns([o for _, o in numbered]))
    if not raw.rows:
        raise ValueError(f"{name}: no rows (the file holds only blank lines"
                         + (" and a header" if raw.columns else "") + ")")
    return raw


def _read_csv(path: Path, name: str) -> Raw:
    """Every CSV record as ``{header: text}``; blank records skipped; a record with more fields than
    the header is an error naming its line (fewer fields: the missing ones are empty, as in pandas)."""
    data = path.read_bytes()
    text_lines = []
    for line_no, raw in enumerate(data.splitlines(keepends=True), 1):
        text, problem = decode_line(raw, line_no)
        if problem:
            raise ValueError(f"{name}:{line_no}: {problem}")
        text_lines.append(text)
    reader = csv.reader(io.StringIO("".join(text_lines), newline=""))
    header, rows, lines, start = None, [], [], 1
    try:
        for record in reader:
            if record and any(f.strip() for f in record):  # pandas skips blank lines too
                if header is None:
                    header = _header(record, name, start)
                elif len(record) > len(header):
                    raise ValueError(f"{name}:{start}: {len(record)} fields, the header has {len(header)} "
                                     f"({', '.join(header)}); quote values that contain commas")
                else:
                    rows.append(dict(zip(header, record + [""] * (len(header) - len(record)))))
                    lines.append(start)
            start = reader.line_num + 1
    except csv.Error as err:
        raise ValueError(f"{name}:{reader.line_num}: malformed CSV ({err})") from None
    return Raw(name, rows, lines, header or [])


def _header(record: list[str], name: str, line: int) -> list[str]:
    header = [h.strip() for h in record]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated or not all(header):
        raise ValueError(f"{name}:{line}: the header needs distinct, non-empty column names, got {record}")
    return header


def display_path(path: Path) -> str:
    """A path relative to the project when it is inside it (shorter in reports)."""
    try:
        return str(path.resolve().relative_to(paths.PROJECT_ROOT.resolve()))
    except ValueError:
        return str(path)
