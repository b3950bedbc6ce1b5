"""One run on several processes: what ``accelerate launch`` started, the checks before the model
loads, the effective batch, and DDP's promise (the same LoRA weights on every rank) checked.

``accelerate launch --multi_gpu --num_processes N -m helpers.train …`` starts N processes through
torchrun (on a machine without GPUs they talk over gloo). Each loads the 4-bit base on its own
device, reads its own shard of every global batch, and after each backward DDP averages the LoRA
gradients, so every rank applies the same update. With an FSDP config (``recipes/``) the base's
4-bit weights, stored as bf16 (``bnb_4bit_quant_storage``), are sharded across the processes too.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from transformers import TrainerCallback

from .lora import Shape
from .memory import estimate

ROUTE_FOR_MANY = "bnb"  # the route that runs under DDP and FSDP: transformers + bitsandbytes + PEFT


@dataclass(frozen=True)
class World:
    """This process's place among those the launcher started."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    local_size: int = 1
    fsdp: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world(env=None) -> World:
    """The processes torchrun started, read from its environment variables (one process without them).

    >>> world({}).size, world({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}).main
    (1, False)
    """
    env = os.environ if env is None else env
    size = int(env.get("WORLD_SIZE", 1))
    return World(rank=int(env.get("RANK", 0)), local_rank=int(env.get("LOCAL_RANK", 0)), size=size,
                 local_size=int(env.get("LOCAL_WORLD_SIZE", size)),
                 fsdp=env.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true"))


def check_processes(w: World, devices: int, kind: str, env=None) -> None:
    """``ValueError`` when more processes run on this machine than it has devices (GPUs, or CPU cores),
    or when accelerate's single-process launcher was asked for several processes."""
    env = os.environ if env is None else env
    if not w.distributed and "MASTER_ADDR" in env and "ACCELERATE_USE_CPU" in env:
        raise ValueError("accelerate launch started one process although --num_processes > 1 was asked: without "
                         "GPUs add --multi_gpu (torchrun; the processes talk over gloo), e.g. "
                         "accelerate launch --multi_gpu --num_processes 2 -m helpers.train --preset cpu-tiny")
    if w.local_size > devices:
        unit = "CUDA devices" if kind == "cuda" else "CPU cores"
        raise ValueError(f"{w.local_size} processes on this machine but only {devices} {unit}: "
                         f"use --num_processes {devices} or fewer")


def check_route(route: str, w: World) -> None:
    """``ValueError`` when ``route`` cannot train on several processes (unsloth trains on one GPU; FSDP needs GPUs)."""
    if w.fsdp and route == "bnb-cpu":
        raise ValueError("FSDP shards across GPUs and accelerate refuses it on CPU devices: without GPUs launch "
                         "with --multi_gpu (DDP over gloo) instead of an FSDP config")
    if w.distributed and route == "unsloth":
        how = "FSDP" if w.fsdp else "DDP"
        raise ValueError(f"the unsloth route trains on one GPU and does not run under {how}: "
                         f"add --route {ROUTE_FOR_MANY} (transformers + bitsandbytes + PEFT) to train on {w.size} processes")


def per_device_gib(cfg, shape: Shape, route: str, w: World) -> float:
    """Estimated peak memory of one process for ``cfg`` (``helpers.memory.estimate``); FSDP splits the base."""
    est = estimate(shape, r=cfg.r, targets=cfg.target_modules, batch=cfg.batch_size, seq=cfg.max_length,
                   gradient_checkpointing=cfg.gradient_checkpointing, path="unsloth" if route == "unsloth" else "bnb",
                   fused_head=True, optim=cfg.optim if cfg.optim in ("adamw_torch", "adamw_8bit") else "adamw_torch",
                   tiled_mlp=cfg.tiled_mlp)
    if w.fsdp:
        est["total"] -= est["weights"] * (1 - 1 / w.size)
    return est["total"]


def check_fits(cfg, shape: Shape, route: str, w: World, device_gib: float) -> None:
    """``ValueError`` when preset ``cfg.preset`` (its per-device batch × length) does not fit one device."""
    need = per_device_gib(cfg, shape, route, w)
    if need > device_gib:
        raise ValueError(f"preset {cfg.preset} needs about {need:.1f} GiB per device (batch {cfg.batch_size} × "
                         f"{cfg.max_length} tokens) but a device has {device_gib:.1f} GiB: choose a smaller preset "
                         f"or lower --batch-size and raise --grad-accum")


def effective_batch(cfg, w: World) -> str:
    """The global batch per optimiser update, as a line, with the learning-rate rule of thumb.

    >>> from types import SimpleNamespace as C
    >>> print(effective_batch(C(batch_size=4, grad_accum=2, max_length=512, lr=5e-3), World(size=2)))
    effective batch: 4 per device × 2 accumulation × 2 processes = 16 rows of ≤ 512 tokens per update; lr 0.005 is used as set (rule of thumb for AdamW: lr × √2 = 0.00707 for 2× the one-process batch, or divide --grad-accum by 2 to keep that batch)
    """
    n = w.size
    total = cfg.batch_size * cfg.grad_accum * n
    line = (f"effective batch: {cfg.batch_size} per device × {cfg.grad_accum} accumulation × {n} process"
            f"{'es' if n > 1 else ''} = {total} rows of ≤ {cfg.max_length} tokens per update; lr {cfg.lr:g} is used as set")
    if n > 1:
        line += (f" (rule of thumb for AdamW: lr × √{n} = {cfg.lr * math.sqrt(n):.3g} for {n}× the one-process "
                 f"batch, or divide --grad-accum by {n} to keep that batch)")
    return line


def live_run_env(processes: int, gpus: int | None = None) -> tuple[dict, str]:
    """(environment, what runs) for a live ``accelerate launch`` of ``processes`` ranks (notebook 08).

    One GPU per rank when there are enough; otherwise CUDA is hidden and the ranks are CPU
    processes talking over gloo, as on a laptop (two ranks cannot share one GPU under NCCL).

    >>> live_run_env(2, gpus=1)[1]
    '2 CPU processes over gloo (1 GPU here, fewer than the processes)'
    """
    gpus = torch.cuda.device_count() if gpus is None else gpus
    env = dict(os.environ)
    if gpus >= processes:
        return env, f"{processes} GPUs over NCCL, one process each"
    env["CUDA_VISIBLE_DEVICES"] = ""
    why = "no GPU here" if gpus == 0 else f"{gpus} GPU{'' if gpus == 1 else 's'} here, fewer than the processes"
    return env, f"{processes} CPU processes over gloo ({why})"


def _lora_checksums(model) -> torch.Tensor:
    params = [p.detach() for n, p in model.named_parameters() if "lora_" in n]
    return torch.stack([t for p in params for t in (p.double().sum(), p.double().square().sum())])


class SameLoraOnEveryRank(TrainerCallback):
    """Under DDP: after every optimiser step, every rank's LoRA weights (per-tensor sum and sum of
    squares, in float64) must equal rank 0's exactly; a difference stops the run naming the step."""

    def __init__(self):
        self.steps_checked = 0

    def on_step_end(self, args, state, control, model=None, **kwargs):
        import torch.distributed as dist  # lazy: only under a launcher

        if not (dist.is_available() and dist.is_initialized()) or model is None:
            return
        mine = _lora_checksums(model).to(args.device)
        every = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
        dist.all_gather(every, mine)
        worst = max(float((s - every[0]).abs().max()) for s in every)
        if worst != 0.0:
            raise RuntimeError(f"LoRA weights differ between ranks after step {state.global_step} "
                               f"(largest checksum difference {worst:.3g}): DDP did not synchronise them")
        self.steps_checked += 1


class StopTogether(TrainerCallback):
    """Under DDP: a stop one rank decides (the time budget) stops every rank after the same step."""

    def on_step_end(self, args, state, control, **kwargs):
        import torch.distributed as dist  # lazy: only under a launcher

        if dist.is_available() and dist.is_initialized():
            flag = torch.tensor([float(control.should_training_stop)], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            control.should_training_stop = bool(flag.item())
