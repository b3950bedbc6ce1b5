"""QLoRA training for notebook 05: one config, three model paths, TRL's SFTTrainer.

    cfg = TrainConfig.preset_config("cpu-tiny", run="demo")
    model, tok, path = build_model(cfg)          # 4-bit base + LoRA; path says which route ran
    trainer = build_trainer(cfg, model, tok, splits)
    trainer.train(); save_adapter(trainer, cfg)   # -> checkpoints/sft-lora-<run>/

Paths: CUDA + unsloth → ``FastLanguageModel`` (4-bit) + its ``get_peft_model``; CUDA
without unsloth → transformers + ``BitsAndBytesConfig`` (NF4, double quant, bf16 compute)
+ ``prepare_model_for_kbit_training`` + PEFT; CPU → the same bitsandbytes route (NF4
works on CPU) with the fixes of ``helpers.cpu_compat``.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import paths
from .memory import PROJECTIONS

PRESETS: dict[str, dict] = {
    # The embedded tiny model on a laptop CPU: short sequences, a much larger learning rate
    # (a 20M model, not 4B) and 180 steps: about 2.6 minutes on 2 quiet cores; the time
    # budget stops it at 3 minutes on a slower machine. Measured: lr 5e-3 → JSON-validity
    # 0 % → 90 %, lr 1e-2 → 80 %; 120 steps → 56 % (bench/results/tiny_finetune.md).
    # Plain AdamW there: the tiny model's LoRA moments are a few MB, 8-bit would save nothing.
    "cpu-tiny": dict(model="tiny-qwen3", max_length=512, batch_size=4, grad_accum=1, lr=5e-3,
                     max_steps=180, time_budget_s=175, logging_steps=10, eval_steps=60, save_steps=60,
                     optim="adamw_torch"),
    # The seed's tables (RTX 4080 16 GB: batch 1 × grad-accum 16 at 1k tokens), then bigger cards.
    "gpu-16gb": dict(max_length=1024, batch_size=1, grad_accum=16, lr=2e-4),
    "gpu-24gb": dict(max_length=1024, batch_size=4, grad_accum=4, lr=2e-4),
    "gpu-80gb": dict(max_length=2048, batch_size=8, grad_accum=2, lr=2e-4),
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
    # one more MLP forward per layer; bench/results/gpu_shape_bench.md measures both)
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
        self.target_modules = tuple(self.target_modules)
        if self.r <= 0:
            raise ValueError(f"LoRA rank r must be a positive integer, got {self.r}")
        if self.alpha <= 0:
            raise ValueError(f"LoRA alpha must be positive, got {self.alpha} (a common choice is 2·r)")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        unknown = sorted(set(self.target_modules) - set(PROJECTIONS))
        if unknown or not self.target_modules:
            raise ValueError(f"unknown target modules {unknown or '(none chosen)'}; choose from {list(PROJECTIONS)}")
        if min(self.max_length, self.batch_size, self.grad_accum) <= 0:
            raise ValueError("max_length, batch_size and grad_accum must be positive")
        if not self.run or "/" in self.run:
            raise ValueError(f"run name must be a non-empty name without '/', got {self.run!r}")

    @classmethod
    def preset_config(cls, name: str, **overrides) -> "TrainConfig":
        """A config from a preset (see ``PRESETS``) with keyword overrides; GPU presets need a GPU."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        if name.startswith("gpu"):
            import torch

            if not torch.cuda.is_available():
                raise RuntimeError(f"preset {name!r} needs a CUDA GPU and none is visible; use PRESET='cpu-tiny'")
        return cls(**{"preset": name, **PRESETS[name], **overrides})

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


@dataclass
class TrainPath:
    """Which route builds the model, and why."""

    name: str  # "unsloth" | "bnb-cuda" | "bnb-cpu"
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def choose_path(prefer_unsloth: bool = True) -> TrainPath:
    """The route this machine takes (``helpers.environment.training_path``); the plain one if asked."""
    from .environment import training_path

    name, reason = training_path()
    if name == "unsloth" and not prefer_unsloth:
        name, reason = "bnb-cuda", "CUDA GPU, unsloth not requested: transformers + bitsandbytes NF4 + PEFT"
    if name == "bnb-cpu":
        reason += "; avx512_bf16 guard on, PyTorch loss head instead of TRL's Triton kernel"
    return TrainPath(name, reason)


def lora_config(cfg: TrainConfig):
    """The PEFT ``LoraConfig`` for ``cfg``."""
    from peft import LoraConfig

    return LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, bias="none",
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")


