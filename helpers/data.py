"""The dataset pipeline of notebook 04: raw sources → one mixed, deduplicated, validated SFT set.

The seed's steps, in order: normalise (``data_sources.normalize_*``) → ``add_metadata`` →
``dedup`` per pool → ``save_pools`` → mix (``interleave_mix`` or ``resample_mix``, weights
through ``normalize_weights``) → ``final_dedup`` → ``split_train_valid`` → ``export`` →
``validate``. ``Pipeline`` runs them one at a time (the notebook) and ``build`` all at once;
``load_splits`` is what training and evaluation call. Every drop is counted in the report.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets, interleave_datasets, load_from_disk

from . import data_sources, paths
from .data_sources import FEATURES, HUB_IDS, column

# pool → (normaliser, local files under data/); json and tool are the course's own schema.
POOLS = {
    "cmath": ("cmath", ["cmath.jsonl", "cmath_question.jsonl"]),
    "mawps": ("mawps", ["mawps.csv", "mawps_seed.csv"]),
    "emoji": ("emoji", ["emoji.jsonl", "emoji_dpo.jsonl"]),
    "json": ("chat", ["json_strict.jsonl"]),
    "tool": ("chat", ["tool_calls.jsonl"]),
}
TAGS = {"cmath": ["math", "zh"], "mawps": ["math", "en"], "emoji": ["chat", "emoji"],
        "json": ["json-only", "strict"], "tool": ["tool-call"]}
DEFAULT_WEIGHTS = {"cmath": 0.2, "mawps": 0.2, "emoji": 0.15, "json": 0.35, "tool": 0.1}
STRATEGIES = ("interleave", "resample")
DATASET_ROOT = paths.RUNS / "dataset"
DEFAULT_OUT = DATASET_ROOT / "qwen3_sft_mixed"
ROLES = {"system", "user", "assistant", "tool"}


# ---------------------------------------------------------------- 1–4: pools

def normalize_pool(pool: str, source: str = "local", data_dir: str | Path | None = None) -> tuple[Dataset, dict]:
    """Step 1 for one pool: every file normalised and concatenated; report summed over files."""
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; pools are {list(POOLS)}")
    if source not in ("local", "hub"):
        raise ValueError(f"source must be 'local' or 'hub', got {source!r}")
    kind, files = POOLS[pool]
    if source == "hub" and pool in HUB_IDS:
        parts = [getattr(data_sources, f"normalize_{kind}")(HUB_IDS[pool], hub=True)]
    else:
        folder = Path(data_dir or paths.DATA)
        fn = getattr(data_sources, f"normalize_{kind}")
        parts = [fn(folder / f, pool) if kind == "chat" else fn(folder / f) for f in files]
    report = {"files": [r["file"] for _, r in parts], "dropped": {}, "examples": {}}
    for key in ("rows_in", "rows_out", "control_tokens_removed", "answers_capped"):
        report[key] = sum(r[key] for _, r in parts)
    for _, r in parts:
        for reason, n in r["dropped"].items():
            report["dropped"][reason] = report["dropped"].get(reason, 0) + n
            report["examples"].setdefault(reason, []).extend(r["examples"][reason])
    return concatenate_datasets([ds for ds, _ in parts]), report


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
    from datasets.table import InMemoryTable

    return Dataset(InMemoryTable(ds.with_format("arrow")[:].combine_chunks()), info=ds.info.copy(), split=ds.split)


def save_pools(pools: Mapping[str, Dataset], out_dir: str | Path | None = None) -> dict[str, Path]:
    """Step 4: each normalised pool ``save_to_disk`` under ``runs/dataset/normalized/<pool>``."""
    out_dir = Path(out_dir or DATASET_ROOT / "normalized")
    saved = {}
    for name, ds in pools.items():
        saved[name] = out_dir / name
        ds.save_to_disk(str(saved[name]))
    return saved


def load_pools(folder: str | Path | None = None) -> dict[str, Dataset]:
    """The pools saved by ``save_pools`` (Arrow, ready to re-mix without re-cleaning)."""
    folder = Path(folder or DATASET_ROOT / "normalized")
    return {p.name: load_from_disk(str(p)) for p in sorted(folder.iterdir()) if p.is_dir()}


# ---------------------------------------------------------------- 5 + 8: mixing

def normalize_weights(weights: Mapping[str, float] | None, pools: Iterable[str]) -> dict[str, float]:
    """Step 8: weights summing to 1 over ``pools`` (None or all zero → uniform).

    Negative, NaN or infinite weights and names that are not pools raise ``ValueError``;
    a pool without a weight gets 0 with a warning.
    """
    pools = list(pools)
    if not pools:
        raise ValueError("no pools to weight")
    weights = dict(weights or {})
    for name, w in weights.items():
        if name not in pools:
            raise ValueError(f"weight given for {name!r}, which is not a pool; pools are {pools}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"weight for pool {name!r} must be a finite number >= 0, got {w!r}")
    missing = [p for p in pools if p not in weights]
    if weights and missing:
        warnings.warn(f"no weight for pools {missing}: they get weight 0 and are left out of the mix", stacklevel=2)
    total = sum(weights.get(p, 0) for p in pools)
    if total == 0:
        return {p: 1 / len(pools) for p in pools}
    return {p: weights.get(p, 0) / total for p in pools}


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
    """Step 5.1: each pool shuffled, rows drawn by the weights, never repeated.

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
    """Step 5.2: each pool drawn with replacement to its exact count, concatenated, shuffled.

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


# ---------------------------------------------------------------- 6, 7, 11

def final_dedup(ds: Dataset) -> tuple[Dataset, int]:
    """Step 6: drop rows whose ``messages`` equal those of an earlier row with another ``id``.

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


