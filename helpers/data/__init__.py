"""The dataset pipeline of notebook 04: raw sources → one mixed, deduplicated, validated SFT set.

Modules in the order the data flows: ``read`` and ``sources`` (step 1: raw files or the hub →
``messages``), ``steps`` (steps 2–10), ``pipeline`` (``Pipeline``, ``build``, ``load_splits``,
``python -m helpers.data``), ``report`` (validation, tables, plots).
The names notebooks use are importable from here: ``data.build()``, ``data.load_splits()``.
"""
from . import manifest, report, sources, steps
from .manifest import check_writable
from .pipeline import Pipeline, build, ensure_built, is_built, load_splits, summary
from .report import validate
from .sources import POOLS, normalize_pool
from .steps import (DEFAULT_OUT, DEFAULT_WEIGHTS, STRATEGIES, TAGS, add_metadata, dedup, export, final_dedup,
                    interleave_mix, jsonl_md5, load_pools, mix, normalize_weights, resample_mix, save_pools,
                    split_train_valid, write_splits)

__all__ = ["DEFAULT_OUT", "POOLS", "DEFAULT_WEIGHTS", "STRATEGIES", "TAGS", "Pipeline", "add_metadata", "build", "check_writable", "dedup",
           "ensure_built",
           "export", "final_dedup", "interleave_mix", "is_built", "jsonl_md5", "load_pools", "load_splits", "manifest", "mix",
           "normalize_pool", "normalize_weights", "report", "resample_mix", "save_pools", "sources",
           "split_train_valid", "steps", "summary", "validate", "write_splits"]
