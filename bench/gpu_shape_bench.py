"""QLoRA speed and memory on a randomly initialised Qwen3-4B-shaped model (shapes set speed).

    python bench/gpu_shape_bench.py            # on one CUDA GPU: writes bench/results/gpu_shape_bench.{json,md}
    python bench/gpu_shape_bench.py --smoke    # anywhere (CPU too): tiny shape, tiny batches, runs/bench-smoke/

Rows (``PATHS``, each in its own process, since unsloth patches transformers globally): the
course path (unsloth when importable, else transformers + bitsandbytes; ``helpers.train`` runs
unsloth's fused MLP eagerly, ``bench/mlp_ab_bench.py`` compares), the same with
unsloth's tiled MLP, and the plain path (transformers + PEFT + bitsandbytes NF4, full-logit
loss) with and without bf16 autocast; QLoRA r=16 on all 7 projections, gradient
checkpointing, at 4×1024, 16×1024 and 4×4096: tokens/s, measured peak memory with
``helpers.memory.estimate`` beside it, the first step's loss and LoRA gradient norm (same
seed and tokens, so paths can be compared). Then ~20 real ``SFTTrainer`` steps
(assistant-only loss, bfd packing) through ``helpers.train`` on the course's mixed data.
Exit status 1 if a run failed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPE_4B = dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True)
SHAPE_SMOKE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                   num_key_value_heads=1, head_dim=32, vocab_size=151936, tie_word_embeddings=True)
FULL = dict(shapes=["4x1024", "16x1024", "4x4096"], steps=5, warmup=2, sft_steps=20, sft_batch=4, sft_len=1024)
SMOKE = dict(shapes=["2x64", "4x64"], steps=2, warmup=1, sft_steps=3, sft_batch=2, sft_len=128)
MARK = "BENCH-ROW "  # worker result lines; everything else on stdout is library chatter
TARGET_SHAPE, TARGET_SPEEDUP, TARGET_MEM = "16x1024", 4.0, 0.15


def make_random_model(folder: Path, shape: dict, log=print) -> Path:
    """Save a seeded random Qwen3 with ``shape`` (bf16) and the course tokenizer into ``folder``."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    import helpers

    weights = list(folder.glob("*.safetensors")) if folder.is_dir() else []
    if (folder / "config.json").is_file() and weights:
        return folder
    tok = helpers.load_tokenizer("tiny-qwen3")
    config = Qwen3Config(**shape, max_position_embeddings=8192, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, bos_token_id=None, dtype="bfloat16")
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    start = time.perf_counter()
    with torch.device(device):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    log(f"random model {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B params -> {folder} "
        f"({time.perf_counter() - start:.0f} s)")
    del model
    if device == "cuda":
        torch.cuda.empty_cache()  # the caller measures the card: give its ~16 GiB back
    return folder


def attention_backend(model, route: str) -> str:
    """Which attention kernels ran: unsloth picks xformers, torch's varlen flash, or SDPA one packed sample at a time."""
    if route != "unsloth":
        return getattr(model.config, "_attn_implementation", None) or "default"
    from unsloth.utils import attention_dispatch as ad

    if ad.HAS_XFORMERS:
        import xformers

        return f"xformers {xformers.__version__}"
    return "torch varlen" if ad._TORCH_VARLEN_ATTN is not None else "sdpa, packed rows one sample at a time"


def memory_knobs(route: str) -> dict:
    """What set unsloth's memory: how many hidden states its checkpointing offloaded to CPU RAM
    and the budget of its chunked cross-entropy (half the free memory, at most 4 GiB, by default)."""
    if route != "unsloth":
        return {}
    from unsloth_zoo import gradient_checkpointing as gc
    from unsloth_zoo.fused_losses import cross_entropy_loss as ce

    return {"offloaded_buffers": sum(1 for b in gc.CPU_BUFFERS if b is not None),
            "ce_target_gib": float(ce.TARGET_GB) if ce.TARGET_GB else ce._measured_target_gb()}


def _shape(text: str) -> tuple[int, int]:
    b, s = text.lower().split("x")
    return int(b), int(s)