def bnb_config():
    """QLoRA's quantisation: NF4 4-bit weights, double quantisation, bf16 compute."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)


def load_base(cfg: TrainConfig, path: TrainPath | None = None):
    """The frozen base model for ``cfg`` (4-bit unless ``load_in_4bit=False``) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from .models import load_tokenizer, resolve

    path = path or choose_path()
    tok = load_tokenizer(cfg.model)
    on_gpu = path.name != "bnb-cpu"
    kwargs = {"dtype": torch.bfloat16 if on_gpu else torch.float32}
    if cfg.load_in_4bit:
        kwargs["quantization_config"] = bnb_config()
    if on_gpu:
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(resolve(cfg.model), **kwargs)
    if path.name == "bnb-cpu":
        from .cpu_compat import guard_avx512_bf16

        guard_avx512_bf16(model)
    return model, tok


def build_model(cfg: TrainConfig, path: TrainPath | None = None):
    """(peft_model, tokenizer, path): the 4-bit base with LoRA adapters attached, ready to train."""
    path = path or choose_path()
    if path.name == "unsloth":
        return (*_build_unsloth(cfg), path)
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import set_seed

    if cfg.tiled_mlp:
        warnings.warn(f"tiled_mlp is an unsloth feature; route {path.name} trains without it", stacklevel=2)
    model, tok = load_base(cfg, path)
    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    set_seed(cfg.seed)  # LoRA's A matrices are drawn here; unsloth's random_state does the same
    model = get_peft_model(model, lora_config(cfg))
    if path.name == "bnb-cpu":
        from .cpu_compat import guard_avx512_bf16

        guard_avx512_bf16(model)
    return model, tok, path


def _build_unsloth(cfg: TrainConfig):
    import unsloth  # noqa: F401  (must patch transformers/peft/trl before they are used)
    from unsloth import FastLanguageModel

    from .models import resolve

    model, tok = FastLanguageModel.from_pretrained(
        model_name=resolve(cfg.model), max_seq_length=cfg.max_length, dtype=None,
        load_in_4bit=cfg.load_in_4bit, unsloth_tiled_mlp=cfg.tiled_mlp,
    )
    model = FastLanguageModel.get_peft_model(
        model, r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, bias="none",
        target_modules=list(cfg.target_modules), random_state=cfg.seed,
        use_gradient_checkpointing="unsloth" if cfg.gradient_checkpointing else False,
    )
    _fused_mlp_eager()
    if cfg.tiled_mlp:
        _fused_mlp_out_of_place(model)
    return model, tok


def _fused_mlp_eager() -> None:
    """Run unsloth's fused LoRA MLP outside its per-block ``torch.compile`` when the call is in place
    (every call but the tiled MLP's); unsloth itself runs it eagerly before torch 2.11.

    Traced, the SwiGLU backward writes h, df and de into three new (tokens × intermediate) tensors
    while DW, e and g stay alive as graph inputs; eager, its Triton kernel overwrites DW, e and g
    in place: three such tensors fewer at the step's peak, at the same speed (H200 A/B in one
    process: ``bench/mlp_ab_bench.py``, ``bench/results/mlp_ab-*.md``). The tiled MLP's
    out-of-place tiles stay traced: eager they ran at 8,908 tok/s, traced at 13,071 and 13,115
    (16×1024, three runs).
    """
    import inspect

    import torch
    from unsloth.kernels import fast_lora

    if getattr(fast_lora._apply, "course_mlp_eager", False):
        return
    traced = fast_lora._apply
    eager = torch.compiler.disable(lambda function, *args: function.apply(*args))
    params = list(inspect.signature(fast_lora.LoRA_MLP.forward).parameters)
    if "inplace" not in params:
        raise ValueError("unsloth's LoRA_MLP.forward has no 'inplace' argument; helpers.train's eager-MLP "
                         "dispatch is written for unsloth 2026.10.9 (requirements-gpu.txt pins it)")
    at = params.index("inplace") - 1  # its place among apply's arguments (forward's first is ctx)

    def _apply(function, *args):
        if function is fast_lora.LoRA_MLP and (args[at] if len(args) > at else True) is True:  # default True
            return eager(function, *args)
        return traced(function, *args)

    _apply.course_mlp_eager, _apply.traced = True, traced  # traced: unsloth's own, for bench/mlp_ab_bench.py
    fast_lora._apply = _apply


