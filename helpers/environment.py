"""What this machine is and which training path will run (notebook 00).

On a CUDA machine with unsloth, importing this module (``import helpers`` does) arranges for unsloth
to be imported before transformers, trl or peft, whichever comes first: it patches them as they load.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import platform
import re
import shutil
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import paths

# Free space the course needs, in GiB: the fixture and outputs vs. the real model's
# download (~8 GB in bf16), its merged copy and checkpoints.
DISK_NEEDED_GIB = {"tiny-qwen3": 2, "real": 30}
# QLoRA on Qwen3-4B at r=16, seq 1024, batch 1, gradient checkpointing fits in ~8 GiB.
VRAM_NEEDED_GIB = 8


# Pinned for the project's own tests and CI, not needed to take the course.
TEST_TOOLS = ("pytest", "pytest-xdist", "playwright")
# Opens the notebooks (`make lab`); any Jupyter front end (VS Code, papermill) runs them as well.
FRONT_ENDS = ("jupyterlab",)


def pinned_versions(requirements: Path | None = None, test_tools: bool = False) -> list[dict]:
    """Each pin in requirements.txt beside the installed version and a status: ok, differs or MISSING.

    ``differs`` runs, but is not the set the course is tested with (a local build tag such as
    ``+cu130`` counts as the same version). The test tools are listed only if asked.
    """
    requirements = requirements or paths.PROJECT_ROOT / "requirements.txt"
    rows = []
    for line in requirements.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if not m or (m.group(1).lower() in TEST_TOOLS and not test_tools):
            continue
        name, pin = m.groups()
        try:
            have = version(name)
        except PackageNotFoundError:
            have = None
        status = "MISSING" if have is None else "ok" if have.split("+")[0] == pin else "differs"
        rows.append({"package": name, "pinned": pin, "installed": have or "–", "status": status})
    return rows


def device_report() -> dict:
    """CPU/GPU facts that decide speed: device name, memory, cores, bf16 support."""
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu_cores": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cuda": torch.cuda.is_available()}
    if info["cuda"]:
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, vram_gib=round(props.total_memory / 2**30, 1),
                    bf16=torch.cuda.is_bf16_supported())
    return info


def cpu_has_fast_bf16() -> bool:
    """True when this CPU has bf16 instructions (avx512_bf16 or AMX), where bf16 autocast pays off."""
    import torch  # lazy: ``import helpers`` stays light (notebooks check their parameters first)

    cap = torch.backends.cpu.get_cpu_capability()
    return "AVX512" in cap and _cpu_flag("avx512_bf16") or _cpu_flag("amx_bf16")


def _cpu_flag(flag: str) -> bool:
    try:
        return flag in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def unsloth_available() -> bool:
    """True when unsloth is installed (it is only imported on CUDA machines)."""
    return importlib.util.find_spec("unsloth") is not None


# "0" leaves transformers, trl and peft as they are (bench/'s plain baselines set it)
UNSLOTH_FIRST_ENV = "COURSE_UNSLOTH_FIRST"
PATCHED_BY_UNSLOTH = ("transformers", "trl", "peft")


def import_unsloth_first() -> bool:
    """Import unsloth on a CUDA machine that has it; False where that does not apply or the import failed."""
    if os.environ.get(UNSLOTH_FIRST_ENV, "1") == "0" or not unsloth_available():
        return False
    import torch  # lazy: only on machines with unsloth, when transformers is about to load anyway

    if not torch.cuda.is_available():
        return False
    try:
        import unsloth  # noqa: F401
    except Exception as err:  # a broken install must not stop the bitsandbytes route
        warnings.warn(f"unsloth failed to import ({type(err).__name__}: {err}); training takes the "
                      "transformers + bitsandbytes route", stacklevel=2)
        return False
    return True


class ImportFirst(importlib.abc.MetaPathFinder):
    """Runs ``first()`` once, the first time one of ``names`` is imported; if ``first`` imported that
    module itself, the import system gets the loaded module instead of running it a second time."""

    def __init__(self, first, names=PATCHED_BY_UNSLOTH):
        self.first, self.names = first, tuple(names)

    def find_spec(self, name, path=None, target=None):
        if name not in self.names:
            return None
        sys.meta_path.remove(self)
        self.first()
        module = sys.modules.get(name)
        if module is None:
            return None
        # the import system asks a loaded module for its own spec: hand it one that loads nothing
        module.__spec__ = importlib.util.spec_from_loader(name, _Loaded(module.__spec__))
        return module.__spec__


class _Loaded(importlib.abc.Loader):
    def __init__(self, spec):
        self.spec = spec

    def create_module(self, spec):
        return sys.modules[spec.name]

    def exec_module(self, module):
        module.__spec__ = self.spec  # the module's own spec again


def training_path() -> tuple[str, str]:
    """(path, reason): which of the course's three QLoRA paths will run here."""
    import torch

    if torch.cuda.is_available() and unsloth_available():
        return "unsloth", "CUDA and unsloth are available: FastLanguageModel 4-bit + get_peft_model"
    if torch.cuda.is_available():
        return "bnb-cuda", ("CUDA without unsloth: transformers + BitsAndBytesConfig(nf4) + PEFT "
                            "(pip install -r requirements-gpu.txt for the fast path)")
    return "bnb-cpu", "no CUDA: the same 4-bit bitsandbytes path on the CPU (slow, fine for tiny-qwen3)"


def disk_free_gib(path: Path | None = None) -> float:
    """Free GiB on the disk holding the project."""
    return shutil.disk_usage(path or paths.PROJECT_ROOT).free / 2**30


def readiness(model: str) -> list[str]:
    """Problems that would stop the course with ``model``; empty when all is well.

    A missing package stops it (but not a missing Jupyter front end: something is running this);
    a package at another version than the pin does not, and ``pinned_versions`` shows it.
    """
    problems = [f"{r['package']}=={r['pinned']} is not installed: run `make install`"
                for r in pinned_versions() if r["status"] == "MISSING" and r["package"] not in FRONT_ENDS]
    real = model != "tiny-qwen3"
    need = DISK_NEEDED_GIB["real" if real else "tiny-qwen3"]
    free = disk_free_gib()
    if free < need:
        problems.append(f"only {free:.1f} GiB free on the project's disk; {model} needs about {need} GiB")
    if real:
        dev = device_report()
        if not dev["cuda"]:
            problems.append(f"{model} needs a CUDA GPU with ≥ {VRAM_NEEDED_GIB} GiB; this machine has none "
                            "(use MODEL='tiny-qwen3' on a CPU)")
        elif dev["vram_gib"] < VRAM_NEEDED_GIB:
            problems.append(f"{dev['gpu']} has {dev['vram_gib']} GiB; QLoRA on {model} needs ≥ {VRAM_NEEDED_GIB} GiB")
    return problems


if (unsloth_available() and os.environ.get(UNSLOTH_FIRST_ENV, "1") != "0"
        and not any(isinstance(f, ImportFirst) for f in sys.meta_path)
        and not any(name in sys.modules for name in PATCHED_BY_UNSLOTH)):
    sys.meta_path.insert(0, ImportFirst(import_unsloth_first))