def split_train_valid(ds: Dataset, valid_ratio: float = 0.05, seed: int = 42,
                      min_valid: int = 100) -> tuple[DatasetDict, dict]:
    """Step 7: seeded, stratified by ``source``, copies of one ``id`` never on both sides.

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


def export(splits: DatasetDict, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Step 11: ``train/``, ``validation/`` (Arrow) and ``train.jsonl``, ``val.jsonl`` (UTF-8)."""
    out_dir = Path(out_dir or DEFAULT_OUT)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, stem in (("train", "train"), ("validation", "val")):
        arrow = out_dir / split
        if arrow.exists():
            shutil.rmtree(arrow)
        splits[split].save_to_disk(str(arrow))
        files[split] = arrow
        files[f"{stem}.jsonl"] = out_dir / f"{stem}.jsonl"
        _to_jsonl(splits[split], files[f"{stem}.jsonl"])
    return files


def _to_jsonl(ds: Dataset, path: Path) -> None:
    ds.to_json(str(path), force_ascii=False, lines=True)


def jsonl_md5(ds: Dataset) -> str:
    """MD5 of ``ds`` written as ``export`` writes JSONL: equal digests, byte-identical files."""
    with tempfile.TemporaryDirectory() as tmp:
        _to_jsonl(ds, Path(tmp) / "rows.jsonl")
        return hashlib.md5((Path(tmp) / "rows.jsonl").read_bytes()).hexdigest()


# ---------------------------------------------------------------- the whole pipeline

