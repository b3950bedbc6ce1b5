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

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, set_seed
from trl import SFTConfig, SFTTrainer

from . import atomic, memory, packed_attention, runs, unsloth_patches
from .callbacks import attach
from .cpu_compat import guard_avx512_bf16, install_torch_logprob
from .distributed import SameLoraOnEveryRank, StopTogether, world
from .environment import cpu_has_fast_bf16, training_path
from .lora import PROJECTIONS, QWEN3_4B, lora_params
from .models import load_tokenizer, resolve
from .train_config import PRESETS, TrainConfig, resolve_preset  # noqa: F401  (PRESETS: public here too)


@dataclass
class TrainPath:
    """Which route builds the model, and why."""

    name: str  # "unsloth" | "bnb-cuda" | "bnb-cpu"
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def choose_path(prefer_unsloth: bool = True) -> TrainPath:
    """The route this machine takes (``helpers.environment.training_path``); the plain one if asked."""
    name, reason = training_path()
    if name == "unsloth" and not prefer_unsloth:
        name, reason = "bnb-cuda", "CUDA GPU, unsloth not requested: transformers + bitsandbytes NF4 + PEFT"
    if name == "bnb-cpu":
        reason += "; avx512_bf16 guard on, PyTorch loss head instead of TRL's Triton kernel"
    return TrainPath(name, reason)


def lora_config(cfg: TrainConfig):
    """The PEFT ``LoraConfig`` for ``cfg``."""
    return LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, bias="none",
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")


def bnb_config(quant_storage=torch.uint8):
    """QLoRA's quantisation: NF4 4-bit weights, double quantisation, bf16 compute.

    FSDP shards only tensors of one float dtype: ``quant_storage=torch.bfloat16`` packs the
    4-bit codes into bf16 tensors (same bytes) so the quantised base shards with the rest.
    """
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_storage=quant_storage)


def load_base(cfg: TrainConfig, path: TrainPath | None = None):
    """The frozen base model for ``cfg`` (4-bit unless ``load_in_4bit=False``) and its tokenizer."""
    path, w = path or choose_path(), world()
    tok = load_tokenizer(cfg.model)
    on_gpu = path.name != "bnb-cpu"
    kwargs = {"dtype": torch.bfloat16 if on_gpu or w.fsdp else torch.float32}
    if cfg.load_in_4bit:
        kwargs["quantization_config"] = bnb_config(torch.bfloat16 if w.fsdp else torch.uint8)
    if on_gpu and not w.fsdp:  # each process its own GPU; under FSDP accelerate places the shards
        kwargs["device_map"] = {"": w.local_rank}
    model = AutoModelForCausalLM.from_pretrained(resolve(cfg.model), **kwargs)
    if path.name == "bnb-cpu":
        guard_avx512_bf16(model)
    return model, tok


def build_model(cfg: TrainConfig, path: TrainPath | None = None):
    """(peft_model, tokenizer, path): the 4-bit base with LoRA adapters attached, ready to train."""
    path = path or choose_path()
    if path.name == "unsloth":
        return (*_build_unsloth(cfg), path)
    if cfg.tiled_mlp:
        warnings.warn(f"tiled_mlp is an unsloth feature; route {path.name} trains without it", stacklevel=2)
    model, tok = load_base(cfg, path)
    if cfg.load_in_4bit and not world().fsdp:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:  # FSDP: no fp32 upcast of the bf16 parameters, which must share one dtype
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    set_seed(cfg.seed)  # LoRA's A matrices are drawn here; unsloth's random_state does the same
    model = get_peft_model(model, lora_config(cfg))
    if path.name == "bnb-cpu":
        guard_avx512_bf16(model)
    return model, tok, path


def _build_unsloth(cfg: TrainConfig):
    from unsloth import FastLanguageModel  # lazy: unsloth exists only on CUDA machines

    model, tok = FastLanguageModel.from_pretrained(
        model_name=resolve(cfg.model), max_seq_length=cfg.max_length, dtype=None,
        load_in_4bit=cfg.load_in_4bit, unsloth_tiled_mlp=cfg.tiled_mlp,
    )
    model = FastLanguageModel.get_peft_model(
        model, r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, bias="none",
        target_modules=list(cfg.target_modules), random_state=cfg.seed,
        use_gradient_checkpointing="unsloth" if cfg.gradient_checkpointing else False,
    )
    tune_unsloth(model, cfg)
    return model, tok


def tune_unsloth(model, cfg: TrainConfig) -> None:
    """The course's changes to unsloth's route, made after ``FastLanguageModel.get_peft_model``
    (``train.build_model`` and notebook 05 both call it): the fused MLP runs eagerly, packed rows
    take one flash varlen attention call per layer (it warns where it cannot), and the tiled MLP's
    backward works when ``cfg.tiled_mlp`` is on."""
    unsloth_patches.fused_mlp_eager()
    packed_attention.install()
    if cfg.tiled_mlp:
        unsloth_patches.fused_mlp_out_of_place(model)


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit weights count as their unpacked size."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = 0
    for p in model.parameters():
        total += p.numel() * 2 if p.__class__.__name__ == "Params4bit" else p.numel()
    return trainable, total


