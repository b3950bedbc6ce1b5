"""Instructor copies: ``python tools/clean_copies.py [--src DIR] [--out DIR]``.

Writes every course notebook without outputs, execution counts or widget state, with
each exercise cell reset to the student version and any cell tagged ``solution`` removed — so a
notebook an instructor ran with the answers filled in becomes a clean hand-out again.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from helpers import paths

DEFAULT_OUT = paths.PROJECT_ROOT / "clean"
STUDENT_NOTEBOOKS = paths.PROJECT_ROOT / "notebooks"
# an exercise cell names its key twice: "# 06.1 — question" and check.answer("06.1", answer)
_KEY = re.compile(r"""check\.answer\(\s*["']([^"']+)["']|^#\s*(\d\d\.\d+)\b""", re.M)


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _exercise_key(cell: dict) -> str | None:
    m = _KEY.search(_source(cell))
    return (m.group(1) or m.group(2)) if m else None


def student_exercises(folder: Path = STUDENT_NOTEBOOKS) -> dict[str, str]:
    """Every exercise cell's source as students get it (``answer = None``), by exercise key."""
    out = {}
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if "exercise" in cell.get("metadata", {}).get("tags", []) and (key := _exercise_key(cell)):
                out[key] = _source(cell)
    return out


def clean_notebook(nb: dict, exercises: dict[str, str] | None = None) -> dict:
    """A copy of notebook JSON ``nb`` with outputs, answers and solutions removed.

    Exercise cells are replaced whole by the student version of the same key, so an answer
    spread over lines or written into the ``check.answer`` call cannot survive.
    """
    exercises = student_exercises() if exercises is None else exercises
    cells = []
    for i, cell in enumerate(nb["cells"]):
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags:
            continue
        cell = {**cell, "metadata": {k: v for k, v in cell.get("metadata", {}).items() if k in ("tags",)}}
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if "exercise" in tags:
                key = _exercise_key(cell)
                if key not in exercises:
                    raise ValueError(f"cell {i}: an exercise cell whose key ({key!r}) is in no student notebook "
                                     f"under {STUDENT_NOTEBOOKS}; untag it or restore its '# NN.N' comment")
                cell["source"] = exercises[key]
        cells.append(cell)
    meta = {k: v for k, v in nb.get("metadata", {}).items() if k in ("kernelspec", "language_info")}
    return {**nb, "cells": cells, "metadata": meta}


def write_clean_copies(src: Path | None = None, out: Path | None = None) -> list[Path]:
    """Clean every ``NN_*.ipynb`` in ``src`` (default notebooks/) into ``out``; return the paths."""
    src, out = Path(src or paths.PROJECT_ROOT / "notebooks"), Path(out or DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    written, exercises = [], student_exercises()
    for path in sorted(src.glob("[0-9][0-9]_*.ipynb")):
        try:
            nb = clean_notebook(json.loads(path.read_text(encoding="utf-8")), exercises)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        target = out / path.name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    if not written:
        raise FileNotFoundError(f"no course notebooks (NN_*.ipynb) in {src}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=None, help="notebooks to clean (default notebooks/)")
    parser.add_argument("--out", type=Path, default=None, help=f"destination (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    for p in write_clean_copies(args.src, args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
