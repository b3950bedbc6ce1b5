"""helpers — the small package behind the course notebooks.

One module per notebook topic; notebooks import what they need, e.g.
``from helpers import templates``. Importing the package points every library
cache (Hugging Face, matplotlib, IPython, Jupyter) under the project's ``.cache/``.
"""
from . import paths

paths.set_cache_env()

from .models import load_model, load_tokenizer  # noqa: E402

__all__ = ["load_model", "load_tokenizer", "paths"]
