"""helpers — the small package behind the course notebooks.

One module per notebook topic; notebooks import what they need, e.g.
``from helpers import templates``. Importing the package points every library
cache (Hugging Face, matplotlib, IPython, Jupyter) under the project's ``.cache/``.
"""
import logging

from . import paths

paths.set_cache_env()
# bitsandbytes on avx512_bf16 CPUs tries to fetch an optional kernel from the hub and warns
# when offline; its pure-PyTorch fallback is what the course uses, so the warning is noise.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

from .models import load_model, load_tokenizer  # noqa: E402

__all__ = ["load_model", "load_tokenizer", "paths"]
