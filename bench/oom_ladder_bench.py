"""The seed's OOM ladder and batch-size table, measured: peak memory of real ``SFTTrainer`` steps
on a randomly initialised Qwen3-4B-shaped model through transformers + PEFT + bitsandbytes, the
route ``helpers.memory.oom_ladder`` estimates (bf16, SFTTrainer's own loss head, LoRA dropout 0.05).

    python bench/oom_ladder_bench.py           # on one CUDA GPU: bench/results/oom_ladder.{json,md}
    python bench/oom_ladder_bench.py --smoke   # anywhere: tiny shape, sequences ÷ 16, runs/bench-smoke/

Each distinct setting of ``memory.ladder_configs()`` and ``memory.batch_configs()`` trains
``STEPS`` optimizer steps on conversations with a random-text reply, cut to exactly ``seq``
tokens (no packing; assistant-only loss); one process per LoRA rank (a model freed in-process
still held memory), checkpointing switched between runs. Exit status 1 if a run failed.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gpu_shape_bench import MARK, prepare_run, spawn  # noqa: E402

STEPS = 3


def distinct_settings() -> list[dict]:
    """The ladder's and the batch table's settings, each once, grouped by LoRA rank (one model each)."""
    from helpers import memory

    seen: dict[str, dict] = {}
    for s in [c for _, c in memory.ladder_configs()] + [c for *_, c in memory.batch_configs()]:
        seen.setdefault(memory.config_key(s), s)
    return sorted(seen.values(), key=lambda s: -s["r"])  # stable: keeps the ladder's order within a rank


def random_rows(tok, batch: int, seq: int, steps: int = STEPS, seed: int = 0):
    """``batch × steps`` conversations whose assistant reply is random text longer than ``seq``
    tokens, so that every row is cut to exactly ``max_length`` (the assistant-only mask applies)."""
    import torch
    from datasets import Dataset

    ids = torch.randint(0, 150000, (batch * steps, 2 * seq), generator=torch.Generator().manual_seed(seed))
    return Dataset.from_dict({"messages": [[{"role": "user", "content": "Say something."},
                                            {"role": "assistant", "content": tok.decode(row)}] for row in ids.tolist()]})


def run(model_dir: str, rank: int, seq_div: int = 1) -> list[dict]:
    """Train every distinct setting with LoRA rank ``rank`` for ``STEPS`` steps; one result row each."""
    import torch

    from helpers import memory, train
    from helpers.callbacks import peak_memory_gib

    route = train.choose_path(prefer_unsloth=False)
    cuda = torch.cuda.is_available()
    model = tok = None
    rows = []
    for s in (s for s in distinct_settings() if s["r"] == rank):
        seq = s["seq"] // seq_div
        cfg = train.TrainConfig(model=model_dir, run="bench-ladder", r=s["r"], alpha=2 * s["r"], max_length=seq,
                                batch_size=s["batch"], grad_accum=1, gradient_checkpointing=s["gradient_checkpointing"],
                                optim=s["optim"], packing=False, max_steps=STEPS, logging_steps=1, eval_steps=None,
                                save_steps=None, report_to=(), lr=2e-4)
        if model is None:
            model, tok, route = train.build_model(cfg, route)
        if not s["gradient_checkpointing"]:
            model.gradient_checkpointing_disable()  # SFTTrainer only ever switches it on
        row = {"key": memory.config_key(s), "settings": s, "seq_run": seq, "route": route.name,
               "estimate_gib": memory.estimate(memory.QWEN3_4B, **s)["total"]}
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            trainer = train.build_trainer(cfg, model, tok, {"train": random_rows(tok, s["batch"], seq)},
                                          route, log=lambda *_: None)
            trainer.train()
            peak, kind = peak_memory_gib()
            row.update(ok=trainer.state.global_step == STEPS, steps=trainer.state.global_step, peak_gib=peak,
                       mem_kind=kind, seconds=time.perf_counter() - start,
                       reserved_gib=torch.cuda.max_memory_reserved() / 1024**3 if cuda else None)
            del trainer
        except torch.OutOfMemoryError as err:
            row.update(ok=False, error=f"OOM: {str(err).splitlines()[0][:200]}")
        model.zero_grad(set_to_none=True)
        gc.collect()
        rows.append(row)
        print(MARK + json.dumps(row), flush=True)
    return rows


def markdown(meta: dict, rows: list[dict]) -> str:
    """The ladder and the batch table with estimated and measured peaks, as ``helpers.memory`` builds them."""
    from helpers import memory

    by = {r["key"]: r for r in rows}

    def cells(settings: dict) -> str:
        r = by.get(memory.config_key(settings), {})
        got = f"{r['peak_gib']:.2f}" if r.get("ok") else "– (see below)"
        reserved = f"{r['reserved_gib']:.2f}" if r.get("reserved_gib") else "–"
        return f"{memory.estimate(memory.QWEN3_4B, **settings)['total']:.2f} | {got} | {reserved}"

    lines = [f"# OOM ladder and batch sizes, measured ({meta['device']})", "",
             f"Random Qwen3 model {meta['shape']}; {meta['route']}; real `SFTTrainer` steps ({STEPS} each, bf16, "
             f"rows cut to exactly max_length tokens, LoRA dropout 0.05); peak = `max_memory_allocated`. {meta['when']}."
             + (f" Note: {meta['note']}." if meta.get("note") else ""),
             "", "| step | estimate GiB | measured peak GiB | reserved GiB |", "|---|---|---|---|"]
    lines += [f"| {step.strip()} | {cells(s)} |" for step, s in memory.ladder_configs()]
    lines += ["", "| batch × grad-accum (1024 tokens, checkpointing, adamw_8bit) | estimate GiB | measured peak GiB | "
              "reserved GiB |", "|---|---|---|---|"]
    lines += [f"| {label} | {cells(s)} |" for label, _, s in memory.batch_configs()]
    lines += [""] + [f"Not measured: {r['key']}: {r.get('error', 'failed')}" for r in rows if not r.get("ok")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny shape, sequences ÷ 16; runs on CPU")
    ap.add_argument("--out", type=Path, help="results folder (default bench/results, or runs/bench-smoke)")
    ap.add_argument("--rank", type=int, help=argparse.SUPPRESS)  # worker: the settings with this LoRA rank
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    seq_div = 16 if args.smoke else 1
    if args.rank:
        run(args.model_dir, args.rank, seq_div)
        return 0
    import torch

    from helpers import train

    out, shape, model_dir, log_file = prepare_run(args.smoke, args.out, "oom_ladder")
    rows = []
    for rank in sorted({s["r"] for s in distinct_settings()}, reverse=True):
        rows += spawn(["--rank", str(rank), "--model-dir", str(model_dir)] + (["--smoke"] if args.smoke else []),
                      log_file, Path(__file__), plain=True)  # the transformers + bitsandbytes route
    meta = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (smoke)",
            "shape": shape, "route": str(train.choose_path(prefer_unsloth=False)), "steps": STEPS,
            "when": time.strftime("%Y-%m-%d"), "smoke": args.smoke, "torch": torch.__version__}
    (out / "oom_ladder.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
    md = markdown(meta, rows)
    (out / "oom_ladder.md").write_text(md)
    print(md)
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