def lora_summary(model, r: int = 16, alpha: float = 32, dropout: float = 0.05, targets=PROJECTIONS,
                 preset: str = "gpu-16gb") -> dict:
    """What r/alpha/dropout/targets mean: exact trainable parameters of ``model`` and, for
    Qwen3-4B with ``preset``'s batch and sequence length on the GPU route (unsloth), the LoRA size
    and estimated peak VRAM."""
    TrainConfig(r=r, alpha=alpha, dropout=dropout, target_modules=targets)  # validates the choice
    p = resolve_preset(preset)
    est = memory.estimate(QWEN3_4B, r=r, targets=targets, batch=p["batch_size"], seq=p["max_length"],
                          gradient_checkpointing=p["gradient_checkpointing"], path="unsloth", fused_head=True,
                          optim=p["optim"])
    total = trainable_parameters(model)[1]
    added = lora_params(model, r, targets)
    return {"lora_params": added, "lora_share": added / total, "scale": alpha / r, "dropout": dropout,
            "qwen3_4b_lora_params": lora_params(QWEN3_4B, r, targets),
            "preset": preset, "batch": p["batch_size"], "seq": p["max_length"],
            "qwen3_4b_vram_gib": round(est["total"], 2),
            "qwen3_4b_vram_parts": {k: round(v, 2) for k, v in est.items() if k != "total"}}


def sft_config(cfg: TrainConfig, path: TrainPath, has_eval: bool):
    """TRL ``SFTConfig`` for ``cfg``: assistant-only loss, bfd packing, logs and checkpoints."""
    cpu = path.name == "bnb-cpu"
    bf16 = cpu_has_fast_bf16() if cpu else True  # on a CPU, bf16 autocast only with bf16 instructions
    eval_on = has_eval and bool(cfg.eval_steps)
    return SFTConfig(**{**dict(
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
        ddp_find_unused_parameters=False if world().distributed else None,  # every LoRA weight gets a gradient
        # FSDP-QLoRA checkpoints with reentrant recomputation (PEFT's recipe); elsewhere transformers' default
        gradient_checkpointing_kwargs={"use_reentrant": True} if world().fsdp else None,
        dataloader_num_workers=0, dataset_num_proc=None), **cfg.extra})  # extra has the last word


def build_trainer(cfg: TrainConfig, model, tokenizer, splits, path: TrainPath | None = None,
                  log=print):
    """A TRL ``SFTTrainer`` with the course's callbacks; ``splits`` has ``train`` (and ``validation``)."""
    path = path or choose_path()
    if path.name == "bnb-cpu":
        if install_torch_logprob():
            log("TRL's fused loss head is a Triton (GPU-only) kernel: CPU tensors use a PyTorch version")
    train, val = splits["train"], splits.get("validation") if hasattr(splits, "get") else None
    if len(train) == 0:
        raise ValueError("the training split is empty")
    args = sft_config(cfg, path, has_eval=val is not None and len(val) > 0)
    w = world()
    distributed = ([StopTogether()] + ([] if w.fsdp else [SameLoraOnEveryRank()])) if w.distributed else []
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                         processing_class=tokenizer, callbacks=distributed)
    course = attach(trainer, cfg.log_dir, cfg.time_budget_s, tensorboard="tensorboard" in cfg.report_to and w.main,
                    log=log)
    course["logger"].rows = runs.read_log(cfg.log_dir)  # a resumed run continues its log (prepare_run trims it)
    trainer.course = {**course, "path": path, "config": cfg}
    if w.main:
        (cfg.log_dir / "config.json").write_text(cfg.to_json(), encoding="utf-8")
    return trainer


def prepare_run(cfg: TrainConfig, resume: str | None = None, log=print) -> str | None:
    """Call before ``build_trainer``: ``None`` starts run ``cfg.run`` clean (saying so when an earlier
    run of that name left checkpoints or logs); ``resume="latest"`` or a checkpoint folder returns
    the checkpoint to pass to ``trainer.train(resume_from_checkpoint=…)``."""
    if world().main:
        return runs.prepare(cfg, resume, log)
    return str(runs.find_checkpoint(cfg, resume)) if resume else None  # the main process cleans and logs


def save_adapter(trainer, cfg: TrainConfig) -> Path:
    """Save adapter, tokenizer and the config used into ``checkpoints/sft-lora-<run>/``.

    They are written beside the folder and moved in with ``adapter_config.json`` last, so it holds
    a complete adapter or none (its ``checkpoint-*`` folders stay).
    """
    with atomic.staged_files(cfg.output_dir, last="adapter_config.json") as tmp:
        trainer.model.save_pretrained(str(tmp))
        trainer.processing_class.save_pretrained(str(tmp))
        (tmp / "course_config.json").write_text(cfg.to_json(), encoding="utf-8")
    return cfg.output_dir


def loss_history(trainer) -> dict[str, list[tuple[int, float]]]:
    """(step, value) pairs of train ``loss`` and ``eval_loss`` from the trainer's log history."""
    hist = trainer.state.log_history
    return {key: [(h["step"], h[key]) for h in hist if key in h] for key in ("loss", "eval_loss")}


if __name__ == "__main__":  # python -m helpers.train …: the command line is helpers.train_cli's
    import runpy

    runpy.run_module("helpers.train_cli", run_name="__main__")
