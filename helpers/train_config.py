"""One training run's settings: ``TrainConfig`` and the presets it starts from (notebook 05).

    cfg = TrainConfig.preset_config("cpu-tiny", run="demo", r=8)
    cfg.effective_batch()          # batch_size × grad_accum = 4 × 1 = 4
    resolve_preset("gpu-16gb")     # every setting the preset gives, as a dict
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import paths
from .names import check_name
from .lora import PROJECTIONS, check_targets


PRESETS: dict[str, dict] = {
    # the tiny model on a laptop CPU: 120 steps × 4 packed rows × 512 tokens ≈ 245k tokens, ~7 passes over
    # the mix; lr 5e-3 because a 20M model takes far larger steps than a 4B one; JSON-validity reaches 50–62 %
    # by step 60 and stays there while general-chat perplexity keeps rising (bench/README.md: tiny_finetune);
    # 600 s is a safety stop, far above the ~2 minutes 120 steps take on 2 cores, so every planned step runs;
    # plain AdamW: its LoRA moments are a few MB, 8-bit would save nothing; no gradient checkpointing: the
    # activations of 4 layers × 2,048 tokens × 128 wide are a few MB, and recomputing them costs ~22 % a step
    "cpu-tiny": dict(model="tiny-qwen3", max_length=512, batch_size=4, grad_accum=1, lr=5e-3,
                     max_steps=120, time_budget_s=600, logging_steps=10, eval_steps=40, save_steps=60,
                     optim="adamw_torch", gradient_checkpointing=False),
    # GPU presets sized by measurement on the course route (bench/results/presets-gpu.md: a Qwen3-4B-shaped
    # model on one H200, each process capped at the card's memory, packed rows in one flash varlen call).
    # 16 rows of 1,024 tokens in one micro-batch: 5.82 GiB peak under a 16 GiB cap, 13,500 real tok/s
    "gpu-16gb": dict(max_length=1024, batch_size=16, grad_accum=1, lr=2e-4),
    # 4 rows of 4,096 (long samples stay whole) × 4 accumulation: 5.92 GiB under 24 GiB, 14,600 real tok/s
    "gpu-24gb": dict(max_length=4096, batch_size=4, grad_accum=4, lr=2e-4),
    # 16 rows of 4,096 in one micro-batch: 15.0 GiB under 80 GiB, 17,000 real tok/s
    "gpu-80gb": dict(max_length=4096, batch_size=16, grad_accum=1, lr=2e-4),
}


@dataclass
class TrainConfig:
    """Everything one run needs: model, quantisation, LoRA, training and output."""

    model: str = "unsloth/Qwen3-4B-Instruct-2507"
    preset: str = "gpu-16gb"
    run: str = "demo"
    # quantisation (QLoRA: NF4 4-bit base, double quant, bf16 compute)
    load_in_4bit: bool = True
    # LoRA
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = PROJECTIONS
    # sequence and batch
    max_length: int = 1024
    batch_size: int = 1
    grad_accum: int = 16
    packing: bool = True
    gradient_checkpointing: bool = True
    # unsloth only: run each MLP in token tiles during backward (less memory for long micro-batches,
    # one more MLP forward per layer)
    tiled_mlp: bool = False
    # optimiser and schedule
    lr: float = 2e-4
    warmup: float = 0.03
    weight_decay: float = 0.01
    scheduler: str = "cosine"
    optim: str = "adamw_8bit"  # the seed's choice: bitsandbytes' 8-bit AdamW moments (GPU)
    epochs: float = 1.0
    max_steps: int = -1
    time_budget_s: float | None = None
    # logging, evaluation, saving
    logging_steps: int = 10
    eval_steps: int | None = 100
    save_steps: int | None = 200
    report_to: tuple[str, ...] = ("tensorboard",)
    seed: int = 42
    extra: dict = field(default_factory=dict)  # passed to SFTConfig as-is

    def __post_init__(self):
        if self.r <= 0:
            raise ValueError(f"LoRA rank r must be a positive integer, got {self.r}")
        if self.alpha <= 0:
            raise ValueError(f"LoRA alpha must be positive, got {self.alpha} (a common choice is 2·r)")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        self.target_modules = check_targets(self.target_modules)
        if min(self.max_length, self.batch_size, self.grad_accum) <= 0:
            raise ValueError("max_length, batch_size and grad_accum must be positive")
        check_name(self.run)  # the run becomes folders under checkpoints/ and runs/

    @classmethod
    def preset_config(cls, name: str, **overrides) -> "TrainConfig":
        """A config from a preset (see ``PRESETS``) with keyword overrides; GPU presets need a GPU."""
        import torch  # lazy: the exercise checks of notebooks 01–04 read presets without torch

        settings = resolve_preset(name, **overrides)
        if name.startswith("gpu") and not torch.cuda.is_available():
            raise RuntimeError(f"preset {name!r} needs a CUDA GPU and none is visible; use PRESET='cpu-tiny'")
        return cls(**settings)

    @property
    def output_dir(self) -> Path:
        return paths.CHECKPOINTS / f"sft-lora-{self.run}"

    @property
    def log_dir(self) -> Path:
        return paths.RUNS / self.run

    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accum

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)


def resolve_preset(name: str, **overrides) -> dict:
    """Every ``TrainConfig`` setting for preset ``name``: defaults, then the preset, then ``overrides``.

    >>> resolve_preset("gpu-24gb")["batch_size"], resolve_preset("gpu-24gb", r=8)["r"]
    (4, 8)
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    unknown = sorted(set(overrides) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown settings {unknown}; TrainConfig has {[f.name for f in fields(TrainConfig)]}")
    defaults = {f.name: getattr(TrainConfig, f.name) for f in fields(TrainConfig) if f.name != "extra"}
    return {**defaults, "extra": {}, "preset": name, **PRESETS[name], **overrides}
