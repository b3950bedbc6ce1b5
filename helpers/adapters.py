"""Find LoRA adapters under ``checkpoints/`` and attach them to a base, with clear errors."""
from __future__ import annotations

import json
from pathlib import Path

from . import paths

PREFIX = "sft-lora-"


def newest_adapter(root: Path | None = None) -> Path | None:
    """The most recently written ``checkpoints/sft-lora-*`` adapter folder, or None."""
    root = Path(root or paths.CHECKPOINTS)
    found = [p.parent for p in root.glob(f"{PREFIX}*/adapter_config.json")]
    return max(found, key=lambda p: (p / "adapter_config.json").stat().st_mtime, default=None)


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
    from peft import PeftModel

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