def _fused_mlp_out_of_place(model) -> None:
    """Make unsloth's fused LoRA MLP return dX in a new tensor, as unsloth does for Cohere.

    In place (its default) the backward writes dX into the MLP's input; under the tiled MLP
    that input is one tile of a tensor split in no-grad mode, so the next tile's backward
    fails with "a view created in no_grad mode … modified inplace" (unsloth 2026.10.9).
    """
    from unsloth.kernels.fast_lora import apply_lora_mlp_swiglu

    if model.config.model_type != "qwen3":  # the kernel below is SwiGLU's, the MLP of Qwen3
        raise NotImplementedError(f"tiled_mlp is wired for Qwen3's SwiGLU MLP, not {model.config.model_type!r}")

    def forward(self, X):  # a function, not functools.partial: the tiled MLP binds it with __get__
        return apply_lora_mlp_swiglu(self, X, inplace=False)

    mlps = [m for name, m in model.named_modules() if name.endswith(".mlp") and hasattr(m, "_unsloth_forward")]
    if not mlps:
        raise RuntimeError("tiled_mlp: unsloth did not tile any MLP (no module has _unsloth_forward)")
    for mlp in mlps:
        mlp._unsloth_forward = forward


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit weights count as their unpacked size."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = 0
    for p in model.parameters():
        total += p.numel() * 2 if p.__class__.__name__ == "Params4bit" else p.numel()
    return trainable, total


def lora_param_count(model, r: int, targets=PROJECTIONS) -> int:
    """Exactly the parameters LoRA adds to ``model``: ``r·(in+out)`` for every targeted linear layer."""
    if r <= 0:
        raise ValueError(f"LoRA rank r must be a positive integer, got {r}")
    unknown = sorted(set(targets) - set(PROJECTIONS))
    if unknown:
        raise ValueError(f"unknown target modules {unknown}; choose from {list(PROJECTIONS)}")
    return sum(r * (m.in_features + m.out_features) for name, m in model.named_modules()
               if name.rsplit(".", 1)[-1] in targets and hasattr(m, "in_features"))


def lora_summary(model, r: int = 16, alpha: float = 32, dropout: float = 0.05, targets=PROJECTIONS,
                 preset: str = "gpu-16gb") -> dict:
    """What r/alpha/dropout/targets mean: exact trainable parameters of ``model`` and, for
    Qwen3-4B with ``preset``'s batch and sequence length, the LoRA size and estimated peak VRAM."""
    from . import memory

    TrainConfig(r=r, alpha=alpha, dropout=dropout, target_modules=targets)  # validates the choice
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    p = {**asdict(TrainConfig()), **PRESETS[preset]}
    est = memory.estimate(memory.QWEN3_4B, r=r, targets=targets, batch=p["batch_size"], seq=p["max_length"],
                          gradient_checkpointing=p["gradient_checkpointing"], path="bnb", fused_head=True,
                          optim=p["optim"])
    total = trainable_parameters(model)[1]
    added = lora_param_count(model, r, targets)
    return {"lora_params": added, "lora_share": added / total, "scale": alpha / r, "dropout": dropout,
            "qwen3_4b_lora_params": memory.lora_params(memory.QWEN3_4B, r, targets),
            "preset": preset, "batch": p["batch_size"], "seq": p["max_length"],
            "qwen3_4b_vram_gib": round(est["total"], 2),
            "qwen3_4b_vram_parts": {k: round(v, 2) for k, v in est.items() if k != "total"}}


def length_report(dataset, tokenizer, max_length: int) -> dict:
    """How many samples exceed ``max_length`` and what truncation does to their loss masks.

    TRL keeps the first ``max_length`` tokens (``keep_start``); assistant tokens past the
    cut are not trained, and a sample whose assistant turns all lie past it trains nothing.
    """
    from trl.chat_template_utils import get_training_chat_template

    from .tool_schemas import tools_list

    template = get_training_chat_template(tokenizer) or tokenizer.chat_template
    n = too_long = emptied = cut = kept = 0
    for row in dataset:
        enc = tokenizer.apply_chat_template(row["messages"], tools=tools_list(row), tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True, chat_template=template)
        mask = enc["assistant_masks"]
        n += 1
        kept += sum(mask[:max_length])
        if len(mask) > max_length:
            too_long += 1
            cut += sum(mask[max_length:])
            emptied += sum(mask[:max_length]) == 0
    report = {"samples": n, "longer_than_max_length": too_long, "left_with_no_trained_tokens": emptied,
              "assistant_tokens_cut": cut, "assistant_tokens_kept": kept, "max_length": max_length}
    if too_long:
        warnings.warn(f"{too_long} of {n} samples are longer than max_length={max_length}: "
                      f"{cut} assistant tokens are cut from their loss masks and {emptied} samples "
                      f"are left with nothing to train on")
    return report


