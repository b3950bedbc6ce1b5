"""LoRA adapters under ``checkpoints/``: find them, choose one, attach it to a base, or make a demo.

    path = pick_adapter("", "tiny-qwen3", run="demo")   # newest trained, else a labelled demo
    model = attach(load_model("tiny-qwen3"), path)
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from . import atomic, paths
from .lora import PROJECTIONS
from .models import load_model, load_tokenizer
from .names import check_name

PREFIX = "sft-lora-"
DEMO_PREFIX = "demo-lora-"
DEMO_MARK = "course_demo.json"


def newest_adapter(root: Path | None = None) -> Path | None:
    """The most recently written ``checkpoints/sft-lora-*`` adapter folder, or None."""
    root = Path(root or paths.CHECKPOINTS)
    found = [p.parent for p in root.glob(f"{PREFIX}*/adapter_config.json")]
    return max(found, key=lambda p: (p / "adapter_config.json").stat().st_mtime, default=None)


def run_adapter(run: str) -> Path | None:
    """Notebook 05's adapter for ``run`` (``checkpoints/sft-lora-<run>``), else the newest trained one, else None.

    Preferring the run's own adapter keeps notebook 06 on what 05 trained even after notebook 08
    or a CLI run wrote a newer one.
    """
    own = paths.CHECKPOINTS / f"{PREFIX}{check_name(run)}"
    return own if (own / "adapter_config.json").is_file() else newest_adapter()


def adapter_config(path: str | Path) -> dict:
    """The adapter's ``adapter_config.json``; a clear error when the folder is not an adapter."""
    path = Path(path)
    cfg = path / "adapter_config.json"
    if not cfg.is_file():
        raise FileNotFoundError(
            f"no LoRA adapter at {path} (adapter_config.json missing): run notebook 05 to train one, "
            f"or pass the folder of a saved adapter")
    return json.loads(cfg.read_text())


def attach(model, path: str | Path, name: str = "default", trainable: bool = False):
    """Load the adapter at ``path`` onto ``model`` (a PeftModel is returned or extended)."""
    path = Path(path)
    cfg = adapter_config(path)
    try:
        if isinstance(model, PeftModel):
            model.load_adapter(str(path), adapter_name=name, is_trainable=trainable)
            return model
        return PeftModel.from_pretrained(model, str(path), adapter_name=name, is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError) as err:
        lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
        first = next((ln for ln in lines if "size mismatch" in ln), lines[0] if lines else "")[:300]
        raise ValueError(
            f"adapter {path} does not fit this model: it was trained on "
            f"{cfg.get('base_model_name_or_path')!r} (r={cfg.get('r')}, targets={cfg.get('target_modules')}); "
            f"this model is {getattr(model.config, '_name_or_path', '?')!r} with hidden size "
            f"{getattr(model.config, 'hidden_size', '?')}. PEFT said: {first}"
        ) from None


def demo_adapter(model: str, out: str | Path, seed: int = 0, r: int = 8, alpha: int = 16,
                 targets: tuple[str, ...] = PROJECTIONS, b_std: float = 0.05) -> Path:
    """Save an UNTRAINED demo LoRA adapter for ``model`` into ``out`` and return the folder.

    PEFT initialises B to zero (a fresh adapter changes nothing); here B is drawn from
    N(0, ``b_std``) with ``seed``, so merging visibly changes the logits. A
    ``course_demo.json`` beside the adapter marks it as a demo. ``out`` is written as a whole
    (``atomic.staged``) and must be new, empty or a demo adapter.
    """
    out = Path(out)
    atomic.check_owned(out, (DEMO_MARK,), what="demo adapter folder")
    torch.manual_seed(seed)
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0, bias="none",
                     task_type="CAUSAL_LM")
    peft_model = get_peft_model(load_model(model), cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * b_std)
    with atomic.staged(out, (DEMO_MARK,), what="demo adapter folder") as tmp:
        peft_model.save_pretrained(str(tmp))
        load_tokenizer(model).save_pretrained(str(tmp))
        (tmp / DEMO_MARK).write_text(json.dumps({"demo": True, "trained": False, "model": model, "seed": seed,
                                                 "b_std": b_std, "note": "untrained demo adapter: random LoRA B"},
                                                indent=1))
    return out


def is_demo(path: str | Path) -> bool:
    """True for an adapter written by ``demo_adapter``."""
    return (Path(path) / DEMO_MARK).is_file()


def pick_adapter(adapter: str, model: str, run: str, log=print) -> Path:
    """``adapter`` if given, else the newest ``checkpoints/sft-lora-*``, else a new demo adapter (said so)."""
    if adapter:
        adapter_config(adapter)  # a clear error when the folder is not an adapter
        log(f"adapter: {adapter}" + (" (UNTRAINED demo adapter)" if is_demo(adapter) else ""))
        return Path(adapter)
    newest = newest_adapter()
    if newest is not None:
        log(f"adapter: newest trained adapter {newest}")
        return newest
    out = demo_adapter(model, paths.CHECKPOINTS / f"{DEMO_PREFIX}{check_name(run)}")
    log(f"adapter: no checkpoints/sft-lora-* found (run notebook 05 to train one), so this notebook uses "
        f"an UNTRAINED demo adapter with random weights: {out}")
    return out


def second_adapter(first: Path, model: str, run: str, log=print) -> Path:
    """Another adapter for the same base: an older trained one if any, else a demo with another seed."""
    root, run = paths.CHECKPOINTS, check_name(run)
    others = sorted((p.parent for p in root.glob(f"{PREFIX}*/adapter_config.json")
                     if p.parent.resolve() != Path(first).resolve()),
                    key=lambda p: (p / "adapter_config.json").stat().st_mtime, reverse=True)
    if others:
        log(f"second adapter: trained adapter {others[0]}")
        return others[0]
    out = demo_adapter(model, root / f"{DEMO_PREFIX}{run}-b", seed=1)
    log(f"second adapter: UNTRAINED demo adapter (seed 1): {out}")
    return out
