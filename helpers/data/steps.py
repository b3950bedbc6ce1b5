"""Steps 2–10 of the dataset pipeline as plain functions, numbered in the order they run.

Step 1 (raw files → ``messages``) is ``helpers.data.sources``. Each function here takes
and returns ``datasets`` objects; ``helpers.data.pipeline.Pipeline`` calls them in order
and records what each one dropped.

    2 add_metadata → 3 dedup → 4 save_pools → 5 normalize_weights → 6 mix
    (interleave_mix | resample_mix) → 7 final_dedup → 8 split_train_valid → 9 export
    → 10 validate (``helpers.data.report.validate``)
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets, interleave_datasets, load_from_disk
from datasets.table import InMemoryTable

from .. import atomic, paths
from . import manifest
from .report import validate
from .sources import FEATURES, column

# tags every row of a pool gets; json rows carry their own: json-only (answer in JSON) or json-negative
# (JSON shown, plain text asked)
TAGS = {"cmath": ["math", "zh"], "mawps": ["math", "en"], "emoji": ["chat", "emoji"], "json": [], "tool": ["tool-call"]}
DEFAULT_WEIGHTS = {"cmath": 0.2, "mawps": 0.2, "emoji": 0.15, "json": 0.35, "tool": 0.1}
STRATEGIES = ("interleave", "resample")
DATASET_ROOT = paths.RUNS / "dataset"
DEFAULT_OUT = DATASET_ROOT / "qwen3_sft_mixed"


# ---------------------------------------------------------------- 2: metadata

def add_metadata(ds: Dataset, source: str, tags: Iterable[str]) -> Dataset:
    """Step 2: set ``source`` and add ``tags`` (kept in order, no repeats) to every row."""
    tags = list(tags)

    def fn(batch):
        return {"id": batch["id"], "messages": batch["messages"], "source": [source] * len(batch["tags"]),
                "tags": [list(dict.fromkeys(list(t or []) + tags)) for t in batch["tags"]],
                "tools": _tools_column(batch)}

    return ds.map(fn, batched=True, remove_columns=ds.column_names, features=FEATURES, desc=f"metadata {source}")


def _tools_column(batch) -> list:
    """The batch's ``tools`` (JSON text or None per row); all None where the column is absent."""
    return batch["tools"] if "tools" in batch else [None] * len(batch["messages"])


# ---------------------------------------------------------------- 3: dedup

