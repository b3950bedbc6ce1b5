"""What a short QLoRA run teaches tiny-qwen3, step by step: ``python bench/tiny_finetune.py [--steps 150] [--every 30]``

Trains the ``cpu-tiny`` preset on the course mix (notebook 04's output) and scores, before
training and every ``--every`` steps, the 100 validation rows and 24 general-chat rows with
``helpers.evaluate`` (greedy, 48 new tokens, the 4-bit model as trained): per source
perplexity, JSON-validity, json_keys, exact_match, json_leak. Writes
``bench/results/tiny_finetune.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SHOWN = [("source:json", "json_valid"), ("source:json", "json_keys"), ("tag:json-negative", "json_leak"),
         ("source:json", "perplexity"),
         ("tag:math", "exact_match"), ("source:emoji", "perplexity"), ("forgetting", "perplexity"), ("forgetting", "usable"),
         ("forgetting", "json_leak")]


def main(argv: list[str] | None = None) -> int:
    import datasets

    from helpers import data, evaluate, train, training_evals

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--every", type=int, default=30)
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    cfg = train.TrainConfig.preset_config("cpu-tiny", run="bench-tiny", time_budget_s=None, eval_steps=None,
                                          save_steps=None, report_to=(), max_steps=args.steps)
    model, tok, path = train.build_model(cfg)
    data.ensure_built()
    splits = data.load_splits()
    rows = list(splits["validation"]) + evaluate.general_chat_set(24)

    trainer = train.build_trainer(cfg, model, tok, splits, path)
    curve = training_evals.EvalEvery(tok, rows, every=args.every, max_new_tokens=48,
                                     tracked={f"{b}.{m}": (b, m) for b, m in SHOWN})
    trainer.add_callback(curve)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    meta = {"preset": "cpu-tiny", "lr": cfg.lr, "steps": args.steps, "every": args.every,
            "train_seconds_with_scoring": round(seconds), "validation_rows": len(splits["validation"]),
            "general_rows": 24}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tiny_finetune.json").write_text(json.dumps({"meta": meta, "curve": curve.history}, indent=1))
    head = "| step | " + " | ".join(f"{b} {m}" for b, m in SHOWN) + " |"
    lines = [f"# tiny-qwen3: what cpu-tiny teaches, step by step (lr {cfg.lr:g}, {args.steps} steps)", "", head,
             "|" + "---|" * (len(SHOWN) + 1)]
    for h in curve.history:
        cells = [("–" if h[f"{b}.{m}"] is None else f"{h[f'{b}.{m}']:.3g}" if m == "perplexity"
                  else f"{h[f'{b}.{m}']:.0%}") for b, m in SHOWN]
        lines.append(f"| {h['step']} | " + " | ".join(cells) + " |")
    (RESULTS / "tiny_finetune.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
