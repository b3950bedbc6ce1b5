"""Merge a LoRA adapter into a full-precision copy of its base (notebook 07).

    adapter = adapters.pick_adapter("", "tiny-qwen3", run="demo")    # newest trained, else a demo
    out = merge.merge("tiny-qwen3", adapter, merge.merged_dir("demo"))  # checkpoints/merged-demo/
    merged = merge.load_merged(out)                                   # plain AutoModelForCausalLM

``merge`` loads the base in bf16 (fp32 on a CPU, where bf16 matmuls are slow and
inexact), attaches the adapter with PEFT and calls ``merge_and_unload``, which adds
``(alpha/r)·B·A`` to each targeted weight. It never merges into 4-bit weights:
``merge_into_4bit`` does that on purpose, only to measure what gets lost.
"""
from __future__ import annotations

import gc
import json
import time
import warnings
from pathlib import Path

import torch

from peft.utils.integrations import dequantize_bnb_weight
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

from . import adapters, atomic, evaluate, paths
from .cpu_compat import guard_avx512_bf16
from .lora import QWEN3_4B, Shape, lora_params, model_params
from .models import default_dtype, load_model, load_tokenizer, placement, resolve
from .names import check_name

PREFIX = "merged-"
INFO = "merge_info.json"
# Stated tolerance on |merged logits - (base + adapter) logits|. fp32: only the order of
# additions differs (W·x + B·A·x vs (W + B·A)·x). bf16 keeps 8 significant bits, so
# rounding W + B·A to bf16 moves logits of a 36-layer model by up to a few tenths.
TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 0.5, torch.float16: 0.25}


def merge_dtype() -> torch.dtype:
    """The dtype to merge in: bfloat16 on a GPU, float32 on a CPU."""
    return default_dtype()


def release() -> None:
    """Collect garbage and empty the CUDA cache: after ``del model``, its memory is really free
    (Qwen3-4B is 8 GB in bf16, so a 16 GB GPU holds one copy at a time)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def merged_dir(run: str) -> Path:
    """``checkpoints/merged-<run>/`` (not created); ``run`` passes ``names.check_name``."""
    return paths.CHECKPOINTS / f"{PREFIX}{check_name(run)}"


# ----------------------------------------------------------------------------- merge
def is_quantized(model) -> bool:
    """True when any weight of ``model`` is stored by bitsandbytes in 4 or 8 bits."""
    return any(type(p).__name__ in ("Params4bit", "Int8Params") for p in model.parameters())


def base_with_adapter(model: str, adapter: str | Path, dtype: torch.dtype | None = None, name: str = "default"):
    """(PeftModel, tokenizer): the full-precision base (``merge_dtype``) with ``adapter`` attached."""
    base = load_model(model, dtype=dtype or merge_dtype())
    return adapters.attach(base, adapter, name=name).eval(), load_tokenizer(model)


def check_output(out: str | Path, overwrite: bool) -> Path:
    """``out`` when a merge may write it: new or empty, or (with ``overwrite``) a merged model of the
    course (its ``merge_info.json``); else ``FileExistsError``. Nothing is deleted here."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already exists and is not empty; pass overwrite=True "
                              f"(OVERWRITE = True in the notebook) to replace it, or choose another run name")
    return atomic.check_owned(out, (INFO,), what="merge output")


def merge(model: str, adapter: str | Path, out: str | Path, *, overwrite: bool = False,
          max_shard_size: str | int = "5GB", dtype: torch.dtype | None = None) -> Path:
    """Merge ``adapter`` into a full-precision copy of ``model``; save sharded safetensors,
    tokenizer and generation config to ``out``; return ``out``.

    Everything is written into a temporary sibling first and renamed to ``out`` as a whole, so
    ``out`` holds a complete merged model (the old one or the new one), never part of one.
    """
    out = check_output(out, overwrite)  # before any slow loading
    peft_model, tok = base_with_adapter(model, adapter, dtype)
    if is_quantized(peft_model):
        raise ValueError("refusing to merge into quantized (4/8-bit) weights; load the base in bf16/fp32")
    start = time.perf_counter()
    merged = peft_model.merge_and_unload()
    seconds = time.perf_counter() - start
    check_output(out, overwrite)
    tok_src = Path(adapter) if (Path(adapter) / "tokenizer_config.json").is_file() else None
    save_merged(merged, tok.from_pretrained(str(tok_src)) if tok_src else tok, out, base=model, adapter=adapter,
                max_shard_size=max_shard_size, merge_seconds=round(seconds, 2))
    del peft_model, merged
    release()
    return out