class Pipeline:
    """The steps one at a time (notebook 04); each returns the rows-per-pool table so far.

    ``report`` collects rows per pool per step, every drop by reason, the mix, the split,
    token-length statistics and validation problems; ``save_report`` writes it as JSON.
    """

    def __init__(self, source: str = "local", weights: Mapping[str, float] | None = None,
                 strategy: str = "interleave", seed: int = 42, total_size: int | None = None,
                 valid_ratio: float = 0.05, min_valid: int = 100, data_dir: str | Path | None = None,
                 out_dir: str | Path | None = None):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        self.source, self.strategy, self.seed, self.total_size = source, strategy, seed, total_size
        self.valid_ratio, self.min_valid, self.data_dir = valid_ratio, min_valid, data_dir
        self.out_dir = Path(out_dir or DEFAULT_OUT)
        self.pools: dict[str, Dataset] = {}
        self.mixed: Dataset | None = None
        self.splits: DatasetDict | None = None
        self.report: dict = {"config": {"source": source, "weights": self.weights, "strategy": strategy,
                                        "seed": seed, "total_size": total_size, "valid_ratio": valid_ratio,
                                        "min_valid": min_valid},
                             "steps": {}, "dropped": [], "cleaning": {}}

    def _record(self, step: str, counts: Mapping[str, int]):
        from .data_report import steps_table

        self.report["steps"][step] = {p: int(n) for p, n in counts.items()}
        return steps_table(self.report)

    def _drop(self, step: str, pool: str, reason: str, n: int, examples=()):
        if n:
            self.report["dropped"].append({"step": step, "pool": pool, "reason": reason, "rows": int(n),
                                           "examples": list(examples)})

    def _by_pool(self, ds: Dataset) -> dict[str, int]:
        sources = column(ds, "source") if len(ds) else np.array([])
        return {p: int((sources == p).sum()) for p in self.pools}

    def normalize(self):
        """Step 1: every pool normalised to ``messages``; drops and control tokens counted."""
        raw = {}
        for pool in POOLS:
            self.pools[pool], r = normalize_pool(pool, self.source, self.data_dir)
            raw[pool] = r["rows_in"]
            self.report["cleaning"][pool] = {k: r[k] for k in ("files", "control_tokens_removed", "answers_capped")}
            for reason, n in r["dropped"].items():
                self._drop("normalize", pool, reason, n, r["examples"][reason])
        self._record("raw", raw)
        return self._record("normalize", {p: len(ds) for p, ds in self.pools.items()})

    def add_metadata(self):
        """Step 2: ``source`` and ``tags`` on every row."""
        self.pools = {p: add_metadata(ds, p, TAGS[p]) for p, ds in self.pools.items()}
        return self._record("metadata", {p: len(ds) for p, ds in self.pools.items()})

    def dedup(self):
        """Step 3: MD5 dedup inside each pool."""
        for p, ds in self.pools.items():
            self.pools[p], removed = dedup(ds)
            self._drop("dedup", p, "duplicate inside the pool", removed)
        return self._record("dedup", {p: len(ds) for p, ds in self.pools.items()})

    def save_pools(self) -> dict[str, Path]:
        """Step 4: each pool to Arrow under ``runs/dataset/normalized/``."""
        return save_pools(self.pools, self.out_dir.parent / "normalized")

    def mix(self):
        """Step 5: interleave or resample by the weights; the report gets requested vs realised."""
        self.mixed, self.report["mix"] = mix(self.pools, self.weights, self.strategy, self.seed, self.total_size)
        for p, row in self.report["mix"]["pools"].items():
            self._drop("mix", p, "not drawn by the mix", row["available"] - row["unique"])
        return self._record("mix", self._by_pool(self.mixed))

    def final_dedup(self):
        """Step 6: cross-pool duplicates removed after mixing (resample copies kept)."""
        before = self._by_pool(self.mixed)
        self.mixed, _ = final_dedup(self.mixed)
        after = self._by_pool(self.mixed)
        for p in self.pools:
            self._drop("final_dedup", p, "same messages as a row of another pool", before[p] - after[p])
        return self._record("final_dedup", after)

    def split(self):
        """Step 7: seeded, stratified train/validation split."""
        self.splits, self.report["split"] = split_train_valid(self.mixed, self.valid_ratio, self.seed, self.min_valid)
        self._record("train", self._by_pool(self.splits["train"]))
        n_copies = self.report["split"]["copies_kept_out_of_validation"]
        self._drop("split", "all", "resample copy of a validation sample (kept out of validation)", n_copies)
        return self._record("validation", self._by_pool(self.splits["validation"]))

    def export(self) -> dict[str, Path]:
        """Step 11: Arrow + JSONL under ``out_dir``; the report is saved beside them."""
        files = export(self.splits, self.out_dir)
        self.report["files"] = {k: str(v) for k, v in files.items()}
        return files

    def validate(self) -> list[str]:
        """Every problem in the exported JSONL (file:line id=…)."""
        from .data_report import validate

        problems = [p for name in ("train.jsonl", "val.jsonl") for p in validate(self.out_dir / name)]
        self.report["validation_problems"] = problems
        self.report["json_rows_in_validation"] = int(sum("json-only" in t for t in self.splits["validation"]["tags"][:]))
        return problems

    def token_stats(self, tokenizer="tiny-qwen3", per_pool: int = 500) -> dict[str, np.ndarray]:
        """Token lengths per pool with the course tokenizer (seeded sample of ``per_pool`` rows)."""
        from . import load_tokenizer
        from .data_report import length_histogram, length_stats, token_lengths

        tok = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        full = concatenate_datasets([self.splits["train"], self.splits["validation"]])
        lengths = token_lengths(full, tok, per_pool=per_pool, seed=self.seed)
        self.report["token_lengths"] = length_stats(lengths)
        self.report["token_length_histogram"] = length_histogram(lengths)
        return lengths

    def save_report(self, path: str | Path | None = None) -> Path:
        """The report as JSON (default ``<out_dir>/report.json``)."""
        path = Path(path or self.out_dir / "report.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.report, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        return path

    def run(self, tokenizer="tiny-qwen3", per_pool: int = 500) -> dict:
        """Every step in order; raises if validation finds a problem."""
        for step in (self.normalize, self.add_metadata, self.dedup, self.save_pools, self.mix,
                     self.final_dedup, self.split, self.export):
            step()
        if tokenizer is not None:
            self.token_stats(tokenizer, per_pool)
        problems = self.validate()
        self.save_report()
        if problems:
            raise ValueError(f"{len(problems)} problems in the built set, e.g. {problems[:3]}")
        return self.report


def build(out_dir: str | Path | None = None, *, tokenizer="tiny-qwen3", show: bool = False, **options) -> dict:
    """Run the whole pipeline (``Pipeline(**options).run()``); returns the report, printed with ``show``."""
    report = Pipeline(out_dir=out_dir, **options).run(tokenizer=tokenizer)
    if show:
        print(summary(report))
    return report


def summary(report: dict) -> str:
    """The build report as text: rows per pool per step, drops by reason, the mix, token lengths."""
    import pandas as pd

    from .data_report import drops_table, mix_table, steps_table

    parts = [("rows per pool after each step", steps_table(report)),
             ("drops", drops_table(report).drop(columns="examples")),
             ("mix: requested vs realised", mix_table(report["mix"]))]
    if report.get("token_lengths"):
        parts.append(("token lengths (course tokenizer)", pd.DataFrame(report["token_lengths"]).T))
    return "\n\n".join(f"{title}\n{table.to_string()}" for title, table in parts)


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.data [--strategy resample] [--seed 7] [--out DIR]``: build and print the report."""
    import argparse

    import datasets

    parser = argparse.ArgumentParser(description="Build the course's mixed SFT set from data/ and print its report.")
    parser.add_argument("--strategy", default="interleave", choices=STRATEGIES)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    report = build(args.out, strategy=args.strategy, seed=args.seed, show=True)
    print(f"\nwritten: {', '.join(report['files'].values())} and report.json")
    return 0


def load_splits(path: str | Path | None = None) -> DatasetDict:
    """``train``/``validation`` from ``path`` (default ``runs/dataset/qwen3_sft_mixed``), built from data/ if absent."""
    path = Path(path or DEFAULT_OUT)
    if not ((path / "train").is_dir() and (path / "validation").is_dir()):
        build(path, tokenizer=None)
    return DatasetDict(train=load_from_disk(str(path / "train")), validation=load_from_disk(str(path / "validation")))


from .data_report import validate  # noqa: E402  (public here: ``helpers.data.validate``)


if __name__ == "__main__":
    import sys

    sys.exit(main())
