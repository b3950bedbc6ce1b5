"""Instructor copies: ``python -m helpers.clean_copies [--src DIR] [--out DIR]``.

Writes every course notebook without outputs, execution counts or widget state, with
each exercise reset to ``answer = None`` and any cell tagged ``solution`` removed — so a
notebook an instructor ran with the answers filled in becomes a clean hand-out again.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from . import paths

DEFAULT_OUT = paths.PROJECT_ROOT / "clean"
_ANSWER = re.compile(r"^answer\s*=.*$", re.M)


def clean_notebook(nb: dict) -> dict:
    """A copy of notebook JSON ``nb`` with outputs, answers and solutions removed."""
    cells = []
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags:
            continue
        cell = {**cell, "metadata": {k: v for k, v in cell.get("metadata", {}).items() if k in ("tags",)}}
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if "exercise" in tags:
                src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                cell["source"] = _ANSWER.sub("answer = None", src)
        cells.append(cell)
    meta = {k: v for k, v in nb.get("metadata", {}).items() if k in ("kernelspec", "language_info")}
    return {**nb, "cells": cells, "metadata": meta}


def write_clean_copies(src: Path | None = None, out: Path | None = None) -> list[Path]:
    """Clean every ``NN_*.ipynb`` in ``src`` (default notebooks/) into ``out``; return the paths."""
    src, out = Path(src or paths.PROJECT_ROOT / "notebooks"), Path(out or DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(src.glob("[0-9][0-9]_*.ipynb")):
        nb = clean_notebook(json.loads(path.read_text(encoding="utf-8")))
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
