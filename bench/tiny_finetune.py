"""Does a ≤ 3-minute QLoRA run teach tiny-qwen3 strict JSON? ``python bench/tiny_finetune.py [--lr 5e-3] [--steps 180]``

Trains the ``cpu-tiny`` preset on the course's mixed data (notebook 04), then measures
JSON-validity on the validation JSON prompts and validation perplexity, base vs tuned,
with ``helpers.evaluate``. Appends one line to ``bench/results/tiny_finetune.md``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "tiny_finetune.md"


def main(argv: list[str] | None = None) -> int:
    import datasets

    from helpers import data, evaluate, train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    overrides = {k: v for k, v in (("lr", args.lr), ("max_steps", args.steps)) if v is not None}
    cfg = train.TrainConfig.preset_config("cpu-tiny", run="bench-tiny", time_budget_s=None, eval_steps=None,
                                          save_steps=None, report_to=(), **overrides)
    model, tok, path = train.build_model(cfg)
    data.ensure_built()
    splits = data.load_splits()
    valid = list(splits["validation"])

    def measure(adapter: bool) -> tuple[float, float]:
        with evaluate.adapter_switch(model, adapter):
            ppl = evaluate.perplexity(evaluate.token_nll(model, tok, valid))
        return evaluate.json_validity(model, tok, valid, adapter=adapter)["valid"], ppl

    json_base, ppl_base = measure(False)
    trainer = train.build_trainer(cfg, model, tok, splits, path)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    json_tuned, ppl_tuned = measure(True)
    line = (f"| {cfg.lr:.0e} ({time.strftime('%m-%d')}) | {trainer.state.global_step} | {seconds:.0f} | {json_base:.0%} → {json_tuned:.0%} "
            f"| {ppl_base:,.0f} → {ppl_tuned:.2f} |")
    if not RESULTS.exists():
        RESULTS.write_text("# tiny-qwen3: QLoRA (cpu-tiny) on the course mix, 2-core CPU\n\n"
                           "| lr | steps | train s | JSON-validity base → tuned | validation PPL base → tuned |\n"
                           "|---|---|---|---|---|\n")
    with open(RESULTS, "a") as f:
        f.write(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