def save_merged(merged, tok, out: str | Path, *, base: str, adapter: str | Path,
                max_shard_size: str | int = "5GB", **facts) -> Path:
    """Write a merged model (sharded safetensors), its generation config and ``tok`` into ``out`` as a whole.

    The files go into a temporary sibling renamed to ``out`` at the end; ``merge_info.json``
    (base, adapter, dtype and ``facts``) is written last and marks the folder as the course's.
    """
    out = Path(out)
    with atomic.staged(out, (INFO,), what="merge output") as tmp:
        merged.save_pretrained(str(tmp), max_shard_size=max_shard_size)
        merged.generation_config.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        info = {"base": base, "adapter": str(adapter), "demo_adapter": adapters.is_demo(adapter),
                "dtype": str(merged.dtype).removeprefix("torch."), **facts}
        (tmp / INFO).write_text(json.dumps(info, indent=1))
    return out


def load_merged(path: str | Path, dtype: torch.dtype | None = None):
    """The merged model as a plain ``AutoModelForCausalLM`` (no PEFT), in eval mode."""
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype or merge_dtype(), **placement()).eval()


def folder_bytes(path: str | Path, pattern: str = "*") -> int:
    """Total size of the files matching ``pattern`` in ``path``."""
    return sum(f.stat().st_size for f in Path(path).glob(pattern) if f.is_file())


def size_table(adapter: str | Path, merged: str | Path) -> list[dict]:
    """Weights and whole-folder sizes (MB) of the adapter and the merged model."""
    rows = []
    for label, folder in (("adapter", Path(adapter)), ("merged", Path(merged))):
        rows.append({"what": label, "folder": str(folder), "weight files": len(list(folder.glob("*.safetensors"))),
                     "weights MB": folder_bytes(folder, "*.safetensors") / 1e6, "folder MB": folder_bytes(folder) / 1e6})
    return rows


# ----------------------------------------------------------------------------- proof
def prompt_logits(model, tok, conversations: list[list[dict]]) -> list[torch.Tensor]:
    """Float32 logits (positions × vocab, on the CPU) of each prompt, run one by one (no padding)."""
    device = next(model.parameters()).device
    out = []
    for conv in conversations:
        ids = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=True, return_dict=True,
                                      return_tensors="pt")["input_ids"].to(device)
        with torch.no_grad():
            out.append(model(input_ids=ids).logits[0].float().cpu())
    return out


def logits_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> dict:
    """Max and mean |a - b| over every position and vocabulary entry, and next-token argmax agreement."""
    diffs = [(x - y).abs() for x, y in zip(a, b, strict=True)]
    agree = sum(int((x.argmax(-1) == y.argmax(-1)).sum()) for x, y in zip(a, b))
    positions = sum(x.shape[0] for x in a)
    return {"max_abs_diff": max(float(d.max()) for d in diffs),
            "mean_abs_diff": float(torch.cat([d.flatten() for d in diffs]).mean()),
            "argmax_agree": agree / positions, "positions": positions}


def effect_error(base: list[torch.Tensor], expected: list[torch.Tensor], got: list[torch.Tensor]) -> float:
    """How much of the adapter's effect on the logits is wrong: ‖(got−base) − (expected−base)‖ / ‖expected−base‖."""
    num = sum(float(((g - e) ** 2).sum()) for g, e in zip(got, expected, strict=True))
    den = sum(float(((e - b) ** 2).sum()) for e, b in zip(expected, base, strict=True))
    return (num / den) ** 0.5 if den else float("nan")


def greedy(model, tok, conversations: list[list[dict]], max_new_tokens: int = 32) -> list[str]:
    """Greedy replies of ``model`` to each prompt (``helpers.evaluate.generate``)."""
    return [g["reply"] for g in evaluate.generate(model, tok, conversations, max_new_tokens=max_new_tokens)]