# course: unsloth (or bitsandbytes without it) as helpers.train builds it; course-tiled: the same with
# TrainConfig.tiled_mlp; plain: transformers + PEFT + bitsandbytes under bf16 autocast, as SFTTrainer
# (bf16=True) runs it; plain-no-amp: the same loop without autocast, where the LoRA matrices, norms,
# residual stream and LM head compute in fp32 (prepare_model_for_kbit_training upcasts them) — the
# setting COURSE.md's reference numbers match (4,336 tok/s at 16×1024), so the target is checked on it.
PATHS = ("course", "course-tiled", "plain", "plain-no-amp")
TARGET_BASELINE = "plain-no-amp"


def setup(path: str, model_dir: str, longest: int) -> dict:
    """Model, optimiser and settings for one of ``PATHS`` in this process (``longest``: the longest sequence)."""
    import torch

    from helpers import train

    from transformers import Trainer, TrainingArguments

    course = path.startswith("course")
    route = train.choose_path(prefer_unsloth=course)
    # the course path keeps the course's optimiser (8-bit AdamW); the plain one is Trainer's default;
    # unsloth sizes its kernels from max_seq_length
    cfg = train.TrainConfig(model=model_dir, r=16, alpha=32, dropout=0.0, gradient_checkpointing=True,
                            max_length=longest, tiled_mlp=path == "course-tiled" and route.name == "unsloth",
                            **({} if course else {"optim": "adamw_torch"}))
    model, tok, route = train.build_model(cfg, route)
    cuda = torch.cuda.is_available()
    params = [p for p in model.parameters() if p.requires_grad]
    opt_args = TrainingArguments(output_dir=str(ROOT / "runs" / "bench-tmp"), optim=cfg.optim, learning_rate=1e-4,
                                 use_cpu=not cuda, report_to=[])
    opt_cls, opt_kwargs = Trainer.get_optimizer_cls_and_kwargs(opt_args, model)  # what SFTConfig(optim=…) builds
    model.train()
    return {"model": model, "route": route, "cfg": cfg, "params": params,
            "opt": opt_cls(params, **opt_kwargs), "device": "cuda" if cuda else "cpu",
            "amp": cuda and path != "plain-no-amp"}


def random_batch(text: str, device: str):
    """Seeded random token ids of shape ``BxS`` (the same for every path)."""
    import torch

    b, s = _shape(text)
    return torch.randint(0, 150000, (b, s), generator=torch.Generator().manual_seed(0)).to(device)


def train_step(run: dict, ids):
    """Forward and backward on ``ids`` (labels = inputs), as SFTTrainer(bf16=True) runs them; the loss tensor."""
    import torch

    with torch.autocast(run["device"], dtype=torch.bfloat16, enabled=run["amp"]):
        loss = run["model"](input_ids=ids, labels=ids).loss  # the model's own loss: full logits unless unsloth
    loss.backward()
    return loss


def optimizer_step(run: dict) -> None:
    """The optimiser's update, then the gradients freed (as Trainer does)."""
    run["opt"].step()
    run["opt"].zero_grad(set_to_none=True)


def worker(path: str, model_dir: str, shapes: list[str], steps: int, warmup: int) -> list[dict]:
    """Time QLoRA steps on random tokens for one of ``PATHS`` in this process."""
    import torch

    from helpers import lora, memory
    from helpers.callbacks import peak_memory_gib

    run = setup(path, model_dir, max(_shape(t)[1] for t in shapes))
    model, route, cfg, params = run["model"], run["route"], run["cfg"], run["params"]
    cuda = run["device"] == "cuda"
    shape = lora.Shape.from_config(model.config)
    label = route.name + (" + tiled MLP" if cfg.tiled_mlp else " + eager MLP" if route.name == "unsloth" else "")
    rows = []
    for text in shapes:
        b, s = _shape(text)
        ids = random_batch(text, run["device"])
        row = {"path": path, "route": label, "optim": cfg.optim,
               "batch": b, "seq": s, "shape": text, "bf16_autocast": run["amp"], "tiled_mlp": cfg.tiled_mlp,
               "attention": attention_backend(model, route.name)}
        try:
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            for i in range(warmup + steps):
                if i == warmup:
                    if cuda:
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                loss = train_step(run, ids)
                if i == 0:  # same seed, same tokens: a check that both paths train the same model
                    row["first_loss"] = loss.item()
                    row["first_grad_norm"] = torch.linalg.vector_norm(
                        torch.stack([p.grad.float().norm() for p in params if p.grad is not None])).item()
                optimizer_step(run)
            if cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            peak, kind = peak_memory_gib()
            est = memory.estimate(shape, r=16, batch=b, seq=s, gradient_checkpointing=True, tiled_mlp=cfg.tiled_mlp,
                                  path="unsloth" if route.name == "unsloth" else "bnb", optim=cfg.optim)
            reserved = torch.cuda.max_memory_reserved() / 1024**3 if cuda else None
            row.update(tokens_per_s=b * s * steps / seconds, peak_gib=peak, mem_kind=kind, reserved_gib=reserved,
                       estimate_gib=est["total"], loss=loss.item(), ok=True, **memory_knobs(route.name))
        except torch.OutOfMemoryError as err:
            row.update(ok=False, error=f"OOM: {str(err).splitlines()[0][:200]}")
        rows.append(row)
        print(MARK + json.dumps(row), flush=True)
    return rows


