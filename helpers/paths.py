"""Where the course reads and writes: one place for every path.

Outputs go under the project's ``runs/``, ``checkpoints/`` and ``eval/``; caches
(fixture model, Hugging Face, matplotlib, IPython, Jupyter) under ``.cache/``.
Set ``COURSE_HOME`` to move the whole tree, ``COURSE_CACHE`` to move the caches.
"""
from __future__ import annotations

import os
from pathlib import Path

from .names import check_name

PROJECT_ROOT = Path(os.environ.get("COURSE_HOME", Path(__file__).resolve().parents[1]))
CACHE = Path(os.environ.get("COURSE_CACHE", PROJECT_ROOT / ".cache"))
DATA = PROJECT_ROOT / "data"
PICS = PROJECT_ROOT / "pics"
RUNS = PROJECT_ROOT / "runs"
CHECKPOINTS = PROJECT_ROOT / "checkpoints"
EVAL = PROJECT_ROOT / "eval"

_CACHE_VARS = {
    "HF_HOME": "hf",
    "MPLCONFIGDIR": "matplotlib",
    "IPYTHONDIR": "ipython",
    "JUPYTER_CONFIG_DIR": "jupyter/config",
    "JUPYTER_DATA_DIR": "jupyter/data",
    "JUPYTER_RUNTIME_DIR": "jupyter/runtime",
    "TRITON_CACHE_DIR": "triton",
}


def set_cache_env() -> dict[str, str]:
    """Point every library cache under ``CACHE`` unless the caller already chose one."""
    for var, sub in _CACHE_VARS.items():
        os.environ.setdefault(var, str(CACHE / sub))
        Path(os.environ[var]).mkdir(parents=True, exist_ok=True)  # IPython rejects a missing dir
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return {var: os.environ[var] for var in _CACHE_VARS}


def output_dir(kind: str, name: str = "") -> Path:
    """A folder under runs/, checkpoints/ or eval/ (created); ``name`` is one folder name (``names.check_name``)."""
    roots = {"runs": RUNS, "checkpoints": CHECKPOINTS, "eval": EVAL}
    if kind not in roots:
        raise ValueError(f"output kind {kind!r} is not one of {sorted(roots)}")
    path = roots[kind] / check_name(name, f"{kind}/ folder name") if name else roots[kind]
    path.mkdir(parents=True, exist_ok=True)
    return path
