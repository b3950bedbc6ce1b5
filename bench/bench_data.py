"""Benchmark: build a ≥ 100,000-conversation mix end to end with ``helpers.data`` (target ≤ 30 s).

    .venv/bin/python bench/bench_data.py [--rows 115000] [--strategy interleave]

``--rows`` counts raw conversations; dedup and the mix (``total_size`` = 0.9 × the weighted
pools) leave about 88 % of them, so 115,000 raw rows give a mix of just over 100,000.

Writes scaled copies of the sample files (same generator as ``data/``) to a temporary
folder, then times ``Pipeline.run`` — normalise, metadata, dedup, save pools, mix, final
dedup, split, export (Arrow + JSONL), token statistics (500-row sample per pool) and
validation — and writes the numbers to ``bench/results/data.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import datasets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project root, for tools/
from helpers import data  # noqa: E402
from tools import make_samples  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "data.json"
TARGET_MIX_ROWS, TARGET_S = 100_000, 30
ROWS_AT_SCALE_1 = sum(len(v) for v in make_samples.make_samples(0, 1.0).values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=115_000, help="raw conversations in all pools")
    parser.add_argument("--strategy", default="interleave", choices=data.STRATEGIES)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        scale = args.rows / ROWS_AT_SCALE_1
        rows = sum(len(v) for v in make_samples.make_samples(0, scale).values())
        counts = make_samples.write_samples(Path(tmp) / "data", scale=scale * args.rows / rows)
        gen_s = time.perf_counter() - t0
        datasets.disable_caching()  # time the work, not a cache hit of an earlier run
        start = time.perf_counter()
        pipe = data.Pipeline(strategy=args.strategy, data_dir=Path(tmp) / "data", out_dir=Path(tmp) / "out")
        timings = {}
        for step in ("normalize", "add_metadata", "dedup", "save_pools", "mix", "final_dedup", "split", "export",
                     "token_stats", "validate"):
            t = time.perf_counter()
            getattr(pipe, step)()
            timings[step] = round(time.perf_counter() - t, 2)
        total = time.perf_counter() - start
    result = {"raw_rows": sum(counts.values()), "mixed_rows": pipe.report["mix"]["rows"],
              "train_rows": pipe.report["split"]["train_rows"],
              "validation_rows": pipe.report["split"]["validation_rows"], "strategy": args.strategy,
              "build_seconds": round(total, 1), "sample_generation_seconds": round(gen_s, 1),
              "steps_seconds": timings, "validation_problems": len(pipe.report["validation_problems"]),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
              "datasets": datasets.__version__, "date": time.strftime("%Y-%m-%d"),
              "target": f"mix of >= {TARGET_MIX_ROWS:,} rows in <= {TARGET_S} s"}
    result["meets_target"] = result["mixed_rows"] >= TARGET_MIX_ROWS and total <= TARGET_S
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