def sft_run(model_dir: str, steps: int, batch: int, length: int) -> dict:
    """~``steps`` real SFTTrainer steps through ``helpers.train`` on the course's mixed data."""
    import torch

    from helpers import data, lora, memory, train

    cfg = train.TrainConfig(model=model_dir, run="bench-sft", max_steps=steps, batch_size=batch, grad_accum=1,
                            max_length=length, logging_steps=max(1, steps // 4), eval_steps=None,
                            save_steps=None, report_to=(), lr=2e-4)
    model, tok, route = train.build_model(cfg)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = train.build_trainer(cfg, model, tok, (data.ensure_built(), data.load_splits())[1])
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    counter, hist = trainer.course["counter"], trainer.course["throughput"].history
    positions, real, trained = counter.snapshot()
    from helpers.callbacks import peak_memory_gib

    peak, kind = peak_memory_gib()
    est = memory.estimate(lora.Shape.from_config(model.config), r=cfg.r, batch=batch, seq=length,
                          path="unsloth" if route.name == "unsloth" else "bnb", fused_head=True, optim=cfg.optim)
    return {"route": route.name, "attention": attention_backend(model, route.name), "optim": cfg.optim,
            "steps": trainer.state.global_step, "batch": batch,
            "max_length": length, "estimate_gib": est["total"],
            "seconds": seconds, "tokens_per_s": real / seconds, "trained_tokens_per_s": trained / seconds,
            "padding_frac": 1 - real / positions if positions else 0.0, "peak_gib": peak, "mem_kind": kind,
            "log": hist,
            "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h]}


def prepare_run(smoke: bool, out: Path | None, name: str) -> tuple[Path, dict, Path, Path]:
    """(results folder, model shape, the saved random model, an emptied ``<name>.log``) for a run."""
    from helpers import paths

    out = out or (paths.RUNS / "bench-smoke" if smoke else ROOT / "bench" / "results")
    out.mkdir(parents=True, exist_ok=True)
    shape = SHAPE_SMOKE if smoke else SHAPE_4B
    model_dir = make_random_model(paths.RUNS / "bench-models" / ("smoke" if smoke else "qwen3-4b-shape"), shape)
    log_file = out / f"{name}.log"
    log_file.write_text("")
    return out, shape, model_dir, log_file


def spawn(args: list[str], log_file: Path, script: Path = Path(__file__), plain: bool = False) -> list[dict]:
    """Run ``script`` as a worker process; its JSON rows (lines starting with ``MARK``) come back on stdout.
    A ``plain`` worker keeps transformers, trl and peft as they are (no unsloth imported first)."""
    from helpers.environment import UNSLOTH_FIRST_ENV

    cmd = [sys.executable, str(script.resolve()), *args]
    env = {**os.environ, **({UNSLOTH_FIRST_ENV: "0"} if plain else {})}
    with open(log_file, "a") as log:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT, env=env)
    rows = [json.loads(line[len(MARK):]) for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0:
        rows.append({"ok": False, "error": f"worker {args[:2]} exited {proc.returncode}; see {log_file}"})
    return rows


def check(rows: list[dict], sft: dict | None, smoke: bool) -> list[str]:
    """Problems with the results (empty list: all good); the speed/memory target only off --smoke."""
    problems = [r.get("error", "failed") for r in rows if not r.get("ok")]
    for r in rows:
        if r.get("ok") and not (r["tokens_per_s"] > 0 and r["peak_gib"] > 0 and r["estimate_gib"] > 0):
            problems.append(f"non-positive measurement in {r}")
    if not sft or not sft.get("steps"):
        problems.append("the SFTTrainer run did not complete")
    if not smoke:
        by = {(r["path"], r["shape"]): r for r in rows if r.get("ok")}
        c, p = by.get(("course", TARGET_SHAPE)), by.get((TARGET_BASELINE, TARGET_SHAPE))
        if c and p:
            if c["tokens_per_s"] < TARGET_SPEEDUP * p["tokens_per_s"]:
                problems.append(f"target missed: course {c['tokens_per_s']:.0f} tok/s < {TARGET_SPEEDUP}× {TARGET_BASELINE} "
                                f"{p['tokens_per_s']:.0f} at {TARGET_SHAPE}")
            if c["peak_gib"] > TARGET_MEM * p["peak_gib"]:
                problems.append(f"target missed: course peak {c['peak_gib']:.2f} GiB > {TARGET_MEM:.0%} of "
                                f"{TARGET_BASELINE} {p['peak_gib']:.2f} GiB at {TARGET_SHAPE}")
    problems += tiling_mismatches(rows)
    return problems


def tiling_mismatches(rows: list[dict], loss_tol: float = 1e-3, grad_tol: float = 0.02) -> list[str]:
    """The tiled MLP must not change the numbers: same seed and tokens, same step-1 loss and grad norm."""
    by = {(r["path"], r["shape"]): r for r in rows if r.get("ok") and "first_loss" in r}
    out = []
    for (path, shape), t in by.items():
        u = by.get(("course", shape))
        if path != "course-tiled" or not u:
            continue
        dl = abs(t["first_loss"] - u["first_loss"]) / abs(u["first_loss"])
        dg = abs(t["first_grad_norm"] - u["first_grad_norm"]) / u["first_grad_norm"]
        if dl > loss_tol or dg > grad_tol:
            out.append(f"tiled MLP changes step 1 at {shape}: loss {dl:.2e} apart, grad norm {dg:.2%} apart")
    return out


def ratios(rows: list[dict], shape: str = TARGET_SHAPE) -> list[dict]:
    """Every course row against every plain row at ``shape``: speed-up and share of peak memory."""
    ok = [r for r in rows if r.get("ok") and r["shape"] == shape]
    return [{"course": c["path"], "plain": p["path"], "speedup": c["tokens_per_s"] / p["tokens_per_s"],
             "memory_share": c["peak_gib"] / p["peak_gib"]}
            for c in ok if c["path"].startswith("course") for p in ok if p["path"].startswith("plain")]


def markdown(meta: dict, rows: list[dict], sft: dict | None, problems: list[str]) -> str:
    """The results as a Markdown table."""
    lines = [f"# QLoRA shape benchmark ({meta['device']})", "",
             f"Random Qwen3 model {meta['shape']}; r=16 on all 7 projections, gradient checkpointing, "
             f"forward under bf16 autocast (as SFTTrainer with bf16=True), "
             f"{meta['steps']} timed steps after {meta['warmup']} warm-up. {meta['when']}."
             + (f" Note: {meta['note']}." if meta.get("note") else ""), "",
             "Peak GiB is the most memory tensors held (`max_memory_allocated`); reserved adds what "
             "PyTorch's caching allocator kept (`max_memory_reserved`, closer to what nvidia-smi shows).", "",
             "| path | route | optimizer | batch×seq | tokens/s | peak GiB | reserved GiB | estimate GiB | "
             "step-1 loss · grad norm |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("ok"):
            reserved = f"{r['reserved_gib']:.2f}" if r.get("reserved_gib") else "–"
            run = f" (run {r['run']})" if r.get("run") else ""  # rows gathered from more than one run
            lines.append(f"| {r['path']}{run} | {r['route']} | {r.get('optim', '')} | {r['shape']} | "
                         f"{r['tokens_per_s']:,.0f} | {r['peak_gib']:.2f} ({r['mem_kind']}) | {reserved} | "
                         f"{r['estimate_gib']:.2f} | "
                         f"{r.get('first_loss', float('nan')):.4f} · {r.get('first_grad_norm', float('nan')):.4g} |")
        else:
            lines.append(f"| {r.get('path', '?')} | | | {r.get('shape', '')} | failed: {r.get('error', '')[:80]} | | | | |")
    table = ratios(rows)
    if table:
        lines += ["", f"At {TARGET_SHAPE} (target: ≥ {TARGET_SPEEDUP:g}× the tokens/s of {TARGET_BASELINE} at "
                      f"≤ {TARGET_MEM:.0%} of its peak):", "", "| course row | against | speed-up | share of peak |",
                  "|---|---|---|---|"]
        lines += [f"| {t['course']} | {t['plain']} | {t['speedup']:.2f}× | {t['memory_share']:.1%} |" for t in table]
    if sft:
        run = f" (run {sft['run']})" if sft.get("run") else ""
        lines += ["", "## SFTTrainer (assistant-only loss, bfd packing, course mixed data)", "",
                  "| route | attention | optimizer | steps | batch×max_length | real tokens/s | trained tokens/s | "
                  "padding | peak GiB | estimate GiB |",
                  "|---|---|---|---|---|---|---|---|---|---|",
                  f"| {sft['route']}{run} | {sft.get('attention', '?')} | {sft.get('optim', '')} | {sft['steps']} | {sft['batch']}×{sft['max_length']} | "
                  f"{sft['tokens_per_s']:,.0f} | {sft['trained_tokens_per_s']:,.0f} | {sft['padding_frac']:.1%} | "
                  f"{sft['peak_gib']:.2f} ({sft['mem_kind']}) | {sft.get('estimate_gib', float('nan')):.2f} |"]
    lines += ["", "Checks: " + ("all passed" if not problems else "; ".join(problems)), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny shape and batches; runs on CPU")
    ap.add_argument("--out", type=Path, help="results folder (default bench/results, or runs/bench-smoke)")
    ap.add_argument("--shapes", help="comma-separated BxS list, e.g. 4x1024,16x1024")
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--no-sft", action="store_true", help="skip the SFTTrainer run")
    ap.add_argument("--sft-only", action="store_true", help="keep the rows already in --out, redo the SFT run")
    ap.add_argument("--worker", choices=[*PATHS, "sft"], help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    plan = dict(SMOKE if args.smoke else FULL)
    if args.shapes:
        plan["shapes"] = args.shapes.split(",")
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")

    if args.worker in PATHS:
        worker(args.worker, args.model_dir, plan["shapes"], plan["steps"], plan["warmup"])
        return 0
    if args.worker == "sft":
        print(MARK + json.dumps(sft_run(args.model_dir, plan["sft_steps"], plan["sft_batch"], plan["sft_len"])))
        return 0

    import torch

    out, shape, model_dir, log_file = prepare_run(args.smoke, args.out, "gpu_shape_bench")
    common = ["--model-dir", str(model_dir), "--out", str(out)] + (["--smoke"] if args.smoke else []) \
        + (["--shapes", args.shapes] if args.shapes else [])
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (smoke)"
    meta = {"device": device, "shape": shape, "when": time.strftime("%Y-%m-%d"), "smoke": args.smoke,
            "steps": plan["steps"], "warmup": plan["warmup"], "torch": torch.__version__}
    rows, sft = [], None
    if args.sft_only:
        rows = json.loads((out / "gpu_shape_bench.json").read_text())["rows"]
        meta["note"] = "the rows and the SFT run come from two invocations (--sft-only kept the rows)"

    def write() -> str:  # after every stage, so a run cut short still leaves its rows
        problems = check(rows, sft, args.smoke)
        (out / "gpu_shape_bench.json").write_text(json.dumps({"meta": meta, "rows": rows, "ratios": ratios(rows),
                                                              "sft": sft, "problems": problems}, indent=1))
        md = markdown(meta, rows, sft, problems)
        (out / "gpu_shape_bench.md").write_text(md)
        return md

    for path in [] if args.sft_only else args.paths.split(","):
        print(f"▶ {path} path", flush=True)
        rows += spawn(["--worker", path, *common], log_file, plain=path.startswith("plain"))
        write()
    if not args.no_sft:
        print("▶ SFTTrainer run", flush=True)
        got = spawn(["--worker", "sft", *common], log_file)
        sft = next((r for r in got if "steps" in r), None)
        rows += [r for r in got if r.get("ok") is False]
    print(write())
    return 1 if any(not r.get("ok") for r in rows) or sft is None else 0


if __name__ == "__main__":
    sys.exit(main())
