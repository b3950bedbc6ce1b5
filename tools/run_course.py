"""Run the course's notebooks headless with papermill: ``python tools/run_course.py [names…]``.

Executed copies go to ``runs/executed/``; a table of notebook / seconds / status is
printed and the exit status is non-zero if any notebook failed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import papermill as pm

from helpers import paths

NOTEBOOKS = paths.PROJECT_ROOT / "notebooks"


def notebooks() -> list[Path]:
    """The course notebooks in order (``NN_name.ipynb``)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def cells(path: Path) -> list[dict]:
    """A notebook's cells as its JSON holds them (``cell_type``, ``source`` lines, ``metadata``…)."""
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def run_notebook(path: Path, parameters: dict | None = None, out_dir: Path | None = None) -> float:
    """Execute one notebook with papermill; return wall seconds. Raises on a cell error."""
    out_dir = out_dir or paths.output_dir("runs", "executed")
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pm.execute_notebook(
        str(path), str(out_dir / path.name), parameters=parameters or {},
        kernel_name="python3", cwd=str(path.parent), progress_bar=False,
        # the kernel's own start-up log (its local TCP transport notice); cell output is unaffected
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    return time.perf_counter() - start


def failure(err: Exception, width: int = 120) -> str:
    """The status line of a failed notebook: ``FAILED:`` and the last line of papermill's error (the cell's)."""
    return f"FAILED: {str(err).strip().splitlines()[-1][:width]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only notebooks whose name contains one of these")
    args = parser.parse_args(argv)
    chosen = [p for p in notebooks() if not args.names or any(n in p.name for n in args.names)]
    rows, failed = [], 0
    total = time.perf_counter()
    for nb in chosen:
        print(f"▶ {nb.name}", flush=True)  # one line per notebook while it runs; the table follows
        start = time.perf_counter()
        try:
            run_notebook(nb)
            status = "ok"
        except Exception as err:  # papermill raises PapermillExecutionError with the cell
            status = failure(err)
            failed += 1
        rows.append((nb.name, time.perf_counter() - start, status))
    width = max([len(r[0]) for r in rows] + [8])
    print(f"\n{'notebook':<{width}}  {'seconds':>8}  status")
    for name, secs, status in rows:
        print(f"{name:<{width}}  {secs:8.1f}  {status}")
    print(f"{'total':<{width}}  {time.perf_counter() - total:8.1f}")
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
