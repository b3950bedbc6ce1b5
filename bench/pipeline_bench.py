"""What a student's SFTTrainer run reaches on one GPU: the course route against plain TRL, padded and packed.

    python bench/pipeline_bench.py --part course-mix   # one CUDA GPU: bench/results/pipeline_bench-course-mix.{json,md}
    python bench/pipeline_bench.py --part large-mix    # the same on 20,000 synthetic chats of realistic length
    python bench/pipeline_bench.py --part presets      # gpu-16gb / 24gb / 80gb under their memory caps: presets-gpu.*
    python bench/pipeline_bench.py --smoke             # anywhere (CPU too): tiny shape and steps, runs/bench-smoke/

Each row trains a randomly initialised Qwen3-4B-shaped model (``gpu_shape_bench.SHAPE_4B``) with
``helpers.train`` (SFTTrainer, assistant-only loss, max_length 1024), each in its own process:
``course`` (unsloth, bfd packing, packed rows through ``helpers.packed_attention``), ``plain-packed``
(transformers + PEFT + bitsandbytes, bfd packing, SDPA) and ``plain-padded`` (the same without packing,
TRL's default batch of 8), at equal real tokens per optimizer step. Real tokens/s, trained tokens/s,
padding, peak and reserved GiB, and the loss of every step; the timed steps follow ``WARMUP`` untimed ones.
Exit status 1 if a row failed or a target was missed (``--smoke``: only failures count).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gpu_shape_bench import MARK, prepare_run, spawn  # noqa: E402

PATHS = ("course", "plain-packed", "plain-padded")
# rows per optimizer step at max_length: the course route takes them in one micro-batch
ROWS_PER_STEP, MAX_LENGTH, TRL_DEFAULT_BATCH = 16, 1024, 8
PLAN = {  # (micro-batch, steps): plain-padded steps are slow (a few hundred real tokens per micro-batch)
    "course": (16, 12), "plain-packed": (4, 6), "plain-padded": (TRL_DEFAULT_BATCH, 3)}
WARMUP = {"course": 3, "plain-packed": 2, "plain-padded": 1}
SMOKE = dict(rows=2, max_length=128, plan={"course": (2, 3), "plain-packed": (1, 3), "plain-padded": (2, 3)},
             warmup=1, large_rows=60)
LARGE_ROWS = 20_000
PRESET_STEPS, PRESET_ROWS = 5, 3_000  # rows: enough realistic chats to fill gpu-80gb's 16 rows of 4,096
# the GiB each gpu preset is measured under (torch.cuda.set_per_process_memory_fraction), and its ceiling
PRESET_CAPS = {"gpu-16gb": (16, 14.0), "gpu-24gb": (24, 22.0), "gpu-80gb": (80, 76.0)}
TARGETS = {"tokens_per_s": 12_000, "peak_gib": 6.0, "over_packed": 3.0, "over_padded": 8.0, "of_synthetic": 0.65}


def realistic_chats(n: int, seed: int = 0) -> list[dict]:
    """``n`` synthetic chats whose lengths follow real chat data: 1–3 turns, prompts of ~60 and replies
    of ~250 words (log-normal, long tails to a few thousand tokens), a system prompt on a third of them."""
    rng = random.Random(seed)
    words = ("the model reads each token and the loss counts only assistant replies so packing several "
             "samples into one row saves padding while attention must stay inside each sample json tool "
             "call answer question number step result because first then finally value list name").split()

    def text(median: float) -> str:
        k = max(1, min(3000, int(rng.lognormvariate(math.log(median), 0.8))))
        return " ".join(rng.choice(words) for _ in range(k))

    rows = []
    for i in range(n):
        msgs = [{"role": "system", "content": text(20)}] if rng.random() < 0.33 else []
        for _ in range(rng.choice((1, 1, 2, 3))):
            msgs += [{"role": "user", "content": text(60)}, {"role": "assistant", "content": text(250)}]
        rows.append({"id": f"synthetic-{i}", "messages": msgs, "tools": None})
    return rows


def step_clock(counter):
    """A TrainerCallback that records (seconds, real, trained, positions) after every optimizer step."""
    import torch
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self):
            self.marks = []

        def on_step_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            pos, real, trained = counter.snapshot()
            self.marks.append((time.perf_counter(), real, trained, pos))

    return Clock()


def mean_tokens(rows, tok, max_length: int, n: int = 400) -> float:
    """Mean chat-template tokens per sample (cut at ``max_length``) over up to ``n`` rows."""
    from helpers.tool_schemas import tools_list

    picked = rows.select(range(min(n, len(rows))))
    lengths = [len(tok.apply_chat_template(r["messages"], tools=tools_list(r), tokenize=True, return_dict=True)["input_ids"])
               for r in picked]
    return sum(min(x, max_length) for x in lengths) / len(lengths)


def summarize(marks: list, warmup: int) -> dict:
    """Throughput over the steps after ``warmup``: real and trained tokens/s, padding, seconds per step."""
    (t0, r0, tr0, p0), (t1, r1, tr1, p1) = marks[warmup - 1], marks[-1]
    seconds, steps = t1 - t0, len(marks) - warmup
    return {"timed_steps": steps, "seconds_per_step": seconds / steps, "tokens_per_s": (r1 - r0) / seconds,
            "trained_tokens_per_s": (tr1 - tr0) / seconds, "padding_frac": 1 - (r1 - r0) / (p1 - p0),
            "real_tokens_per_step": (r1 - r0) / steps}


def load_mix(kind: str, smoke: bool, n: int | None = None):
    """(train split, description) for ``kind``: the course mix (notebook 04's) or ``n`` ``realistic_chats``."""
    from datasets import Dataset

    from helpers import data

    if kind == "course-mix":
        data.ensure_built()
        # in memory: the trainer's tokenizing map then writes no cache files into the course's dataset folder
        train = Dataset.from_list(data.load_splits()["train"].to_list())
        return train, f"the course mix ({len(train):,} rows; epochs repeat)"
    rows = realistic_chats(SMOKE["large_rows"] if smoke else n or LARGE_ROWS)
    return Dataset.from_list(rows), f"{len(rows):,} synthetic chats of realistic length"


def run(path: str, kind: str, model_dir: str, smoke: bool, batch: int | None = None, steps: int | None = None,
        preset: str | None = None) -> dict:
    """One row: ``path`` on mix ``kind`` in this process (``preset``: that preset's settings under its cap)."""
    import torch

    from helpers import train
    from helpers.callbacks import peak_memory_gib

    cuda = torch.cuda.is_available()
    plan = SMOKE["plan"] if smoke else PLAN
    micro, n_steps = plan[path]
    micro, n_steps = batch or micro, steps or (PRESET_STEPS if preset and not smoke else n_steps)
    warmup = SMOKE["warmup"] if smoke else 2 if preset else WARMUP[path]
    rows, max_length = (SMOKE["rows"], SMOKE["max_length"]) if smoke else (ROWS_PER_STEP, MAX_LENGTH)
    settings = dict(max_length=max_length, batch_size=micro, grad_accum=max(1, rows // micro), dropout=0.0)
    cap = None
    if preset:
        settings = {k: v for k, v in train.resolve_preset(preset).items()
                    if k in ("max_length", "batch_size", "grad_accum", "dropout", "optim", "lr")}
        cap, _ = PRESET_CAPS[preset]
        if cuda:
            torch.cuda.set_per_process_memory_fraction(min(1.0, cap * 2**30 / torch.cuda.get_device_properties(0).total_memory))
    course = path == "course"
    route = train.choose_path(prefer_unsloth=course)
    base = dict(model=model_dir, run=f"bench-pipeline-{path}", max_steps=n_steps, packing=path != "plain-padded",
                logging_steps=1, eval_steps=None, save_steps=None, report_to=(), lr=2e-4,
                optim="adamw_8bit" if course else "adamw_torch")
    tok = None
    train_rows, described = load_mix(kind, smoke, PRESET_ROWS if preset else None)
    if path == "plain-padded":  # equal real tokens per optimizer step: the accumulation that matches packed rows
        from helpers.models import load_tokenizer

        tok = load_tokenizer(model_dir)
        settings["grad_accum"] = max(1, round(rows * max_length / (micro * mean_tokens(train_rows, tok, max_length))))
    cfg = train.TrainConfig(**{**base, **settings})
    model, tok, route = train.build_model(cfg, route)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trainer = train.build_trainer(cfg, model, tok, {"train": train_rows}, route, log=lambda *_: None)
    clock = step_clock(trainer.course["counter"])
    trainer.add_callback(clock)
    from helpers import packed_attention

    start = time.perf_counter()
    trainer.train()
    peak, kind_mem = peak_memory_gib()
    row = {"path": path, "mix": kind, "data": described, "route": route.name,
           "attention": str(packed_attention.attention_route(route.name)),
           "flash_varlen_calls": packed_attention.CALLS["flash_varlen"], "preset": preset, "cap_gib": cap,
           "batch": cfg.batch_size, "grad_accum": cfg.grad_accum, "max_length": cfg.max_length, "optim": cfg.optim,
           "dropout": cfg.dropout, "steps": trainer.state.global_step, "warmup_steps": warmup,
           "train_seconds": time.perf_counter() - start, "peak_gib": peak, "mem_kind": kind_mem,
           "reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if cuda else None,
           "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h], "ok": True,
           "samples_per_row": trainer.course["counter"].samples / max(1, trainer.course["counter"].rows)}
    row.update(summarize(clock.marks, warmup))
    return row


def check(rows: list[dict], synthetic_tps: float | None, smoke: bool) -> list[str]:
    """Failed rows, and (off --smoke, where the three paths ran) the targets the course row missed."""
    problems = [f"{r.get('path')}: {r.get('error', 'failed')}" for r in rows if not r.get("ok")]
    for r in (r for r in rows if r.get("ok") and r.get("preset") and r.get("cap_gib")):
        ceiling = PRESET_CAPS[r["preset"]][1]
        if r["peak_gib"] > ceiling:
            problems.append(f"{r['preset']} peaks at {r['peak_gib']:.2f} GiB: ceiling {ceiling} GiB")
    by = {r["path"]: r for r in rows if r.get("ok") and not r.get("preset")}
    c = by.get("course")
    if smoke or not c:
        return problems
    t = TARGETS
    if c["tokens_per_s"] < t["tokens_per_s"] or c["peak_gib"] > t["peak_gib"]:
        problems.append(f"course {c['tokens_per_s']:,.0f} real tok/s at {c['peak_gib']:.2f} GiB: target ≥ "
                        f"{t['tokens_per_s']:,} at ≤ {t['peak_gib']} GiB")
    for other, need in (("plain-packed", t["over_packed"]), ("plain-padded", t["over_padded"])):
        if other in by and c["tokens_per_s"] < need * by[other]["tokens_per_s"]:
            problems.append(f"course is {c['tokens_per_s'] / by[other]['tokens_per_s']:.2f}× {other}: target ≥ {need:g}×")
    if synthetic_tps and c["tokens_per_s"] < t["of_synthetic"] * synthetic_tps:
        problems.append(f"course is {c['tokens_per_s'] / synthetic_tps:.0%} of the synthetic 16×1024 rate "
                        f"({synthetic_tps:,.0f}): target ≥ {t['of_synthetic']:.0%}")
    return problems


def markdown(meta: dict, rows: list[dict], problems: list[str]) -> str:
    """The rows as a Markdown table, with each row's speed-up over the plain ones."""
    ok = {r["path"]: r for r in rows if r.get("ok") and not r.get("preset")}
    lines = [f"# {meta['title']} ({meta['device']})", "", meta["what"], "",
             "| path | preset | route · attention | batch × accum × max_length | steps (timed) | real tok/s | "
             "trained tok/s | padding | peak GiB | reserved GiB | loss step 1 → last | vs plain-packed | vs plain-padded |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r.get("ok"):
            lines.append(f"| {r.get('path', '?')} | {r.get('preset') or ''} | failed: {r.get('error', '')[:120]} |"
                         + " |" * 10)
            continue
        vs = [f"{r['tokens_per_s'] / ok[p]['tokens_per_s']:.2f}×" if p in ok and not r.get("preset") else ""
              if p != r["path"] else "" for p in ("plain-packed", "plain-padded")]
        reserved = f"{r['reserved_gib']:.2f}" if r.get("reserved_gib") else "–"
        losses = r["losses"]
        lines.append(f"| {r['path']} | {r.get('preset') or ''} | {r['route']} · {r['attention'].split(':')[0]} | "
                     f"{r['batch']} × {r['grad_accum']} × {r['max_length']} | {r['steps']} ({r['timed_steps']}) | "
                     f"{r['tokens_per_s']:,.0f} | {r['trained_tokens_per_s']:,.0f} | {r['padding_frac']:.1%} | "
                     f"{r['peak_gib']:.2f} | {reserved} | {losses[0]:.4f} → {losses[-1]:.4f} | {vs[0]} | {vs[1]} |")
    lines += ["", "Checks: " + ("all passed" if not problems else "; ".join(problems)), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["course-mix", "large-mix", "presets"], default="course-mix")
    ap.add_argument("--smoke", action="store_true", help="tiny shape and steps; runs on CPU")
    ap.add_argument("--out", type=Path, help="results folder (default bench/results, or runs/bench-smoke)")
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    ap.add_argument("--preset", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    if args.worker:
        kind = "large-mix" if args.part == "presets" else args.part
        try:
            row = run(args.worker, kind, args.model_dir, args.smoke, preset=args.preset)
        except Exception as err:  # an OOM under a cap is a result, not a crash
            row = {"ok": False, "path": args.worker, "preset": args.preset, "error": f"{type(err).__name__}: {err}"[:300]}
        print(MARK + json.dumps(row), flush=True)
        return 0

    import torch

    from helpers import memory

    name = "presets-gpu" if args.part == "presets" else f"pipeline_bench-{args.part}"
    out, shape, model_dir, log_file = prepare_run(args.smoke, args.out, name)
    common = ["--part", args.part, "--model-dir", str(model_dir)] + (["--smoke"] if args.smoke else [])
    synthetic = next((r["tokens_per_s"] for r in (memory.load_gpu_bench() or {}).get("rows", [])
                      if r["path"] == "course" and r["shape"] == "16x1024"), None)
    meta = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (smoke)", "shape": shape,
            "part": args.part, "smoke": args.smoke, "torch": torch.__version__, "targets": TARGETS,
            "synthetic_16x1024_tokens_per_s": synthetic,
            "title": "GPU presets, measured" if args.part == "presets" else f"SFTTrainer pipeline: {args.part}",
            "what": (f"Each gpu-* preset's own settings on {PRESET_ROWS:,} synthetic chats of realistic length, the process capped at the preset's memory "
                     "(set_per_process_memory_fraction); peak = max_memory_allocated." if args.part == "presets" else
                     f"Random Qwen3-4B-shaped model, QLoRA r=16 on all 7 projections, assistant-only loss, "
                     f"{ROWS_PER_STEP} rows of {MAX_LENGTH} tokens per optimizer step on every path (plain-padded: "
                     f"batch {TRL_DEFAULT_BATCH} with the accumulation that feeds as many real tokens); "
                     "tokens/s over the steps after the warm-up ones; peak = max_memory_allocated.")}
    rows: list[dict] = []

    def write() -> list[str]:
        problems = check(rows, synthetic, args.smoke)
        (out / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows, "problems": problems}, indent=1))
        (out / f"{name}.md").write_text(markdown(meta, rows, problems))
        return problems

    jobs = ([("course", p) for p in PRESET_CAPS] if args.part == "presets" else
            [(p, None) for p in args.paths.split(",")])
    for path, preset in jobs:
        print(f"▶ {args.part}: {path} {preset or ''}", flush=True)
        got = spawn(["--worker", path, *common] + (["--preset", preset] if preset else []), log_file,
                    Path(__file__), plain=path != "course")
        rows += [r if "path" in r else {**r, "path": path, "preset": preset} for r in got]
        problems = write()
    print((out / f"{name}.md").read_text())
    failed = any(not r.get("ok") for r in rows)
    return 1 if failed or (problems and not args.smoke) else 0


if __name__ == "__main__":
    sys.exit(main())
