"""helpers — the small package behind the course notebooks.

One module per notebook topic; notebooks import what they need, e.g.
``from helpers import templates``. Importing the package points every library
cache (Hugging Face, matplotlib, IPython, Jupyter) under the project's ``.cache/``.
"""
import importlib.abc
import logging
import sys

from . import paths

# Modules that moved: importing an old name fails with the new one in the message.
MOVED = {"helpers.data_sources": "helpers.data.sources", "helpers.data_report": "helpers.data.report",
         "helpers.data_samples": "helpers.synthetic (row makers) and tools/make_samples.py (the data/ writer)",
         "helpers.fixtures": "helpers.tiny_qwen3", "helpers.course": "tools/run_course.py",
         "helpers.clean_copies": "tools/clean_copies.py"}


class _MovedModules(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        old = next((o for o in MOVED if name == o or name.startswith(o + ".")), None)
        if old:
            raise ImportError(f"{name} has moved: use {MOVED[old]}", name=name)
        return None


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())

paths.set_cache_env()
# bitsandbytes on avx512_bf16 CPUs tries to fetch an optional kernel from the hub and warns
# when offline; its pure-PyTorch fallback is what the course uses, so the warning is noise.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

from .models import load_model, load_tokenizer  # noqa: E402

__all__ = ["load_model", "load_tokenizer", "paths"]
