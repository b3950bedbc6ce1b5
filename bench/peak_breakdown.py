"""What holds the peak: one QLoRA step of a ``gpu_shape_bench`` path, its live CUDA tensors at the
moment of peak memory grouped by the Python line that allocated them.

    python bench/peak_breakdown.py --path course --shape 16x1024   # on one CUDA GPU

Writes ``peak_breakdown-<path>-<shape>.{json,md}`` into ``--out`` (default bench/results). Memory
held before the step (4-bit weights, LoRA matrices, optimiser state) is one line; everything the
step allocates is replayed from PyTorch's allocator trace (``torch.cuda.memory._record_memory_history``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gpu_shape_bench import (PATHS, _shape, optimizer_step, prepare_run, random_batch,  # noqa: E402
                                   setup, train_step)

GIB = 1024**3
LIBRARY = ("/torch/", "/contextlib.py", "/functools.py", "/_compile.py", "/_dynamo/")


def _line(frame: dict) -> str:
    return f"{Path(frame['filename']).name}:{frame['line']} {frame['name']}"


def site(frames: list[dict]) -> str:
    """The allocating line: the innermost frame outside torch's own machinery; code that Inductor
    generated is named by the source line that called it (``compiled <- file:line``)."""
    compiled = False
    for f in frames:
        if "torchinductor" in f["filename"]:
            compiled = True
        elif not any(part in f["filename"] for part in LIBRARY):
            return ("compiled <- " if compiled else "") + _line(f)
    if frames:  # only torch frames: name the innermost torch function
        return f"torch {frames[0]['name']}"
    return "autograd engine (no Python frame: a built-in op's backward)"


def replay(trace: list[dict], before: int) -> dict:
    """Walk the allocator trace from ``before`` bytes; the peak and the blocks alive at it, grouped by ``site``."""
    live: dict[int, tuple[int, list[dict]]] = {}
    now = peak = before
    at_peak: dict[int, tuple[int, list[dict]]] = {}
    peak_frames: list[dict] = []
    for e in trace:
        if e["action"] == "alloc":
            live[e["addr"]] = (e["size"], e.get("frames", []))
            now += e["size"]
            if now > peak:
                peak, at_peak, peak_frames = now, dict(live), e.get("frames", [])
        elif e["action"] == "free_completed":
            now -= e["size"]
            live.pop(e["addr"], None)
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for size, frames in at_peak.values():
        g = groups[site(frames)]
        g[0] += size
        g[1] += 1
    rows = sorted(({"site": k, "gib": v[0] / GIB, "blocks": v[1]} for k, v in groups.items()), key=lambda r: -r["gib"])
    return {"before_gib": before / GIB, "peak_gib": peak / GIB, "step_gib": (peak - before) / GIB, "groups": rows,
            "peak_during": [_line(f) for f in peak_frames if not any(p in f["filename"] for p in LIBRARY)][:8]}


def persistent(run: dict) -> dict:
    """GiB held before a step: parameters by dtype and trainability, and the optimiser's state."""
    import torch

    held: dict[str, float] = defaultdict(float)
    seen = set()
    for p in run["model"].parameters():
        if p.data_ptr() in seen or p.device.type != "cuda":
            continue
        seen.add(p.data_ptr())
        held[f"{'trainable' if p.requires_grad else 'frozen'} {str(p.dtype).replace('torch.', '')}"] += \
            p.numel() * p.element_size() / GIB
    for state in run["opt"].state.values():
        for v in state.values():
            if torch.is_tensor(v) and v.is_cuda:
                held["optimiser state"] += v.numel() * v.element_size() / GIB
    return dict(held)


def measure(path: str, model_dir: str, text: str, warmup: int = 2) -> dict:
    """Warm up, then record one step's allocations and replay them."""
    import torch

    _, s = _shape(text)
    run = setup(path, model_dir, s)
    ids = random_batch(text, run["device"])
    for _ in range(warmup):
        train_step(run, ids)
        optimizer_step(run)
    model = run["model"]
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    torch.cuda.memory._record_memory_history(max_entries=2_000_000, stacks="python")
    train_step(run, ids)
    optimizer_step(run)
    torch.cuda.synchronize()
    snap = torch.cuda.memory._snapshot()
    torch.cuda.memory._record_memory_history(enabled=None)
    out = replay(snap["device_traces"][0], before)
    out.update(path=path, shape=text, route=run["route"].name, tiled_mlp=run["cfg"].tiled_mlp,
               measured_peak_gib=torch.cuda.max_memory_allocated() / GIB, held_before=persistent(run),
               lm_head_tied=head is not None and head.weight.data_ptr() == emb.weight.data_ptr(),
               trace_events=len(snap["device_traces"][0]))
    return out


def markdown(r: dict, top: int = 20) -> str:
    lines = [f"# Peak memory of one step: {r['path']} ({r['route']}), {r['shape']}", "",
             f"{r['when']}, {r['device']}. Held before the step {r['before_gib']:.2f} GiB; the step's peak "
             f"{r['peak_gib']:.2f} GiB by trace replay ({r['measured_peak_gib']:.2f} GiB `max_memory_allocated`); "
             f"LM head tied to the embedding: {r['lm_head_tied']}." + (f" Note: {r['note']}." if r.get("note") else ""), "",
             "| held before the step | GiB |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in sorted(r["held_before"].items(), key=lambda kv: -kv[1])]
    lines.append(f"| other (4-bit quantisation constants, buffers) | {r['before_gib'] - sum(r['held_before'].values()):.3f} |")
    lines += ["", f"Allocated by the step and alive at its peak ({r['step_gib']:.2f} GiB), by allocating line:", "",
              "| allocated at | GiB | blocks |", "|---|---|---|"]
    lines += [f"| `{g['site']}` | {g['gib']:.3f} | {g['blocks']} |" for g in r["groups"][:top]]
    rest = r["groups"][top:]
    if rest:
        lines.append(f"| {len(rest)} other lines | {sum(g['gib'] for g in rest):.3f} | {sum(g['blocks'] for g in rest)} |")
    lines += ["", "The peak was reached inside: " + " ← ".join(f"`{f}`" for f in r["peak_during"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", choices=PATHS, default="course")
    ap.add_argument("--shape", default="16x1024")
    ap.add_argument("--out", type=Path, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    import torch

    if not torch.cuda.is_available():
        sys.exit("peak_breakdown needs a CUDA GPU (it reads the CUDA allocator's trace)")
    out, _, model_dir, _ = prepare_run(False, args.out, "peak_breakdown")
    r = measure(args.path, str(model_dir), args.shape)
    r.update(device=torch.cuda.get_device_name(0), when=time.strftime("%Y-%m-%d"), torch=torch.__version__)
    stem = out / f"peak_breakdown-{args.path}-{args.shape}"
    stem.with_suffix(".json").write_text(json.dumps(r, indent=1))
    md = markdown(r)
    stem.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