def adapter_replies(peft_model, tok, conversations: list[list[dict]], max_new_tokens: int = 32) -> list[dict]:
    """Greedy replies per prompt with the adapter disabled (``base``) and with each loaded adapter
    switched on in turn by ``set_adapter``."""
    rows = [{"prompt": c[-1]["content"][:60]} for c in conversations]
    with peft_model.disable_adapter():
        for row, reply in zip(rows, greedy(peft_model, tok, conversations, max_new_tokens)):
            row["base"] = reply
    for name in peft_model.peft_config:
        peft_model.set_adapter(name)
        for row, reply in zip(rows, greedy(peft_model, tok, conversations, max_new_tokens)):
            row[name] = reply
    return rows


# ----------------------------------------------------------------------------- the 4-bit mistake
def _lora_layers(model):
    return [(n, m) for n, m in model.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A]


def merge_into_4bit(model: str, adapter: str | Path, conversations: list[list[dict]]) -> dict:
    """Do what the course forbids — merge into the NF4 base — and measure what is lost.

    Each LoRA layer is merged with PEFT's ``merge()`` (what ``merge_and_unload`` calls per
    layer), one at a time so the real model's weights never sit in memory twice. Returns the
    weight-level error of the merged update (‖ΔW_kept − ΔW‖ / ‖ΔW‖ over every targeted layer,
    mean |ΔW| and mean rounding error per weight) and the logit-level error against the
    unmerged 4-bit base + adapter (what QLoRA trained).
    """
    # QLoRA's NF4 storage (as notebook 05 loads it), computing in merge_dtype: fp32 matmuls on a CPU
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=merge_dtype())
    base4 = AutoModelForCausalLM.from_pretrained(resolve(model), quantization_config=quant, dtype=merge_dtype(),
                                                 **placement()).eval()
    guard_avx512_bf16(base4)
    tok = load_tokenizer(model)
    logits_base = prompt_logits(base4, tok, conversations)
    peft4 = adapters.attach(base4, adapter).eval()
    guard_avx512_bf16(peft4)
    logits_ref = prompt_logits(peft4, tok, conversations)

    def weight(m):
        w = m.get_base_layer().weight
        return dequantize_bnb_weight(w, state=w.quant_state).float()

    err2 = ref2 = abs_delta = abs_err = 0.0
    unchanged = total = 0
    layers = _lora_layers(peft4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _, m in layers:
            w0, delta = weight(m), m.get_delta_weight("default").float()
            m.merge()  # de-quantise, add (alpha/r)·B·A, quantise again
            guard_avx512_bf16(m)
            kept = weight(m) - w0
            err2 += float(((kept - delta) ** 2).sum())
            ref2 += float((delta ** 2).sum())
            abs_delta += float(delta.abs().sum())
            abs_err += float((kept - delta).abs().sum())
            unchanged += int((kept == 0).sum())
            total += kept.numel()
    logits_m4 = prompt_logits(peft4, tok, conversations)  # merged layers now run their base weight only
    del peft4, base4
    release()
    return {"layers": len(layers), "delta_rel_error": (err2 / ref2) ** 0.5 if ref2 else float("nan"),
            "weights_unchanged": unchanged / total if total else float("nan"),
            "delta_abs_mean": abs_delta / total if total else float("nan"),
            "rounding_abs_mean": abs_err / total if total else float("nan"),
            "logits_vs_unmerged": logits_diff(logits_m4, logits_ref),
            "adapter_shift": logits_diff(logits_ref, logits_base)["max_abs_diff"],
            "effect_error": effect_error(logits_base, logits_ref, logits_m4),
            "peft_warnings": sorted({str(w.message) for w in caught if "4-bit" in str(w.message)})}


def real_model_sizes(r: int = 16, shape: Shape = QWEN3_4B) -> dict:
    """Bytes on disk for Qwen3-4B: the bf16 merged model and a LoRA adapter of rank ``r`` (fp32 and bf16)."""
    n, lora = model_params(shape), lora_params(shape, r)
    return {"params": n, "lora_params": lora, "merged_bf16_GB": 2 * n / 1e9,
            "adapter_fp32_MB": 4 * lora / 1e6, "adapter_bf16_MB": 2 * lora / 1e6}
