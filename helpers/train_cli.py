"""``python -m helpers.train``: notebook 05's training run from the command line, on one process or many.

    python -m helpers.train --preset cpu-tiny --run demo --max-steps 40
    python -m helpers.train --preset cpu-tiny --run demo --resume latest
    accelerate launch --multi_gpu --num_processes 2 -m helpers.train --preset cpu-tiny --run ddp

Every ``TrainConfig`` setting is a flag (``max_steps`` → ``--max-steps``); what is not given comes
from the preset, as in notebook 05. The run writes what the notebook writes: the adapter and
``course_config.json`` in ``checkpoints/sft-lora-<run>/``, logs and ``config.json`` in
``runs/<run>/``. ``command_line(cfg)`` is the command that reproduces a config. Bad input ends in
one line starting ``error:`` (exit status 2) before the model loads.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import fields

import torch

from . import data, runs
from .distributed import (ROUTE_FOR_MANY, SameLoraOnEveryRank, check_fits, check_processes, check_route,
                          effective_batch, world)
from .lora import Shape
from .models import resolve
from .train import TrainPath, build_model, build_trainer, choose_path, prepare_run, save_adapter
from .train_config import PRESETS, TrainConfig, resolve_preset

SKIP = ("preset", "run")  # always written, first
HELP = {
    "model": "tiny-qwen3, unsloth/Qwen3-4B-Instruct-2507 or a local model folder",
    "load_in_4bit": "NF4 4-bit base (QLoRA); off: a bf16 base (LoRA)",
    "r": "LoRA rank", "alpha": "LoRA alpha (the update is scaled by alpha/r)", "dropout": "LoRA dropout",
    "target_modules": "comma-separated projections, e.g. q_proj,v_proj",
    "max_length": "tokens per packed row", "batch_size": "rows per device per micro-step",
    "grad_accum": "micro-steps per optimiser update", "packing": "pack samples into rows (bfd)",
    "gradient_checkpointing": "recompute activations in backward", "tiled_mlp": "unsloth only: MLP in token tiles",
    "lr": "peak learning rate", "warmup": "warm-up, a fraction of the steps", "weight_decay": "AdamW weight decay",
    "scheduler": "learning-rate schedule", "optim": "adamw_8bit (GPU) or adamw_torch",
    "epochs": "passes over the data", "max_steps": "optimiser updates (-1: the epochs decide)",
    "time_budget_s": "stop after this many seconds (none: no limit)",
    "logging_steps": "log every N steps", "eval_steps": "validation loss every N steps (none: never)",
    "save_steps": "checkpoint every N steps (none: no checkpoints)",
    "report_to": "comma-separated loggers: tensorboard or empty", "seed": "seed for LoRA init and data order",
    "extra": "JSON object passed to SFTConfig as-is",
}
METAVAR = {"int": "N", "float": "X", "str": "TEXT", "tuple[str, ...]": "A,B", "dict": "JSON"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse_value(kind: str):
    """An argparse ``type`` for a ``TrainConfig`` field annotated ``kind``."""
    base = kind.replace(" | None", "")

    def parse(text: str):
        if kind.endswith("| None") and text.lower() == "none":
            return None
        if base.startswith("tuple"):
            return tuple(t.strip() for t in text.split(",") if t.strip())
        if base == "dict":
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            return value
        return {"int": int, "float": float}.get(base, str)(text)

    parse.__name__ = base  # argparse names the expected type in its error line
    return parse


def parser() -> argparse.ArgumentParser:
    """The command line's flags: the run, then one per ``TrainConfig`` setting (default: the preset's)."""
    p = argparse.ArgumentParser(prog="python -m helpers.train", description="Notebook 05's QLoRA training run: "
                                "one process, or several under accelerate launch.")
    p.add_argument("--preset", default="cpu-tiny", choices=sorted(PRESETS), help="starting settings (cpu-tiny)")
    p.add_argument("--run", default="demo", help="run name: checkpoints/sft-lora-<run>/ and runs/<run>/ (demo)")
    p.add_argument("--data", default=None, help="dataset folder (notebook 04's, built if missing)")
    p.add_argument("--resume", default=None, help="'latest' or a checkpoint folder (none: start clean)")
    p.add_argument("--route", default="auto", choices=["auto", "unsloth", ROUTE_FOR_MANY],
                   help="auto: unsloth on one CUDA GPU when installed, else bnb (transformers + bitsandbytes)")
    group = p.add_argument_group("settings", "each defaults to the preset's value")
    for f in fields(TrainConfig):
        if f.name in SKIP:
            continue
        if f.type == "bool":
            group.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=HELP.get(f.name, f"TrainConfig.{f.name}"))
        else:
            group.add_argument(_flag(f.name), dest=f.name, type=_parse_value(f.type), default=argparse.SUPPRESS,
                               metavar=METAVAR[f.type.replace(" | None", "")] + ("|none" if "None" in f.type else ""),
                               help=HELP.get(f.name, f"TrainConfig.{f.name}"))
    return p


def _text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return ",".join(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def command_line(cfg: TrainConfig, data: str | None = None, resume: str | None = None, processes: int = 1,
                 fsdp: bool = False) -> str:
    """The shell command that trains ``cfg`` (only settings that differ from its preset), quoted.

    >>> command_line(TrainConfig(**resolve_preset("cpu-tiny", run="r8", r=8, packing=False)), data="my data")
    "python -m helpers.train --preset cpu-tiny --run r8 --r 8 --no-packing --data 'my data'"
    """
    preset = resolve_preset(cfg.preset)
    launcher = ["--config_file", "recipes/fsdp_qlora.yaml"] if fsdp else ["--multi_gpu"]
    head = ["python", "-m"] if processes == 1 else ["accelerate", "launch", *launcher, "--num_processes",
                                                    str(processes), "-m"]
    words = [*head, "helpers.train", "--preset", cfg.preset, "--run", cfg.run]
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        if f.name in SKIP or value == preset[f.name]:
            continue
        if f.type == "bool":
            words.append(_flag(f.name) if value else "--no-" + f.name.replace("_", "-"))
        else:
            words += [_flag(f.name), _text(value)]
    words += ["--data", str(data)] if data else []
    words += ["--resume", str(resume)] if resume else []
    return shlex.join(words)


def settings_from_args(args: argparse.Namespace) -> dict:
    """Every ``TrainConfig`` setting the parsed flags ask for: the preset's, then each flag given."""
    names = {f.name for f in fields(TrainConfig)} - set(SKIP)
    return resolve_preset(args.preset, run=args.run, **{k: v for k, v in vars(args).items() if k in names})


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` the parsed flags ask for (a GPU preset needs a GPU, as in notebook 05)."""
    settings = settings_from_args(args)
    return TrainConfig.preset_config(settings.pop("preset"), **settings)


def choose_route(route: str, w) -> TrainPath:
    """The model route for ``--route``: auto takes bitsandbytes when several processes train."""
    path = choose_path(prefer_unsloth=route == "unsloth" or (route == "auto" and not w.distributed))
    if route == "unsloth" and path.name != "unsloth":
        raise ValueError(f"--route unsloth needs a CUDA GPU with unsloth installed; this machine takes {path.name}")
    check_route(path.name, w)
    return path


def _device_gib(path: TrainPath, w) -> float:
    if path.name != "bnb-cpu":
        return torch.cuda.get_device_properties(w.local_rank).total_memory / 2**30
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 / w.local_size


def check(cfg: TrainConfig, path: TrainPath, w) -> None:
    """Every check that needs no model: processes vs devices, the route, the preset's fit per device."""
    from transformers import AutoConfig  # lazy: only its config file is read, never the weights

    cuda = path.name != "bnb-cpu"
    check_processes(w, torch.cuda.device_count() if cuda else os.cpu_count() or 1, "cuda" if cuda else "cpu")
    check_route(path.name, w)
    check_fits(cfg, Shape.from_config(AutoConfig.from_pretrained(resolve(cfg.model))), path.name, w, _device_gib(path, w))


def main(argv: list[str] | None = None) -> int:
    """Train as the flags say; returns the exit status (2: bad input, said in one line)."""
    args = parser().parse_args(argv)
    w = world()
    if w.distributed:  # ranks share one stdout: each line in one write, so two ranks' lines never interleave
        sys.stdout.reconfigure(line_buffering=True, write_through=False)
    say = print if w.main else (lambda *a, **k: None)
    lock = None
    try:
        cfg = config_from_args(args)
        path = choose_route(args.route, w)
        check(cfg, path, w)
        if args.data:  # a folder named on the command line must hold a complete build (the default is built)
            data.load_splits(args.data)
        if args.resume:
            runs.find_checkpoint(cfg, args.resume)
        if w.main:  # one job per run name; the other ranks belong to this one
            lock = runs.RunLock(cfg.log_dir, cfg.run).__enter__()
    except (ValueError, RuntimeError, FileNotFoundError, TypeError, OSError) as err:
        if w.main:
            print("error:", " ".join(str(err).split()), file=sys.stderr)  # a library's message may span lines
        return 2
    try:
        return _train(cfg, path, w, args, say)
    finally:
        if lock:
            lock.__exit__(None, None, None)


def _train(cfg: TrainConfig, path: TrainPath, w, args, say) -> int:
    from accelerate import PartialState  # lazy: starts the process group, which only training needs
    import datasets

    datasets.disable_progress_bars()
    datasets.disable_caching()  # tokenised copies go to a temporary folder, never into the dataset's own
    state = PartialState(cpu=path.name == "bnb-cpu")
    say(f"training path → {path}")
    say(effective_batch(cfg, w))
    say("same run as:", command_line(cfg, args.data, args.resume, w.size, w.fsdp))
    with state.main_process_first():  # the main process builds the dataset and cleans the run, then the rest
        data.ensure_built(args.data, log=say)
        ckpt = prepare_run(cfg, args.resume, log=say)
    splits = data.load_splits(args.data)
    model, tok, path = build_model(cfg, path)
    trainer = build_trainer(cfg, model, tok, splits, path, log=say)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=ckpt)
    seconds = time.perf_counter() - start
    agree = [c for c in trainer.callback_handler.callbacks if isinstance(c, SameLoraOnEveryRank)]
    if agree:
        say(f"LoRA weights identical on all {w.size} ranks after each of {agree[0].steps_checked} steps")
    if w.fsdp:  # the LoRA weights are sharded: gather them (a collective: every rank takes part)
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(cfg.output_dir))
        if w.main:
            tok.save_pretrained(str(cfg.output_dir))
            (cfg.output_dir / "course_config.json").write_text(cfg.to_json(), encoding="utf-8")
    if w.main:
        out = save_adapter(trainer, cfg) if not w.fsdp else cfg.output_dir
        hist = trainer.course["throughput"].history
        rate = sum(h["tokens_per_s"] for h in hist) / max(1, len(hist))
        say(f"{trainer.state.global_step} steps in {seconds:.1f} s, {rate:,.0f} real tokens/s per process; "
            f"adapter → {out}, logs → {cfg.log_dir}")
    if w.distributed:
        print(f"rank {w.rank} of {w.size} finished {trainer.state.global_step} steps", flush=True)
    state.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
