"""Benchmark: ``helpers.masks.build_labels`` on 10,000 generated conversations, one process.

    .venv/bin/python bench/bench_masks.py [--n 10000] [--repeats 3]

Times the default path (the tokenizer's own template, no ``{% generation %}``: character
offsets) and, on a tenth of the rows, the ``{% generation %}`` path (TRL's training
template, via ``return_assistant_tokens_mask``). Wall and CPU seconds, best of
``--repeats``; writes ``bench/results/masks.json``. The target is <= 10 s per 10,000.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import helpers
from helpers import masks
from helpers.synthetic import synthetic_conversations
from helpers.tiny_qwen3.tokenizer import trl_template

RESULTS = Path(__file__).resolve().parent / "results" / "masks.json"


def timed(fn, repeats: int) -> dict:
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {"wall_s_best": round(min(walls), 2), "wall_s_all": [round(x, 2) for x in walls],
            "cpu_s_best": round(min(cpus), 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    tok = helpers.load_tokenizer("tiny-qwen3")
    rows = synthetic_conversations(args.n, seed=0)
    sizes = [len(r["messages"]) for r in rows]
    tokens = sum(len(s["input_ids"]) for s in masks.build_many(tok, rows[:1000]))

    offsets = timed(lambda: masks.build_many(tok, rows), args.repeats)
    tenth = rows[: max(1, args.n // 10)]
    training = trl_template("qwen3_instruct_2507_training")
    generation = timed(lambda: masks.build_many(tok, tenth, chat_template=training), args.repeats)

    result = {
        "conversations": args.n,
        "messages_per_conversation_mean": round(statistics.mean(sizes), 2),
        "tokens_per_conversation_mean": round(tokens / 1000, 1),
        "offsets_path": offsets,
        "generation_path_per_10k_estimate_wall_s": round(generation["wall_s_best"] * 10_000 / len(tenth), 2),
        "generation_path_rows": len(tenth),
        "target_s": 10,
        "meets_target": offsets["wall_s_best"] * 10_000 / args.n <= 10,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "measured": time.strftime("%Y-%m-%d %H:%M"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