def sft_config(cfg: TrainConfig, path: TrainPath, has_eval: bool):
    """TRL ``SFTConfig`` for ``cfg``: assistant-only loss, bfd packing, logs and checkpoints."""
    from trl import SFTConfig

    cpu = path.name == "bnb-cpu"
    if cpu:
        from .fixtures.model import _cpu_has_fast_bf16

        bf16 = _cpu_has_fast_bf16()  # bf16 autocast only where the CPU has bf16 instructions
    else:
        bf16 = True
    eval_on = has_eval and bool(cfg.eval_steps)
    return SFTConfig(
        output_dir=str(cfg.output_dir), run_name=cfg.run, seed=cfg.seed, data_seed=cfg.seed,
        assistant_only_loss=True, packing=cfg.packing, packing_strategy="bfd", max_length=cfg.max_length,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, gradient_checkpointing=cfg.gradient_checkpointing,
        learning_rate=cfg.lr, warmup_steps=cfg.warmup, weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.scheduler, optim=cfg.optim, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        logging_steps=cfg.logging_steps, logging_first_step=True,
        eval_strategy="steps" if eval_on else "no", eval_steps=cfg.eval_steps if eval_on else None,
        save_strategy="steps" if cfg.save_steps else "no", save_steps=cfg.save_steps or 500,
        save_total_limit=2, report_to=[], use_cpu=cpu, bf16=bf16,
        dataloader_num_workers=0, dataset_num_proc=None, **cfg.extra,
    )


def build_trainer(cfg: TrainConfig, model, tokenizer, splits, path: TrainPath | None = None,
                  log=print):
    """A TRL ``SFTTrainer`` with the course's callbacks; ``splits`` has ``train`` (and ``validation``)."""
    from transformers.integrations import TensorBoardCallback
    from trl import SFTTrainer

    from .callbacks import FileLogger, ThroughputCallback, TimeBudget, TokenCounter

    path = path or choose_path()
    if path.name == "bnb-cpu":
        from .cpu_compat import install_torch_logprob

        if install_torch_logprob():
            log("TRL's fused loss head is a Triton (GPU-only) kernel: CPU tensors use a PyTorch version")
    train, val = splits["train"], splits.get("validation") if hasattr(splits, "get") else None
    if len(train) == 0:
        raise ValueError("the training split is empty")
    args = sft_config(cfg, path, has_eval=val is not None and len(val) > 0)
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [FileLogger(cfg.log_dir), TimeBudget(cfg.time_budget_s)]
    if "tensorboard" in cfg.report_to:
        from torch.utils.tensorboard import SummaryWriter

        callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(str(cfg.log_dir / "tensorboard"))))
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                         processing_class=tokenizer, callbacks=callbacks)
    counter = TokenCounter(trainer.data_collator, tokenizer.pad_token_id)
    trainer.data_collator = counter
    throughput = ThroughputCallback(counter)
    trainer.add_callback(throughput)
    # the throughput fields must reach the file/TensorBoard loggers, so they run after it
    for cb in [c for c in trainer.callback_handler.callbacks if isinstance(c, (FileLogger, TensorBoardCallback))]:
        trainer.callback_handler.remove_callback(cb)
        trainer.add_callback(cb)
    trainer.course = {"counter": counter, "throughput": throughput, "path": path, "config": cfg}
    (cfg.log_dir / "config.json").write_text(cfg.to_json(), encoding="utf-8")
    return trainer


def save_adapter(trainer, cfg: TrainConfig) -> Path:
    """Save adapter, tokenizer and the config used into ``checkpoints/sft-lora-<run>/``."""
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(str(out))
    trainer.processing_class.save_pretrained(str(out))
    (out / "course_config.json").write_text(cfg.to_json(), encoding="utf-8")
    return out


def loss_history(trainer) -> dict[str, list[tuple[int, float]]]:
    """(step, value) pairs of train ``loss`` and ``eval_loss`` from the trainer's log history."""
    hist = trainer.state.log_history
    return {key: [(h["step"], h[key]) for h in hist if key in h] for key in ("loss", "eval_loss")}
