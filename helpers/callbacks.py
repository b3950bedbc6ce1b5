"""Training callbacks: real-token throughput, padding, peak memory, CSV/JSON logs, a time budget.

``TokenCounter`` wraps the trainer's data collator and counts, per batch, the positions
fed to the model, the real (non-pad) tokens among them and the trained (label != -100)
ones. ``ThroughputCallback`` turns those counts into tokens/s, padding fraction and peak
memory at every logging step, and ``FileLogger`` appends every log line to
``runs/<run>/log.jsonl`` and ``log.csv``.
"""
from __future__ import annotations

import csv
import json
import resource
import sys
import time
from pathlib import Path

import torch
from transformers import TrainerCallback


class TokenCounter:
    """A data-collator wrapper that counts positions, real tokens and trained tokens, and the rows and
    samples behind them (``samples / rows``: how many samples a packed row holds)."""

    def __init__(self, collator, pad_token_id: int):
        self.collator, self.pad_token_id = collator, pad_token_id
        self.positions = self.real = self.trained = self.rows = self.samples = 0

    def __call__(self, features):
        batch = self.collator(features)
        ids = batch["input_ids"]
        self.positions += ids.numel()
        self.rows += len(features)
        if "attention_mask" in batch:
            self.real += int(batch["attention_mask"].sum())
            self.samples += len(features)
        else:  # padding-free (packed) batches carry position_ids, restarting at 0 per sample, and no padding
            self.real += ids.numel()
            pos = batch.get("position_ids")
            self.samples += len(features) if pos is None else int((pos == 0).sum())
        if "labels" in batch:
            self.trained += int((batch["labels"] != -100).sum())
        return batch

    def snapshot(self) -> tuple[int, int, int]:
        return self.positions, self.real, self.trained


def peak_memory_gib() -> tuple[float, str]:
    """Peak memory so far: CUDA allocated on a GPU, else the process's peak RSS."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1024**3, "cuda"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (1024**3 if sys.platform == "darwin" else 1024**2), "cpu-rss"


class ThroughputCallback(TrainerCallback):
    """Adds ``tokens_per_s`` (real tokens), ``trained_tokens_per_s``, ``padding_frac`` and ``peak_mem_gib`` to each log."""

    def __init__(self, counter: TokenCounter):
        self.counter = counter
        self.history: list[dict] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self._t, self._snap = time.perf_counter(), self.counter.snapshot()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs:
            return
        now, snap = time.perf_counter(), self.counter.snapshot()
        dt = max(now - self._t, 1e-9)
        pos, real, trained = (a - b for a, b in zip(snap, self._snap))
        mem, kind = peak_memory_gib()
        row = {"step": state.global_step, "tokens_per_s": real / dt, "trained_tokens_per_s": trained / dt,
               "padding_frac": 1 - real / pos if pos else 0.0, "peak_mem_gib": mem}
        logs.update({k: round(v, 4) for k, v in row.items() if k != "step"})
        self.history.append({**row, "mem_kind": kind})
        self._t, self._snap = now, snap


class FileLogger(TrainerCallback):
    """Append every log dict to ``<folder>/log.jsonl`` and rewrite ``<folder>/log.csv``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:  # several processes: the main one writes
            return
        row = {"step": state.global_step, "time": round(time.time(), 2), **logs}
        self.rows.append(row)
        with open(self.folder / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        with open(self.folder / "log.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)


class TimeBudget(TrainerCallback):
    """Stop training (after the current step) once ``seconds`` of training have passed, and say so."""

    def __init__(self, seconds: float | None, log=print):
        self.seconds, self.log = seconds, log
        self.stopped_at: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds and time.perf_counter() - self._start > self.seconds:
            control.should_training_stop = True
            self.stopped_at = state.global_step
            self.log(f"time budget of {self.seconds:g} s reached: training stopped after step {state.global_step} "
                     f"of {state.max_steps} (raise TIME_BUDGET_S to train every planned step)")


def attach(trainer, log_dir: Path, time_budget_s: float | None = None, tensorboard: bool = False,
           log=print) -> dict:
    """Give a TRL trainer the course's instruments: token counts, throughput, log files, a time budget.

    Returns them by name (``counter``, ``throughput``, ``budget``, ``logger``); the file loggers
    run after the throughput callback, so its fields reach ``log.csv`` and TensorBoard.
    """
    from torch.utils.tensorboard import SummaryWriter  # lazy: TensorBoard only when asked for
    from transformers.integrations import TensorBoardCallback

    counter = TokenCounter(trainer.data_collator, trainer.processing_class.pad_token_id)
    trainer.data_collator = counter
    throughput, budget = ThroughputCallback(counter), TimeBudget(time_budget_s, log=log)
    writers = [FileLogger(log_dir)]
    if tensorboard:
        writers.append(TensorBoardCallback(tb_writer=SummaryWriter(str(Path(log_dir) / "tensorboard"))))
    for cb in (throughput, budget, *writers):
        trainer.add_callback(cb)
    return {"counter": counter, "throughput": throughput, "budget": budget, "logger": writers[0]}
