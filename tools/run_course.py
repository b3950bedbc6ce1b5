"""Run the course's notebooks headless with papermill: ``python tools/run_course.py [names…]``.

Executed copies go to ``runs/executed/``; a table of notebook / seconds / status is
printed and the exit status is non-zero if any notebook failed. Two notebooks run at
a time where one does not need the other's output (``NEEDS``); ``--jobs 1`` runs one.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

import papermill as pm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python tools/run_course.py` puts only tools/ on it

from helpers import paths  # noqa: E402
from tools.kernel_client import PolledKernelManager  # noqa: E402

NOTEBOOKS = paths.PROJECT_ROOT / "notebooks"
# what each notebook reads that an earlier one writes: 00 builds tiny-qwen3 (and shows it), 04 the dataset,
# 05 the adapter that 06 and 07 load; 08 trains an adapter of its own, which 07 would take as the newest
NEEDS = {"01": ("00",), "02": ("00",), "03": ("00",), "04": ("00",), "05": ("04",), "06": ("05",),
         "07": ("05",), "08": ("04", "07")}


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
        # the kernel's own log: its transport notice at start, and "KeyboardInterrupt caught" when the interrupt
        # jupyter_client sends before every shutdown lands mid-message; cell output and cell errors are unaffected
        extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        kernel_manager_class=PolledKernelManager,  # no endless wait on a reply already in the queue
    )
    return time.perf_counter() - start


def failure(err: Exception, width: int = 120) -> str:
    """The status line of a failed notebook: ``FAILED:`` and the last line of papermill's error (the cell's)."""
    return f"FAILED: {str(err).strip().splitlines()[-1][:width]}"


def timed_run(path: Path, parameters: dict | None = None, out_dir: Path | None = None,
              width: int = 120) -> tuple[float, str]:
    """``(seconds, status)`` of one ``run_notebook``: ``ok`` or ``failure``'s line; never raises."""
    start = time.perf_counter()
    try:
        run_notebook(path, parameters=parameters, out_dir=out_dir)
        status = "ok"
    except Exception as err:  # papermill raises PapermillExecutionError with the cell
        status = failure(err, width=width)
    return time.perf_counter() - start, status


def run_all(chosen: list[Path], jobs: int = 2, run: Callable[[Path], tuple[float, str]] = timed_run,
            log=print) -> dict[str, tuple[float, str]]:
    """Run ``chosen`` in worker processes, up to ``jobs`` at once, each after the chosen notebooks it ``NEEDS``.

    Of the notebooks ready to start, one that others wait for goes first (04 before 01; with one job,
    the order of the numbers); one whose needs did not succeed is not run. ``run`` (a module-level
    function) returns ``(seconds, status)``.

        results = run_all(notebooks(), jobs=2)   # {"00_setup.ipynb": (41.2, "ok"), …}
    """
    key = {p.name[:2]: p for p in chosen}
    needs = {k: [n for n in NEEDS.get(k, ()) if n in key] for k in key}
    waited_for = {k: sum(k in v for v in needs.values()) for k in key}
    pending, running, done = sorted(key), {}, {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            for k in [k for k in pending if any(n in done and done[n][1] != "ok" for n in needs[k])]:
                pending.remove(k)
                done[k] = (0.0, f"not run: needs {', '.join(needs[k])}")
            ready = sorted((k for k in pending if all(n in done for n in needs[k])),
                           key=lambda k: (-waited_for[k] if jobs > 1 else 0, k))  # one at a time: in order
            for k in ready[:jobs - len(running)]:
                log(f"▶ {key[k].name}")  # one line per notebook as it starts; the table follows
                pending.remove(k)
                running[pool.submit(run, key[k])] = k
            if running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    done[running.pop(future)] = future.result()
    return {key[k].name: done[k] for k in sorted(done)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only notebooks whose name contains one of these")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="notebooks at once (default 2)")
    args = parser.parse_args(argv)
    chosen = [p for p in notebooks() if not args.names or any(n in p.name for n in args.names)]
    if args.jobs > 1:  # waiting OpenMP threads sleep instead of spinning on the cores the other notebook uses
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    total = time.perf_counter()
    try:
        rows = run_all(chosen, jobs=max(1, args.jobs), log=lambda line: print(line, flush=True))
    except KeyboardInterrupt:  # Ctrl-C reaches the workers and their kernels too; they stop with it
        print("interrupted")
        return 130
    width = max([len(name) for name in rows] + [8])
    print(f"\n{'notebook':<{width}}  {'seconds':>8}  status")
    for name, (secs, status) in rows.items():
        print(f"{name:<{width}}  {secs:8.1f}  {status}")
    print(f"{'total':<{width}}  {time.perf_counter() - total:8.1f}")
    return 1 if not rows or any(status != "ok" for _, status in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
