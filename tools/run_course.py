"""Run the course's notebooks headless with papermill: ``python tools/run_course.py [--jobs N] [names…]``.

Executed copies go to ``runs/executed/``; a table of notebook / seconds / status is
printed and the exit status is non-zero if any notebook failed. With ``--jobs 2`` two
notebooks run at once wherever ``NEEDS`` allows it (on two cores: the light notebooks
01–03 run beside the training of 05).
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import papermill as pm

from helpers import paths

NOTEBOOKS = paths.PROJECT_ROOT / "notebooks"
# what each notebook reads that another writes: 00 builds tiny-qwen3, 04 the dataset, 05 the adapter;
# 06 and 07 take the newest adapter, so 08's (a second training run) comes after both
NEEDS = {"01": ["00"], "02": ["00"], "03": ["00"], "04": ["00"], "05": ["04"], "06": ["05"], "07": ["05"],
         "08": ["06", "07"]}


def notebooks() -> list[Path]:
    """The course notebooks in order (``NN_name.ipynb``)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


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


def _status(path: Path) -> tuple[float, str]:
    """(seconds, "ok" or "FAILED: <last line of the error>") for one notebook; runs in a worker process."""
    start = time.perf_counter()
    try:
        run_notebook(path)
        return time.perf_counter() - start, "ok"
    except Exception as err:  # papermill raises PapermillExecutionError with the cell
        return time.perf_counter() - start, f"FAILED: {str(err).strip().splitlines()[-1][:120]}"


def run_all(chosen: list[Path], jobs: int = 1) -> dict[str, tuple[float, str]]:
    """Run ``chosen`` with up to ``jobs`` at once, each after the notebooks it ``NEEDS`` (when chosen too).

    One job: in numbered order. More: the longest chain first (00 → 04 → 05 → 06 → 08). A notebook
    whose input failed is not run.
    """
    keys = {p.name[:2]: p for p in chosen}
    needs = {k: [n for n in NEEDS.get(k, []) if n in keys] for k in keys}
    chain = {}
    for k in sorted(keys, reverse=True):  # NEEDS points to lower numbers only
        chain[k] = 1 + max((chain[d] for d, ns in needs.items() if k in ns), default=0)
    done: dict[str, tuple[float, str]] = {}
    running = {}
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        while len(done) < len(keys):
            for k in sorted(keys) if jobs == 1 else sorted(keys, key=lambda k: (-chain[k], k)):
                if k in done or k in running.values() or len(running) >= jobs:
                    continue
                if any(done.get(n, (0, ""))[1].startswith(("FAILED", "not run")) for n in needs[k]):
                    done[k] = (0.0, f"not run: {', '.join(needs[k])} failed")
                elif all(n in done for n in needs[k]):
                    print(f"▶ {keys[k].name}", flush=True)  # one line per notebook as it starts
                    running[pool.submit(_status, keys[k])] = k
            if running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    done[running.pop(future)] = future.result()
    return {keys[k].name: done[k] for k in sorted(done)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only notebooks whose name contains one of these")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once (default 1: in order)")
    args = parser.parse_args(argv)
    chosen = [p for p in notebooks() if not args.names or any(n in p.name for n in args.names)]
    total = time.perf_counter()
    rows = run_all(chosen, args.jobs)
    width = max([len(name) for name in rows] + [8])
    print(f"\n{'notebook':<{width}}  {'seconds':>8}  status")
    for name, (secs, status) in rows.items():
        print(f"{name:<{width}}  {secs:8.1f}  {status}")
    print(f"{'total':<{width}}  {time.perf_counter() - total:8.1f}")
    return 0 if rows and all(status == "ok" for _, status in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