def _md5_batch(batch: dict) -> dict:
    """MD5 of the canonical JSON of ``messages`` (sorted keys, no spaces): pure, cache-safe.

    A row with tools hashes ``{"messages", "tools"}``: the same talk with other tools is another sample.
    """
    keys = [m if t is None else {"messages": m, "tools": json.loads(t)}
            for m, t in zip(batch["messages"], _tools_column(batch))]
    return {"_md5": [hashlib.md5(json.dumps(k, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                                 .encode("utf-8")).hexdigest() for k in keys]}


def _hashes(ds: Dataset, num_proc: int | None = None) -> np.ndarray:
    return column(ds.map(_md5_batch, batched=True, num_proc=num_proc, remove_columns=ds.column_names,
                         desc="md5"), "_md5")


def dedup(ds: Dataset, num_proc: int | None = None) -> tuple[Dataset, int]:
    """Step 3: keep the first row of each ``messages`` MD5; returns (dataset, rows removed).

    Hashes come from a pure ``map``; the rows to keep are chosen afterwards from the hash
    column, so the result is the same with ``num_proc > 1`` and with the cache on.
    """
    if len(ds) == 0:
        return ds, 0
    _, first = np.unique(_hashes(ds, num_proc), return_index=True)
    keep = np.sort(first)
    return ds.select(keep), len(ds) - len(keep)


def materialize(ds: Dataset) -> Dataset:
    """``ds`` with its rows in order in one in-memory Arrow table (an Arrow ``take``).

    Same result as ``flatten_indices``, which re-casts every small chunk a shuffle or
    interleave leaves behind (about 25 s per 100k rows on 2 cores, this takes < 1 s).
    """
    return Dataset(InMemoryTable(ds.with_format("arrow")[:].combine_chunks()), info=ds.info.copy(), split=ds.split)


# ---------------------------------------------------------------- 4: save pools

def save_pools(pools: Mapping[str, Dataset], out_dir: str | Path | None = None) -> dict[str, Path]:
    """Step 4: each normalised pool ``save_to_disk`` under ``out_dir/<pool>`` (default ``<DEFAULT_OUT>/normalized``)."""
    out_dir = Path(out_dir or DEFAULT_OUT / "normalized")
    saved = {}
    for name, ds in pools.items():
        saved[name] = out_dir / name
        ds.save_to_disk(str(saved[name]))
    return saved


def load_pools(folder: str | Path | None = None) -> dict[str, Dataset]:
    """The pools saved by ``save_pools`` (Arrow, ready to re-mix without re-cleaning)."""
    folder = Path(folder or DEFAULT_OUT / "normalized")
    return {p.name: load_from_disk(str(p)) for p in sorted(folder.iterdir()) if p.is_dir()}


# ---------------------------------------------------------------- 5: weights

def normalize_weights(weights: Mapping[str, float] | None, pools: Iterable[str]) -> dict[str, float]:
    """Step 5: weights summing to 1 over ``pools`` (None or all zero → uniform).

    Any real number counts (numpy's too); negative, NaN or infinite weights and names that
    are not pools raise ``ValueError``; a pool without a weight gets 0 with a warning.

    >>> import numpy as np
    >>> normalize_weights({"a": np.int64(3), "b": np.float32(1)}, ["a", "b"])
    {'a': 0.75, 'b': 0.25}
    """
    pools = list(pools)
    if not pools:
        raise ValueError("no pools to weight")
    weights = dict(weights or {})
    for name, w in weights.items():
        if name not in pools:
            raise ValueError(f"weight given for {name!r}, which is not a pool; pools are {pools}")
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0:
            raise ValueError(f"weight for pool {name!r} must be a finite number >= 0, got {w!r}")
    weights = {name: float(w) for name, w in weights.items()}
    missing = [p for p in pools if p not in weights]
    if weights and missing:
        warnings.warn(f"no weight for pools {missing}: they get weight 0 and are left out of the mix", stacklevel=2)
    total = sum(weights.get(p, 0) for p in pools)
    if total == 0:
        return {p: 1 / len(pools) for p in pools}
    return {p: weights.get(p, 0) / total for p in pools}


# ---------------------------------------------------------------- 6: mix

def _mix_inputs(pools, weights, total_size):
    w = normalize_weights(weights, pools)
    used = [p for p in pools if w[p] > 0]
    for p in used:
        if len(pools[p]) == 0:
            raise ValueError(f"pool {p!r} is empty but has weight {w[p]:.3f}; give it weight 0 or add data")
    available = sum(len(pools[p]) for p in used)
    size = int(0.9 * available) if total_size is None else int(total_size)
    if size < 1:
        raise ValueError(f"total_size must be >= 1, got {size} (available rows: {available})")
    return w, used, size


def interleave_mix(pools: Mapping[str, Dataset], weights: Mapping[str, float] | None = None,
                   seed: int = 42, total_size: int | None = None) -> tuple[Dataset, dict]:
    """Step 6, interleave: each pool shuffled, rows drawn by the weights, never repeated.

    ``total_size`` defaults to ``int(0.9 × rows in the weighted pools)``. When a pool runs
    out it simply stops being drawn and the others continue in their relative
    proportions (``all_exhausted_without_replacement``): no row is repeated, so the
    final dedup has nothing to undo; the realised ratio then drifts from the requested
    one, and the report says where each pool ran out. Asking for more rows than exist
    gives all of them (use ``resample_mix`` to upsample).
    """
    w, used, size = _mix_inputs(pools, weights, total_size)
    probs = np.array([w[p] for p in used]) / sum(w[p] for p in used)
    stream = interleave_datasets([pools[p].shuffle(seed=seed) for p in used], probabilities=probs.tolist(),
                                 seed=seed, stopping_strategy="all_exhausted_without_replacement")
    mixed = materialize(stream.select(range(min(size, len(stream)))))
    return mixed, mix_report(mixed, pools, w, "interleave", size)


def _counts(w: Mapping[str, float], size: int) -> dict[str, int]:
    """Exact integer counts summing to ``size`` (largest remainder)."""
    raw = {p: w[p] * size for p in w}
    counts = {p: int(v) for p, v in raw.items()}
    for p in sorted(raw, key=lambda p: (counts[p] - raw[p], p))[: size - sum(counts.values())]:
        counts[p] += 1
    return counts


def resample_mix(pools: Mapping[str, Dataset], weights: Mapping[str, float] | None = None,
                 seed: int = 42, total_size: int | None = None) -> tuple[Dataset, dict]:
    """Step 6, resample: each pool drawn with replacement to its exact count, concatenated, shuffled.

    ``total_size`` defaults to ``int(0.9 × rows in the weighted pools)``. Drawing with
    replacement repeats rows (always for a pool smaller than its count): copies keep their
    ``id``, ``final_dedup`` keeps them and ``split_train_valid`` keeps all copies of a row
    on one side.
    """
    w, used, size = _mix_inputs(pools, weights, total_size)
    counts = _counts({p: w[p] for p in used}, size)
    rng = np.random.default_rng(seed)
    parts = [pools[p].select(rng.integers(0, len(pools[p]), size=counts[p])) for p in used if counts[p]]
    mixed = materialize(concatenate_datasets(parts).shuffle(seed=seed))
    return mixed, mix_report(mixed, pools, w, "resample", size)


def mix_report(mixed: Dataset, pools: Mapping[str, Dataset], w: Mapping[str, float], strategy: str,
               size: int) -> dict:
    """Requested vs realised share per pool, unique rows drawn and where a pool ran out."""
    sources = column(mixed, "source")
    ids = column(mixed, "id")
    rows = {}
    for p in pools:
        hit = np.flatnonzero(sources == p)
        exhausted = strategy == "interleave" and len(hit) == len(pools[p]) and len(hit) > 0
        rows[p] = {"requested": round(w[p], 4), "realised": round(len(hit) / max(len(mixed), 1), 4),
                   "rows": int(len(hit)), "unique": int(len(set(ids[hit]))), "available": len(pools[p]),
                   "ran_out_at_row": int(hit[-1]) + 1 if exhausted else None}
    return {"strategy": strategy, "requested_size": size, "rows": len(mixed), "pools": rows}


def mix(pools: Mapping[str, Dataset], weights=None, strategy: str = "interleave", seed: int = 42,
        total_size: int | None = None) -> tuple[Dataset, dict]:
    """``interleave_mix`` or ``resample_mix`` by name."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    fn = interleave_mix if strategy == "interleave" else resample_mix
    return fn(pools, weights, seed=seed, total_size=total_size)


# ---------------------------------------------------------------- 7: final dedup

def final_dedup(ds: Dataset) -> tuple[Dataset, int]:
    """Step 7: drop rows whose ``messages`` equal those of an earlier row with another ``id``.

    This removes cross-pool duplicates but keeps the deliberate copies ``resample_mix``
    makes (same ``id``), so deduplication does not undo the requested mix.
    """
    if len(ds) == 0:
        return ds, 0
    hashes, ids = _hashes(ds), column(ds, "id")
    first_id: dict[str, str] = {}
    for h, i in zip(hashes, ids):  # one pass in row order; plain dict is the clearest form
        first_id.setdefault(h, i)
    keep = np.flatnonzero([first_id[h] == i for h, i in zip(hashes, ids)])
    return materialize(ds.select(keep)), len(ds) - len(keep)


# ---------------------------------------------------------------- 8: split

def split_train_valid(ds: Dataset, valid_ratio: float = 0.05, seed: int = 42,
                      min_valid: int = 100) -> tuple[DatasetDict, dict]:
    """Step 8: seeded, stratified by ``source``, copies of one ``id`` never on both sides.

    Validation gets ``max(ceil(valid_ratio × samples), min_valid)`` distinct samples, but
    never more than half of them: a tiny set of 120 samples splits 60/60 rather than
    leaving train empty. Validation keeps one copy of each sample (resample copies are
    counted in the report); train keeps every copy.
    """
    if not 0 < valid_ratio < 1:
        raise ValueError(f"valid_ratio must be between 0 and 1, got {valid_ratio}")
    ids, sources = column(ds, "id"), column(ds, "source")
    uniq, first, row_to_uniq = np.unique(ids, return_index=True, return_inverse=True)
    if len(uniq) < 2:
        raise ValueError(f"need at least 2 distinct samples to split, got {len(uniq)}")
    n_val = min(max(math.ceil(valid_ratio * len(uniq)), min_valid), len(uniq) // 2)
    rng = np.random.default_rng(seed)
    # positions in ``uniq``, not the id strings: np.isin on 100k strings took 6 s
    groups = {s: rng.permutation(np.flatnonzero(sources[first] == s)) for s in sorted(set(sources[first]))}
    quota = _counts({s: len(g) / len(uniq) for s, g in groups.items()}, n_val)
    chosen = np.zeros(len(uniq), dtype=bool)
    chosen[np.concatenate([g[: quota[s]] for s, g in groups.items()])] = True
    in_val = chosen[row_to_uniq]
    val_idx = np.sort(first[chosen])
    splits = DatasetDict(train=materialize(ds.select(np.flatnonzero(~in_val)).shuffle(seed=seed)),
                         validation=materialize(ds.select(val_idx).shuffle(seed=seed)))
    info = {"samples": len(uniq), "valid_samples": n_val, "train_rows": len(splits["train"]),
            "validation_rows": len(splits["validation"]),
            "copies_kept_out_of_validation": int(in_val.sum()) - len(val_idx)}
    return splits, info


# ---------------------------------------------------------------- 9: export

def write_splits(splits: DatasetDict, folder: str | Path, build_id: str) -> dict[str, Path]:
    """``train/``, ``validation/`` (Arrow, each carrying ``build_id``) and ``train.jsonl``, ``val.jsonl``
    (UTF-8) into the new folder ``folder``."""
    folder = Path(folder)
    files = {}
    for split, jsonl in manifest.SPLITS.items():
        files[split] = folder / split
        splits[split].save_to_disk(str(files[split]))
        manifest.mark_split(files[split], split, build_id, len(splits[split]))
        files[jsonl] = folder / jsonl
        _to_jsonl(splits[split], files[jsonl])
    return files


def export(splits: DatasetDict, out_dir: str | Path | None = None, settings: dict | None = None,
           sources: dict[str, str] | None = None, *, stage: str | Path | None = None,
           build_id: str | None = None) -> dict[str, Path]:
    """Step 9: ``write_splits`` and a manifest into a temporary sibling of ``out_dir`` (``stage``, or a
    new one), every row checked (step 10's ``validate``), then renamed to ``out_dir`` as a whole.

    With a problem nothing is renamed and ``out_dir`` keeps what it had; ``out_dir`` must be new,
    empty or a course build (``manifest.check_writable``).
    """
    out_dir = manifest.check_writable(out_dir or DEFAULT_OUT)
    build_id = build_id or manifest.new_build_id()
    stage = Path(stage) if stage else atomic.partial_folder(out_dir)
    try:
        files = write_splits(splits, stage, build_id)
        problems = [p for name in manifest.SPLITS.values() for p in validate(stage / name)]
        if problems:
            raise ValueError(f"{len(problems)} problems in the built set, e.g. {problems[:3]}; "
                             f"{out_dir} was left as it was")
        manifest.write(stage, build_id, settings or {}, sources or {}, {s: len(splits[s]) for s in manifest.SPLITS})
        manifest.check_writable(out_dir)  # files may have appeared there since the build began
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    atomic.replace_folder(stage, out_dir)
    return {name: out_dir / path.relative_to(stage) for name, path in files.items()}


# pandas writes every message key; the Arrow schema's empty ones are not part of the sample.
# Outside JSON strings a quote is never escaped, so these exact bytes only occur as keys.
_NULL_KEYS_RE = re.compile(r',"(?:tool_calls|tool_call_id)":null')


def _to_jsonl(ds: Dataset, path: Path) -> None:
    ds.to_json(str(path), force_ascii=False, lines=True)
    path.write_text(_NULL_KEYS_RE.sub("", path.read_text(encoding="utf-8")), encoding="utf-8")


def jsonl_md5(ds: Dataset) -> str:
    """MD5 of ``ds`` written as ``export`` writes JSONL: equal digests, byte-identical files."""
    with tempfile.TemporaryDirectory() as tmp:
        _to_jsonl(ds, Path(tmp) / "rows.jsonl")
        return hashlib.md5((Path(tmp) / "rows.jsonl").read_bytes()).hexdigest()
