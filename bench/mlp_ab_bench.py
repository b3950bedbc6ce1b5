"""unsloth's fused LoRA MLP traced (its default on torch ≥ 2.11) against eager (helpers.unsloth_patches), in one process.

    python bench/mlp_ab_bench.py                  # one CUDA GPU with unsloth: bench/results/mlp_ab-longest4096.{json,md}
    python bench/mlp_ab_bench.py --longest 1024 --plan 4x1024:traced,4x1024:eager,...

One course-path model (``gpu_shape_bench``'s random Qwen3-4B shape and set-up, unsloth sized for
``--longest`` tokens). Each segment of the plan routes every fused-MLP call one way (``eager``:
``helpers.train``'s dispatch; ``traced``: unsloth's own ``fast_lora._apply``) and times 8 steps
after 2 (the first pays any recompilation). The modes alternate, so a card that drifts shows as
drift, not as a difference between them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_shape_bench as bench  # noqa: E402  (also puts the project root on sys.path)

PLAN = "4x1024:traced,16x1024:traced,16x1024:eager,16x1024:traced,4x1024:eager,4x1024:traced,16x1024:eager"
WARMUP, STEPS = 2, 8


def parse_plan(text: str) -> list[tuple[str, str]]:
    """``"4x1024:traced,16x1024:eager"`` → ``[("4x1024", "traced"), ("16x1024", "eager")]``."""
    plan = []
    for item in text.split(","):
        shape, _, mode = item.partition(":")
        if mode not in ("traced", "eager"):
            raise ValueError(f"plan item {item!r}: the mode after ':' must be 'traced' or 'eager'")
        try:
            bench._shape(shape)
        except ValueError:
            raise ValueError(f"plan item {item!r}: the shape before ':' must be BxS, e.g. 4x1024") from None
        plan.append((shape, mode))
    return plan


def segment(run: dict, shape: str, mode: str, dispatch) -> dict:
    """Time ``WARMUP + STEPS`` steps at ``shape`` with the fused MLP ``mode``; ``dispatch``: helpers.unsloth_patches'."""
    import torch
    from unsloth.kernels import fast_lora

    from helpers.callbacks import peak_memory_gib

    fast_lora._apply = dispatch if mode == "eager" else dispatch.traced  # a guarded global: recompiles once
    b, s = bench._shape(shape)
    ids = bench.random_batch(shape, "cuda")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(WARMUP + STEPS):
        torch.cuda.synchronize()
        start = time.perf_counter()
        bench.train_step(run, ids)
        bench.optimizer_step(run)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    timed = times[WARMUP:]
    return {"shape": shape, "mlp": mode, "tokens_per_s": b * s * STEPS / sum(timed),
            "median_step_s": sorted(timed)[STEPS // 2], "steps_s": [round(t, 3) for t in times],
            "peak_gib": peak_memory_gib()[0]}


def markdown(meta: dict, rows: list[dict]) -> str:
    """The segments as a Markdown table, in the order they ran."""
    lines = [f"# Fused LoRA MLP: traced against eager, one process ({meta['device']})", "",
             f"{meta['how']} {meta['when']}.", "",
             "| # | batch×seq | MLP | tokens/s | median step s | peak GiB | first two steps s |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {i} | {r['shape']} | {r['mlp']} | {r['tokens_per_s']:,.0f} | {r['median_step_s']:.3f} | "
              f"{r['peak_gib']:.2f} | {r['steps_s'][0]:.1f}, {r['steps_s'][1]:.1f} |" for i, r in enumerate(rows, 1)]
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", default=PLAN, help="comma-separated BxS:mode, mode traced or eager")
    ap.add_argument("--longest", type=int, default=4096, help="unsloth's max_seq_length")
    ap.add_argument("--out", type=Path, default=bench.ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    plan = parse_plan(args.plan)
    import torch

    if not torch.cuda.is_available():
        sys.exit("mlp_ab_bench needs a CUDA GPU and unsloth (the fused MLP is unsloth's)")
    from helpers import paths

    model_dir = bench.make_random_model(paths.RUNS / "bench-models" / "qwen3-4b-shape", bench.SHAPE_4B)
    run = bench.setup("course", str(model_dir), args.longest)
    if run["route"].name != "unsloth":
        sys.exit(f"mlp_ab_bench needs unsloth; the course path here is {run['route'].name}")
    from unsloth.kernels import fast_lora

    dispatch = fast_lora._apply  # installed by helpers.train.build_model (helpers.unsloth_patches)
    rows = []
    for shape, mode in plan:
        rows.append(segment(run, shape, mode, dispatch))
        print(json.dumps(rows[-1]), flush=True)
    meta = {"device": torch.cuda.get_device_name(0), "when": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
            "longest": args.longest, "plan": args.plan, "warmup": WARMUP, "steps": STEPS,
            "how": f"One process, unsloth sized for {args.longest} tokens; {WARMUP} steps then {STEPS} timed "
                   "per segment, segments in the order listed."}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"mlp_ab-longest{args.longest}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    stem.with_suffix(".md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
