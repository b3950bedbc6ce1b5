"""Read a raw source — JSONL, CSV, a ``save_to_disk`` folder or a hub id — with errors that
name the file, the line and the field.

    >>> read_raw("data/cmath.jsonl").column_names[:2]
    ['grade', 'input']
"""
from __future__ import annotations

import csv
from pathlib import Path

from datasets import Dataset, load_dataset, load_from_disk

from .. import paths
from ..jsonl import read_jsonl


def read_raw(path: str | Path, *, hub: bool = False, split: str = "train") -> Dataset:
    """A raw source as a ``Dataset``: JSONL/JSON, CSV, a ``save_to_disk`` folder, or a hub id."""
    if hub:
        try:
            return load_dataset(str(path), split=split)
        except Exception as err:  # offline: ConnectionError, DatasetNotFoundError, OSError…
            raise ConnectionError(
                f"could not load {path!r} (split {split!r}) from the Hugging Face Hub: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}\n"
                "Offline? Use SOURCE='local' (the samples in data/), or run once with internet."
            ) from None
    path = Path(path)
    if path.is_dir():
        return load_from_disk(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"raw source {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (an empty pool cannot be normalised)")
    builder = {".jsonl": "json", ".json": "json", ".csv": "csv"}.get(path.suffix.lower())
    if builder is None:
        raise ValueError(f"{path}: unknown file type {path.suffix!r}; use .jsonl, .json, .csv or a save_to_disk folder")
    if builder == "json":
        read_jsonl(path)  # pyarrow's error names neither line nor field
    kwargs = {"keep_default_na": False} if builder == "csv" else {}
    return load_dataset(builder, data_files=str(path), split="train", **kwargs)


def row_lines(path: str | Path) -> list[int] | None:
    """The line each data row of a local JSONL/CSV file starts on (blank lines and quoted
    line breaks counted), so drop reports point at the right line; ``None`` for folders."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.suffix.lower() in (".jsonl", ".json"):  # read_raw has already parsed every line
        with path.open(encoding="utf-8") as f:
            return [line_no for line_no, line in enumerate(f, 1) if line.strip()]
    lines, start = [], 1
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        for record in reader:
            if record and any(field.strip() for field in record):  # pandas skips blank lines too
                lines.append(start)
            start = reader.line_num + 1
    return lines[1:]  # the first record is the header


def display_path(path: Path) -> str:
    """A path relative to the project when it is inside it (shorter in reports)."""
    try:
        return str(path.resolve().relative_to(paths.PROJECT_ROOT.resolve()))
    except ValueError:
        return str(path)
