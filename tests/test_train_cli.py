"""``python -m helpers.train``: its flags, the command line a config prints, bad input in one line,
a new run that starts clean, and a killed run resumed (tests/test_ddp.py: the same adapter as notebook 05)."""
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import distributed, paths, runs, train, train_cli
from helpers.lora import QWEN3_4B
from helpers.train_config import TrainConfig, resolve_preset

from test_ddp import course_env

KILLED = dict(max_steps=3, batch_size=1, max_length=128, logging_steps=1, eval_steps=None, save_steps=1,
              report_to=(), extra={"bf16": False})


def cli(home: Path, *argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers.train", *argv], cwd=paths.PROJECT_ROOT,
                          env=course_env(home), capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------------------- flags and the printed command
def test_help_lists_the_flags(tmp_path):
    out = cli(tmp_path, "--help", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for flag in ("--model", "--preset", "--data", "--run", "--r ", "--alpha", "--dropout", "--max-steps",
                 "--time-budget-s", "--resume", "--route", "--batch-size", "--grad-accum"):
        assert flag in out.stdout, flag


@pytest.mark.parametrize("preset, overrides", [
    ("cpu-tiny", {}),
    ("cpu-tiny", dict(run="my-run", r=8, alpha=16, dropout=0.1, packing=False, target_modules=("q_proj", "v_proj"),
                      time_budget_s=None, save_steps=None, lr=3e-3, report_to=(), extra={"bf16": False})),
    ("gpu-24gb", dict(model="unsloth/Qwen3-4B-Instruct-2507", max_steps=50, gradient_checkpointing=False)),
])
def test_command_line_round_trips(preset, overrides):
    """Parsing the printed command gives back every setting of the config it was printed from."""
    cfg = TrainConfig(**resolve_preset(preset, **{"run": "x", **overrides}))
    words = shlex.split(train_cli.command_line(cfg, data="/data/my mix", resume="latest"))
    assert words[:3] == ["python", "-m", "helpers.train"]
    args = train_cli.parser().parse_args(words[3:])
    assert (args.data, args.resume) == ("/data/my mix", "latest")
    assert TrainConfig(**train_cli.settings_from_args(args)) == cfg
    assert train_cli.command_line(cfg, processes=2).startswith("accelerate launch --multi_gpu --num_processes 2 -m ")
    assert train_cli.command_line(cfg, processes=2, fsdp=True).startswith(
        "accelerate launch --config_file recipes/fsdp_qlora.yaml --num_processes 2 -m ")


# ----------------------------------------------------------------------------- bad input: one line, no model
def _live_pid() -> int:
    return os.getppid()  # the process that started pytest outlives the test


BAD = {
    "more processes than cores": ([], {"WORLD_SIZE": "64", "LOCAL_WORLD_SIZE": "64", "RANK": "0", "LOCAL_RANK": "0"},
                                  "64 processes on this machine but only"),
    "accelerate's one-process launcher": ([], {"MASTER_ADDR": "127.0.0.1", "ACCELERATE_USE_CPU": "False"},
                                          "add --multi_gpu"),
    "preset too big for a device": (["--batch-size", "4096", "--max-length", "65536"], {}, "needs about"),
    "FSDP without GPUs": ([], {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0",
                               "ACCELERATE_USE_FSDP": "true"}, "FSDP shards across GPUs"),
    "unsloth without CUDA": (["--route", "unsloth"], {}, "--route unsloth needs a CUDA GPU"),
    "GPU preset on a CPU": (["--preset", "gpu-16gb"], {}, "needs a CUDA GPU"),
    "bad LoRA rank": (["--r", "0"], {}, "rank r must be a positive integer"),
    "nothing to resume": (["--resume", "latest"], {}, "has no checkpoint to resume"),
    "missing dataset": (["--data", "no/such/folder"], {}, "no dataset at"),
    "run held by a live job": ([], {}, "is in use by a running job"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_ends_in_one_line(case, tmp_path, monkeypatch, capsys, tiny_model_dir):
    argv, env, message = BAD[case]
    for var in ("WORLD_SIZE", "LOCAL_WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "ACCELERATE_USE_CPU",
                "ACCELERATE_USE_FSDP"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path / "checkpoints")
    if case == "run held by a live job":
        (tmp_path / "runs" / "held").mkdir(parents=True)
        (tmp_path / "runs" / "held" / runs.LOCK).write_text(json.dumps({"pid": _live_pid()}))
        argv = ["--run", "held"]
    monkeypatch.setattr(train_cli, "build_model", lambda *a, **k: pytest.fail("the model must not load"))
    assert train_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err


@pytest.mark.parametrize("size", ["1", "2"])
def test_ranks_write_whole_lines(size, monkeypatch):
    """Under several ranks stdout is line-buffered: one write per line, so lines of two ranks that share a
    pipe never interleave (under ``python -u`` a print is two writes, the text and then its newline)."""
    import io

    class Stdout(io.StringIO):
        def reconfigure(self, **kwargs):
            self.settings = kwargs

    out = Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    for var, value in {"WORLD_SIZE": size, "LOCAL_WORLD_SIZE": size, "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(var, value)
    assert train_cli.main(["--r", "0"]) == 2  # bad input: returns before any model loads
    assert getattr(out, "settings", None) == ({"line_buffering": True, "write_through": False} if size == "2" else None)


def test_unsloth_refuses_several_processes():
    with pytest.raises(ValueError, match="unsloth route trains on one GPU.*add --route bnb"):
        distributed.check_route("unsloth", distributed.World(size=2, local_size=2))
    distributed.check_route("bnb-cuda", distributed.World(size=2, local_size=2))
    distributed.check_route("unsloth", distributed.World())


def test_fit_per_device_and_fsdp_share():
    """Qwen3-4B at 16 × 1,024 needs more than 8 GiB a device; FSDP on 4 processes keeps a quarter of the base."""
    cfg = TrainConfig(**resolve_preset("gpu-16gb"))
    one, four = (distributed.per_device_gib(cfg, QWEN3_4B, "bnb-cuda", distributed.World(size=n, fsdp=True))
                 for n in (1, 4))
    ddp = distributed.per_device_gib(cfg, QWEN3_4B, "bnb-cuda", distributed.World(size=4))
    assert four < one == ddp
    with pytest.raises(ValueError, match="preset gpu-16gb needs about"):
        distributed.check_fits(cfg, QWEN3_4B, "bnb-cuda", distributed.World(), device_gib=8)
    distributed.check_fits(cfg, QWEN3_4B, "bnb-cuda", distributed.World(), device_gib=141)


# ----------------------------------------------------------------------------- run folders
def _fake_checkpoint(folder: Path, step: int) -> Path:
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return ckpt


def test_new_run_with_a_used_name_starts_clean(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path / "checkpoints")
    cfg = TrainConfig(run="used")
    for step in (2, 4):
        _fake_checkpoint(cfg.output_dir, step)
    mine = cfg.output_dir / "notes.txt"  # not the course's: left alone
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("keep")
    cfg.log_dir.mkdir(parents=True)
    (cfg.log_dir / "log.jsonl").write_text('{"step": 1, "loss": 3.0}\n')
    said = []
    assert train.prepare_run(cfg, None, log=said.append) is None
    assert said == ["run 'used' was used before: starting clean (removed 2 checkpoint(s) and 1 log file(s); "
                    "resume='latest' continues a run instead)"]
    assert runs.checkpoints(cfg.output_dir) == [] and mine.read_text() == "keep" and runs.read_log(cfg.log_dir) == []
    said.clear()
    train.prepare_run(cfg, None, log=said.append)
    assert said == [], "a clean folder: nothing to say"


def test_resume_latest_trims_the_log(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path / "checkpoints")
    cfg = TrainConfig(run="r")
    for step in (2, 10, 4):
        _fake_checkpoint(cfg.output_dir, step)
    (cfg.output_dir / "checkpoint-12").mkdir()  # no trainer_state.json: cut short, never resumed from
    cfg.log_dir.mkdir(parents=True)
    (cfg.log_dir / "log.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 13)))
    said = []
    assert train.prepare_run(cfg, "latest", log=said.append) == str(cfg.output_dir / "checkpoint-10")
    assert [r["step"] for r in runs.read_log(cfg.log_dir)] == list(range(1, 11))
    assert said == [f"resuming run 'r' from {cfg.output_dir / 'checkpoint-10'} (step 10)"]
    assert train.prepare_run(cfg, str(cfg.output_dir / "checkpoint-2"), log=said.append).endswith("checkpoint-2")
    with pytest.raises(FileNotFoundError, match="not a training checkpoint"):
        train.prepare_run(cfg, str(cfg.output_dir / "checkpoint-12"))


def test_run_lock(tmp_path):
    folder = tmp_path / "runs" / "x"
    folder.mkdir(parents=True)
    (folder / runs.LOCK).write_text(json.dumps({"pid": _live_pid()}))
    with pytest.raises(RuntimeError, match=f"run 'x' is in use by a running job \\(pid {_live_pid()}\\)"):
        runs.RunLock(folder, "x").__enter__()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (folder / runs.LOCK).write_text(json.dumps({"pid": dead.pid}))  # its job ended: the lock is stale
    with runs.RunLock(folder, "x"):
        assert runs.lock_holder(folder) == os.getpid()
    assert not (folder / runs.LOCK).exists()


# ----------------------------------------------------------------------------- real runs (subprocesses)
def test_killed_run_resumes_to_the_planned_step(tmp_path, course_dataset, tiny_model_dir):
    cfg = TrainConfig.preset_config("cpu-tiny", run="k", **KILLED)
    argv = shlex.split(train_cli.command_line(cfg, data=course_dataset))[1:]
    job = subprocess.Popen([sys.executable, *argv], cwd=paths.PROJECT_ROOT, env=course_env(tmp_path),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "checkpoints" / "sft-lora-k" / "checkpoint-1" / "trainer_state.json"
    deadline = time.time() + 500
    while not first.is_file() and job.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert first.is_file(), "the run ended before its first checkpoint"
    latest = runs.checkpoints(first.parents[1])[-1]
    step = runs.checkpoint_step(latest)
    assert step < 3, "killed before its last step"
    out = cli(tmp_path, *argv[2:], "--resume", "latest")  # its lock names a dead process: taken over
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resuming run 'k' from {latest} (step {step})" in out.stdout
    assert "3 steps in" in out.stdout
    losses = [r["step"] for r in runs.read_log(tmp_path / "runs" / "k") if "loss" in r]
    assert losses == [1, 2, 3], "each step logged once: the killed run's later lines were cut"
    assert (tmp_path / "checkpoints" / "sft-lora-k" / "adapter_model.safetensors").is_file()


# ----------------------------------------------------------------------------- recipes and examples
def test_accelerate_recipes_parse():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    root = paths.PROJECT_ROOT / "recipes"
    ddp, fsdp = (load_config_from_file(str(root / name)) for name in ("ddp.yaml", "fsdp_qlora.yaml"))
    assert ddp.distributed_type == DistributedType.MULTI_GPU and ddp.num_processes == 2
    assert fsdp.distributed_type == DistributedType.FSDP
    assert fsdp.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD" and fsdp.fsdp_config["fsdp_use_orig_params"] is False


@pytest.mark.parametrize("module", [distributed, train_cli])
def test_docstring_examples(module):
    import doctest

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
