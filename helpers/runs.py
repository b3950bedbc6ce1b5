"""Run folders: a new run starts clean, a resumed one continues its checkpoint, a running job holds a lock.

A run named ``demo`` writes its checkpoints (``checkpoint-<step>/``) and adapter to
``checkpoints/sft-lora-demo/`` and its logs to ``runs/demo/``. ``prepare(cfg, resume)`` decides
where ``trainer.train()`` starts: ``resume=None`` starts clean, removing the checkpoints and
logs an earlier run of that name left (only what the course writes there) and saying so in one
line; ``"latest"`` or a checkpoint folder continues that checkpoint, the logs cut back to its
step. ``RunLock`` marks a run as taken while a command-line job trains it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

LOG_FILES = ("log.jsonl", "log.csv", "config.json")  # what helpers.train writes into runs/<run>/
LOG_DIRS = ("tensorboard",)
LOCK = ".lock"


def checkpoints(folder: Path) -> list[Path]:
    """The trainer's checkpoints in ``folder`` (``checkpoint-<step>/`` with a ``trainer_state.json``), by step."""
    found = [p for p in Path(folder).glob("checkpoint-*")
             if re.fullmatch(r"checkpoint-\d+", p.name) and (p / "trainer_state.json").is_file()]
    return sorted(found, key=checkpoint_step)


def checkpoint_step(folder: Path) -> int:
    """The optimiser step a checkpoint was saved at (its ``trainer_state.json``)."""
    return int(json.loads((Path(folder) / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])


def find_checkpoint(cfg, resume: str) -> Path:
    """The checkpoint ``resume`` names: ``"latest"`` (the run's last one) or a checkpoint folder."""
    if resume == "latest":
        found = checkpoints(cfg.output_dir)
        if not found:
            raise FileNotFoundError(f"run {cfg.run!r} has no checkpoint to resume in {cfg.output_dir} "
                                    f"(checkpoints are saved every save_steps={cfg.save_steps} steps)")
        return found[-1]
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise FileNotFoundError(f"{path} is not a training checkpoint (no trainer_state.json in it); "
                                f"pass 'latest' or a checkpoint-<step> folder")
    return path


def read_log(log_dir: Path) -> list[dict]:
    """The complete rows of ``<log_dir>/log.jsonl`` (empty when there is none)."""
    path = Path(log_dir) / "log.jsonl"
    if not path.is_file():
        return []
    # every row ends in a newline: what follows the last one is a row a kill cut short
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    return [json.loads(line) for line in lines if line.strip()]


def trim_log(log_dir: Path, step: int) -> int:
    """Keep the log rows up to ``step`` (a resumed run logs the later steps again); returns rows dropped."""
    rows = read_log(log_dir)
    kept = [r for r in rows if r.get("step", 0) <= step]
    if len(kept) < len(rows):
        text = "".join(json.dumps(r) + "\n" for r in kept)
        (Path(log_dir) / "log.jsonl").write_text(text, encoding="utf-8")
        (Path(log_dir) / "log.csv").unlink(missing_ok=True)  # derived from log.jsonl: rewritten at the next log
    return len(rows) - len(kept)


def start_clean(cfg, log=print) -> list[Path]:
    """Remove the checkpoints and logs an earlier run named ``cfg.run`` left, say so, return them.

    Only what the course writes is removed: ``checkpoint-<step>/`` folders with a
    ``trainer_state.json`` and the log files of ``LOG_FILES``/``LOG_DIRS``; the saved
    adapter stays until the new run saves its own over it.
    """
    old = checkpoints(cfg.output_dir)
    logs = [Path(cfg.log_dir) / n for n in LOG_FILES + LOG_DIRS if (Path(cfg.log_dir) / n).exists()]
    for path in old + logs:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if old or logs:
        log(f"run {cfg.run!r} was used before: starting clean (removed {len(old)} checkpoint(s) and "
            f"{len(logs)} log file(s); resume='latest' continues a run instead)")
    return old + logs


def prepare(cfg, resume: str | None = None, log=print) -> str | None:
    """Where ``trainer.train(resume_from_checkpoint=…)`` starts: ``None`` (a clean new run) or a checkpoint.

    ``resume`` is ``None`` (start clean), ``"latest"`` or a checkpoint folder; refuses a run
    that a running job holds (``RunLock``).
    """
    check_free(cfg.log_dir, cfg.run)
    if not resume:
        start_clean(cfg, log)
        return None
    ckpt = find_checkpoint(cfg, resume)
    step = checkpoint_step(ckpt)
    trim_log(cfg.log_dir, step)
    log(f"resuming run {cfg.run!r} from {ckpt} (step {step})")
    return str(ckpt)


def lock_holder(log_dir: Path) -> int | None:
    """The process id of the live job that holds ``<log_dir>/.lock``, or ``None``."""
    try:
        pid = int(json.loads((Path(log_dir) / LOCK).read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no lock, or one cut short by a kill: nobody holds it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # the job that wrote it has ended
    except PermissionError:
        pass  # alive, another user's
    return pid


def check_free(log_dir: Path, run: str) -> None:
    """``RuntimeError`` when another live process holds run ``run``'s lock."""
    holder = lock_holder(log_dir)
    if holder is not None and holder != os.getpid():
        raise RuntimeError(f"run {run!r} is in use by a running job (pid {holder}): wait for it to finish "
                           f"or choose another run name")


class RunLock:
    """``with RunLock(log_dir):`` marks the run as taken by this process; refuses one a live job holds."""

    def __init__(self, log_dir: Path, run: str):
        self.path, self.run = Path(log_dir) / LOCK, run

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # a second try after removing a lock whose job has ended
            try:  # O_EXCL: of two jobs starting at once, one creates the file and the other sees it
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                check_free(self.path.parent, self.run)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps({"pid": os.getpid()}))
            return self
        raise RuntimeError(f"run {self.run!r}: could not take its lock {self.path}")

    def __exit__(self, *exc) -> None:
        if lock_holder(self.path.parent) == os.getpid():
            self.path.unlink(missing_ok=True)
