"""A peak-VRAM estimator for QLoRA training, from shapes alone.

peak ≈ base weights + LoRA (weights, grads, AdamW states) + activations + logits + overhead

* base weights: the 7 projections of every layer at ``bits`` (NF4 with double quant is
  4.127 bits per weight) and the embedding (and an untied LM head): bf16 on unsloth, fp32 on
  the bitsandbytes path, where ``prepare_model_for_kbit_training`` upcasts them;
* LoRA: ``r·(in+out)`` per targeted projection: fp32 weight and grad, and the two AdamW
  moments in fp32 (``adamw_torch``, 16 bytes a parameter) or 8-bit (``adamw_8bit``, 10 bytes);
* activations, bitsandbytes path: the residual stream is fp32 (it starts at the fp32
  embedding); with gradient checkpointing one hidden state per layer and token plus one
  layer's working set while it is recomputed, without it every layer's set;
  unsloth offloads the checkpointed hidden states to CPU RAM, leaving the recompute working
  set (its MLP part smaller where ``helpers.train`` runs the fused MLP eagerly and its backward
  works in place; one tile wide, traced, with ``tiled_mlp``);
* logits: a plain ``transformers`` loop materialises ``tokens × vocab`` logits and their
  loss/gradient copies (``LOGIT_BYTES`` per entry); under ``SFTTrainer`` the bitsandbytes
  path measured ``TRAINER_LOGIT_BYTES``; unsloth's chunked loss keeps about one tile.

The constants are fitted to the H200 runs in ``bench/results`` (``gpu_shape_bench`` and
``oom_ladder``), which print this estimate beside each measured peak.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import paths
from .lora import PROJECTIONS, QWEN3_4B, Shape, lora_params

GiB = 1024**3
NF4_BITS = 4.127  # 4-bit codes + 8-bit absmax per 64 weights, itself quantised (double quant)
LOGIT_BYTES = 11  # plain loop: logits, their fp32 upcast, log-softmax and gradient, per vocab entry (fitted)
TRAINER_LOGIT_BYTES = 0.6  # SFTTrainer on the bitsandbytes path, per token and vocab entry (fitted)
CHUNK_TOKENS = 128  # unsloth's chunked loss keeps about one fp32 [tokens, vocab] tile and its gradient
BNB_FP32_HIDDEN_PER_LAYER = 14  # fp32 hidden-sized tensors autograd keeps per layer and token (residual,
#                                 RMSNorm's fp32 internals, their gradients) on the bitsandbytes path (fitted)
OVERHEAD_GiB = 0.2  # CUDA workspaces, allocator slack
LORA_BYTES = {"adamw_torch": 16, "adamw_8bit": 10}  # per LoRA parameter: weight + grad + 2 moments
# unsloth with checkpointing, at the backward's peak, per token: bf16 tensors the size of the hidden
# state (residual, norms, Q/K/V/O and their gradients, offload buffers) and of the MLP's inner width
# (gate, up, their product, its gradient, traced as in the tiled MLP); fitted to the H200 rows of bench/results
UNSLOTH_HIDDEN_PER_TOKEN = 22
UNSLOTH_MLP_PER_TOKEN = 4
# helpers.train runs unsloth's fused LoRA MLP eagerly, outside its per-block torch.compile, except
# in the tiled MLP: traced, the SwiGLU backward writes h, df, de into three new (tokens × intermediate)
# tensors; eager, its Triton kernel overwrites its inputs in place (bench/results/peak_breakdown-*.md)
UNSLOTH_MLP_PER_TOKEN_EAGER = 1.5  # the MLP term then (fitted to the H200 rows); the tiles keep the traced 4


def estimate(shape: Shape, *, r: int = 16, targets=PROJECTIONS, batch: int = 1, seq: int = 1024,
             bits: float = NF4_BITS, gradient_checkpointing: bool = True, path: str = "bnb",
             fused_head: bool | None = None, optim: str = "adamw_torch", tiled_mlp: bool = False) -> dict[str, float]:
    """Estimated peak GPU memory in GiB, by component; ``path`` is "unsloth" or "bnb".

    ``fused_head`` (default: True for unsloth, False for bnb) says whether the loss head is
    unsloth's chunked one or, on the bnb path, TRL's ``SFTTrainer`` (True) rather than a plain
    ``transformers`` loop with full logits (False);
    ``optim`` is ``"adamw_torch"`` or ``"adamw_8bit"`` (bitsandbytes' 8-bit moments);
    ``tiled_mlp`` (unsloth only) runs the MLP in tiles of ``hidden`` tokens in backward.
    """
    if path not in ("unsloth", "bnb"):
        raise ValueError(f"path must be 'unsloth' or 'bnb', got {path!r}")
    if optim not in LORA_BYTES:
        raise ValueError(f"optim must be one of {sorted(LORA_BYTES)}, got {optim!r}")
    if min(r, batch, seq) <= 0:
        raise ValueError(f"r, batch and seq must be positive, got r={r}, batch={batch}, seq={seq}")
    fused = (path == "unsloth") if fused_head is None else fused_head
    dims = shape.projection_dims()
    linear = shape.layers * sum(i * o for i, o in dims.values())
    embed = shape.vocab * shape.hidden * (1 if shape.tied else 2)
    full = 2 if path == "unsloth" else 4  # bytes of the embedding and the residual stream
    weights = linear * bits / 8 + embed * full
    lora = lora_params(shape, r, targets) * LORA_BYTES[optim]
    tokens = batch * seq
    q, kv, h, i = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim, shape.hidden, shape.intermediate
    inner = (2 * q + 2 * kv + 5 * i) * 2  # bf16 attention and MLP tensors autograd keeps per layer and token
    if path == "unsloth" and gradient_checkpointing:
        # unsloth offloads the checkpointed hidden states to CPU RAM; what stays is one layer's
        # recompute working set; its MLP part eager over every token, or traced over one tile of
        # ``hidden`` tokens when tiled
        mlp_tokens, per_token = ((min(tokens, h), UNSLOTH_MLP_PER_TOKEN) if tiled_mlp
                                 else (tokens, UNSLOTH_MLP_PER_TOKEN_EAGER))
        acts = (tokens * UNSLOTH_HIDDEN_PER_TOKEN * h + mlp_tokens * per_token * i) * 2
    elif path == "unsloth":  # fused kernels (RMSNorm, RoPE, SwiGLU, LoRA) keep far fewer intermediates
        acts = shape.layers * tokens * (8 * h * 2 + inner) // 16
    else:
        layer_set = tokens * (BNB_FP32_HIDDEN_PER_LAYER * h * 4 + inner)
        acts = shape.layers * tokens * h * full + layer_set if gradient_checkpointing else shape.layers * layer_set
    if not fused:
        logits = tokens * shape.vocab * LOGIT_BYTES
    elif path == "unsloth":
        logits = min(tokens, CHUNK_TOKENS) * shape.vocab * 8
    else:
        logits = tokens * shape.vocab * TRAINER_LOGIT_BYTES
    parts = {"weights": weights, "lora+optimizer": lora, "activations": acts, "logits": logits}
    out = {k: v / GiB for k, v in parts.items()}
    out["overhead"] = OVERHEAD_GiB
    out["total"] = sum(out.values())
    return out


# ----------------------------------------------------------------------------- notebook 05's tables
GPU_BENCH = "bench/results/gpu_shape_bench.json"
LADDER_BENCH = "bench/results/oom_ladder.json"
_LADDER_START = dict(r=16, batch=1, seq=2048, gradient_checkpointing=False, fused_head=True, optim="adamw_torch")
_COURSE_GPU = dict(seq=1024, gradient_checkpointing=True, optim="adamw_8bit")
# the seed's order of things to try when memory runs out, each step on top of the ones before
_LADDER = [("start: batch 1, seq 2048, no checkpointing, r=16, adamw_torch", {}),
           ("1. max_length 2048 → 1024", dict(seq=1024)),
           ("2. keep the effective batch with grad-accum 8 → 16 (batch stays 1)", dict(seq=1024)),
           ("   + gradient checkpointing", dict(seq=1024, gradient_checkpointing=True)),
           ("   + 8-bit AdamW moments (adamw_torch → adamw_8bit)", _COURSE_GPU),
           ("3. lower r 16 → 8 (and alpha)", dict(**_COURSE_GPU, r=8))]
BATCHES = (1, 2, 4, 8)


def ladder_configs() -> list[tuple[str, dict]]:
    """(step, full ``estimate`` settings) for each rung of the OOM ladder on Qwen3-4B."""
    return [(step, {**_LADDER_START, **changes}) for step, changes in _LADDER]


def batch_configs(effective: int = 16) -> list[tuple[str, int, dict]]:
    """(``b×g`` label, grad-accum g, ``estimate`` settings) for per-device batches b of one effective batch."""
    return [(f"{b}×{effective // b}", effective // b, {**_LADDER_START, **_COURSE_GPU, "batch": b}) for b in BATCHES]


def config_key(settings: dict) -> str:
    """One string per distinct setting, the key measured peaks are stored under."""
    return ",".join(f"{k}={settings[k]}" for k in sorted(settings))


def _qwen3_4b_gib(settings: dict) -> float:
    return round(estimate(QWEN3_4B, **settings)["total"], 2)


def _measured(path: str | None = None) -> dict[str, float]:
    res = _read_bench(path or LADDER_BENCH)
    return {r["key"]: round(r["peak_gib"], 2) for r in res["runs"] if r.get("ok")} if res else {}


def oom_ladder(path: str | None = None) -> list[dict]:
    """The seed's OOM ladder for Qwen3-4B (transformers + bitsandbytes under ``SFTTrainer``): the
    estimated peak of each rung and, where ``bench/oom_ladder_bench.py`` has run, the measured one."""
    measured = _measured(path)
    return [{"step": step, "est. peak GiB": _qwen3_4b_gib(c), "measured peak GiB": measured.get(config_key(c))}
            for step, c in ladder_configs()]


def batch_table(effective: int = 16, path: str | None = None) -> list[dict]:
    """Per-device batch × grad-accum splits of one effective batch at 1024 tokens: estimated and measured peaks."""
    measured = _measured(path)
    return [{"config": label, "per_device_batch": c["batch"], "grad_accum": g, "effective": c["batch"] * g,
             "est. peak GiB @1024": _qwen3_4b_gib(c), "measured peak GiB @1024": measured.get(config_key(c)),
             "optimizer updates per 1k samples": 1000 // (c["batch"] * g)}
            for label, g, c in batch_configs(effective)]


def _read_bench(path: str | Path) -> dict | None:
    """A results JSON by its path from the project root (or an absolute one); ``None`` if absent."""
    file = paths.PROJECT_ROOT / path  # an absolute ``path`` stays as it is
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None


def load_gpu_bench(path: str | None = None) -> dict | None:
    """The committed GPU benchmark (``bench/gpu_shape_bench.py``): meta, the rows that ran, the
    course-vs-plain ratios, the SFTTrainer run and the checks; ``None`` before anyone has run it."""
    res = _read_bench(path or GPU_BENCH)
    if res is None:
        return None
    return {"meta": res["meta"], "rows": [r for r in res["rows"] if r.get("ok")], "sft": res.get("sft") or {},
            "ratios": res.get("ratios") or [], "problems": res.get("problems") or []}


def load_results(prefix: str, folder: str = "bench/results") -> list[dict]:
    """The committed results ``<prefix>-*.json`` in ``folder`` (``"peak_breakdown"``: what holds the
    peak; ``"mlp_ab"``: traced against eager fused MLP), one dict per file with its ``name`` added."""
    files = sorted((paths.PROJECT_ROOT / folder).glob(f"{prefix}-*.json"))
    return [{"name": f.stem, **_read_bench(f)} for f in files]
