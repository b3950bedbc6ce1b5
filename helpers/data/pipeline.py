"""The dataset pipeline end to end: ``Pipeline`` (one step at a time, notebook 04), ``build``
(all at once), ``load_splits`` (what training and evaluation read) and the command line.

    python -m helpers.data [--strategy resample] [--seed 7] [--out DIR]

Every drop is counted in ``Pipeline.report``, by step, pool and reason. Everything the build
writes (pools, splits, JSONL, report) goes into a temporary sibling of ``out_dir`` that step 9
renames into place as a whole once the files pass validation; ``out_dir`` must be new, empty or a
course build (never a folder of the user's own files).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import weakref
from pathlib import Path
from typing import Mapping

import datasets
import numpy as np
import pandas as pd
from datasets import Dataset, DatasetDict, concatenate_datasets, load_from_disk

from .. import atomic, names
from ..models import TINY, load_tokenizer
from . import manifest, report, sources, steps
from .sources import column


class Pipeline:
    """The steps one at a time (notebook 04); each returns the rows-per-pool table so far.

    ``report`` collects rows per pool per step, every drop by reason, the mix, the split,
    token-length statistics and validation problems; ``save_report`` writes it as JSON.
    """

    def __init__(self, source: str = "local", weights: Mapping[str, float] | None = None,
                 strategy: str = "interleave", seed: int = 42, total_size: int | None = None,
                 valid_ratio: float = 0.05, min_valid: int = 100, data_dir: str | Path | None = None,
                 out_dir: str | Path | None = None):
        if strategy not in steps.STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {steps.STRATEGIES}")
        self.weights = dict(steps.DEFAULT_WEIGHTS if weights is None else weights)
        self.source, self.strategy, self.seed, self.total_size = source, strategy, seed, total_size
        self.valid_ratio, self.min_valid, self.data_dir = valid_ratio, min_valid, data_dir
        self.out_dir = manifest.check_writable(out_dir or steps.DEFAULT_OUT)
        self.build_id = manifest.new_build_id()
        self._stage: Path | None = None
        self.pools: dict[str, Dataset] = {}
        self.mixed: Dataset | None = None
        self.splits: DatasetDict | None = None
        self.report: dict = {"config": {"source": source, "weights": self.weights, "strategy": strategy,
                                        "seed": seed, "total_size": total_size, "valid_ratio": valid_ratio,
                                        "min_valid": min_valid},
                             "steps": {}, "dropped": [], "cleaning": {}, "build_id": self.build_id}

    def _staging(self) -> Path:
        """The build's temporary sibling of ``out_dir`` (made on first use, removed if never exported)."""
        if self._stage is None:
            self._stage = atomic.partial_folder(self.out_dir)
            weakref.finalize(self, shutil.rmtree, str(self._stage), True)
        return self._stage

    def _record(self, step: str, counts: Mapping[str, int]):
        self.report["steps"][step] = {p: int(n) for p, n in counts.items()}
        return report.steps_table(self.report)

    def _drop(self, step: str, pool: str, reason: str, n: int, examples=()):
        if n:
            self.report["dropped"].append({"step": step, "pool": pool, "reason": reason, "rows": int(n),
                                           "examples": list(examples)})

    @staticmethod
    def _dropped_ids(before: Dataset, after: Dataset) -> dict[str, list[str]]:
        """Per pool, the first ids in ``before`` that no row of ``after`` has: the rows a step removed."""
        kept, out = set(column(after, "id")), {}
        for i, pool in zip(column(before, "id"), column(before, "source")):
            if i not in kept and len(out.setdefault(pool, [])) < sources.EXAMPLES:
                out[pool].append(str(i))
        return out

    def _by_pool(self, ds: Dataset) -> dict[str, int]:
        names = column(ds, "source") if len(ds) else np.array([])
        return {p: int((names == p).sum()) for p in self.pools}

    def normalize(self):
        """Step 1: every pool normalised to ``messages``; drops and control tokens counted."""
        raw = {}
        for pool in sources.POOLS:
            self.pools[pool], r = sources.normalize_pool(pool, self.source, self.data_dir)
            raw[pool] = r["rows_in"]
            self.report["cleaning"][pool] = {k: r[k] for k in ("files", "control_tokens_removed", "answers_capped")}
            self.report.setdefault("sources", {}).update(r["digests"])
            for reason, n in r["dropped"].items():
                self._drop("normalize", pool, reason, n, r["examples"][reason])
        self._record("raw", raw)
        sources.check_ids_across({f"pool {p}": column(ds, "id") for p, ds in self.pools.items()})
        return self._record("normalize", {p: len(ds) for p, ds in self.pools.items()})

    def add_metadata(self):
        """Step 2: ``source`` and ``tags`` on every row."""
        self.pools = {p: steps.add_metadata(ds, p, steps.TAGS[p]) for p, ds in self.pools.items()}
        return self._record("metadata", {p: len(ds) for p, ds in self.pools.items()})

    def dedup(self):
        """Step 3: MD5 dedup inside each pool."""
        for p, ds in self.pools.items():
            self.pools[p], removed = steps.dedup(ds)
            dropped = self._dropped_ids(ds, self.pools[p]).get(p, [])
            self._drop("dedup", p, "duplicate inside the pool", removed, dropped)
        return self._record("dedup", {p: len(ds) for p, ds in self.pools.items()})

    def save_pools(self) -> dict[str, Path]:
        """Step 4: each pool to Arrow in ``normalized/`` of the build's temporary folder, which step 9
        renames to ``out_dir`` (``data.load_pools(out_dir / "normalized")`` reads them back)."""
        return steps.save_pools(self.pools, self._staging() / "normalized")

    def normalize_weights(self) -> dict[str, float]:
        """Step 5: the weights scaled to sum to 1 over the pools (the report keeps both)."""
        self.weights = steps.normalize_weights(self.weights, self.pools)
        self.report["weights"] = self.weights
        return self.weights

    def mix(self):
        """Step 6: interleave or resample by the weights; the report gets requested vs realised."""
        self.mixed, self.report["mix"] = steps.mix(self.pools, self.weights, self.strategy, self.seed,
                                                       self.total_size)
        for p, row in self.report["mix"]["pools"].items():
            self._drop("mix", p, "not drawn by the mix", row["available"] - row["unique"])
        return self._record("mix", self._by_pool(self.mixed))

    def final_dedup(self):
        """Step 7: cross-pool duplicates removed after mixing (resample copies kept)."""
        mixed, before = self.mixed, self._by_pool(self.mixed)
        self.mixed, _ = steps.final_dedup(mixed)
        after, dropped = self._by_pool(self.mixed), self._dropped_ids(mixed, self.mixed)
        for p in self.pools:
            self._drop("final_dedup", p, "same messages as a row of another pool", before[p] - after[p],
                       dropped.get(p, []))
        return self._record("final_dedup", after)

    def split(self):
        """Step 8: seeded, stratified train/validation split."""
        self.splits, self.report["split"] = steps.split_train_valid(self.mixed, self.valid_ratio, self.seed, self.min_valid)
        self._record("train", self._by_pool(self.splits["train"]))
        n_copies = self.report["split"]["copies_kept_out_of_validation"]
        self._drop("split", "all", "resample copy of a validation sample (kept out of validation)", n_copies)
        return self._record("validation", self._by_pool(self.splits["validation"]))

    def export(self) -> dict[str, Path]:
        """Step 9: Arrow + JSONL + manifest (+ the pools and the report so far) into the build's temporary
        folder, every row checked, then renamed to ``out_dir`` as a whole (``steps.export``)."""
        stage = self._staging()
        self.save_report(stage / manifest.REPORT)
        settings = {**self.report["config"], "normalized_weights": self.report.get("weights")}
        try:
            files = steps.export(self.splits, self.out_dir, settings, self.report.get("sources", {}), stage=stage,
                                 build_id=self.build_id)
        finally:
            self._stage = None  # renamed into place, or removed on a problem
        self.report["files"] = {k: str(v) for k, v in files.items()}
        return files

    def validate(self) -> list[str]:
        """Step 10: every problem in the exported JSONL (file:line id=…)."""
        problems = [p for name in manifest.SPLITS.values() for p in report.validate(self.out_dir / name)]
        self.report["validation_problems"] = problems
        self.report["json_rows_in_validation"] = int(sum("json-only" in t for t in self.splits["validation"]["tags"][:]))
        return problems

    def token_stats(self, tokenizer=TINY, per_pool: int = 500) -> dict[str, np.ndarray]:
        """Token lengths per pool with the course tokenizer (seeded sample of ``per_pool`` rows)."""
        tok = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        full = concatenate_datasets([self.splits["train"], self.splits["validation"]])
        lengths = report.token_lengths(full, tok, per_pool=per_pool, seed=self.seed)
        self.report["token_lengths"] = report.length_stats(lengths)
        self.report["token_length_histogram"] = report.length_histogram(lengths)
        return lengths

    def save_report(self, path: str | Path | None = None) -> Path:
        """The report as JSON (default ``report.json`` in the build's folder), replaced in one step."""
        path = Path(path or (self._stage or self.out_dir) / manifest.REPORT)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        tmp.write_text(json.dumps(self.report, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def run(self, tokenizer=TINY, per_pool: int = 500) -> dict:
        """Every step in order; raises if validation finds a problem."""
        for step in (self.normalize, self.add_metadata, self.dedup, self.save_pools, self.normalize_weights,
                     self.mix, self.final_dedup, self.split, self.export):
            step()  # export raises on a problem in any row, leaving out_dir as it was
        if tokenizer is not None:
            self.token_stats(tokenizer, per_pool)
        self.validate()
        self.save_report()
        return self.report


def build(out_dir: str | Path | None = None, *, tokenizer=TINY, show: bool = False, **options) -> dict:
    """Run the whole pipeline (``Pipeline(**options).run()``); returns the report, printed with ``show``.

    ``out_dir`` must be new, empty or a course build; it is replaced as a whole at the end.
    """
    built = Pipeline(out_dir=out_dir, **options).run(tokenizer=tokenizer)
    if show:
        print(summary(built))
    return built


def summary(build_report: dict) -> str:
    """The build report as text: rows per pool per step, drops by reason, the mix, token lengths."""
    parts = [("rows per pool after each step", report.steps_table(build_report)),
             ("drops", report.drops_table(build_report).drop(columns="examples")),
             ("mix: requested vs realised", report.mix_table(build_report["mix"]))]
    if build_report.get("token_lengths"):
        parts.append(("token lengths (course tokenizer)", pd.DataFrame(build_report["token_lengths"]).T))
    return "\n\n".join(f"{title}\n{table.to_string()}" for title, table in parts)


def is_built(path: str | Path | None = None) -> bool:
    """True when ``path`` (default ``runs/dataset/qwen3_sft_mixed``) holds a build's manifest
    (``load_splits`` then checks that the build is complete)."""
    return (Path(path or steps.DEFAULT_OUT) / atomic.MANIFEST).is_file()


def ensure_built(path: str | Path | None = None, log=print) -> bool:
    """Build the default mix into ``path`` when it holds no dataset (notebook 04 has not run), and
    say so; returns whether it built. Notebooks 05–07 call it before ``load_splits``."""
    path = Path(path or steps.DEFAULT_OUT)
    if is_built(path):
        return False
    log(f"no dataset at {path}: building it from data/ with the default weights (what notebook 04 does)")
    build(path, tokenizer=None)
    return True


def load_splits(path: str | Path | None = None) -> DatasetDict:
    """``train``/``validation`` from ``path`` (default ``runs/dataset/qwen3_sft_mixed``).

    Only reads, and only a complete build (``manifest.verify``): a missing, half-written or
    mixed dataset is an error that names the folder and the command that rebuilds it.
    """
    path = names.check_path(path or steps.DEFAULT_OUT, "dataset folder")
    if path.is_file():
        raise ValueError(f"{path} is a file; load_splits takes the folder a build wrote (python -m helpers.data --out DIR)")
    if not path.is_dir() or not any(path.iterdir()):
        raise FileNotFoundError(f"no dataset at {path} (train/ and validation/ missing): run notebook 04, "
                                f"or build it with `python -m helpers.data --out {path}`")
    manifest.verify(path)
    return DatasetDict(train=load_from_disk(str(path / "train")), validation=load_from_disk(str(path / "validation")))


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.data [--strategy resample] [--seed 7] [--out DIR]``: build and print the report."""
    parser = argparse.ArgumentParser(description="Build the course's mixed SFT set from data/ and print its report.")
    parser.add_argument("--strategy", default="interleave", choices=steps.STRATEGIES)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=_out_arg, default=None,
                        help=f"output folder: new, empty or a course build (default {steps.DEFAULT_OUT})")
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    try:
        built = build(args.out, strategy=args.strategy, seed=args.seed, show=True)
    except (ValueError, FileExistsError) as err:
        parser.exit(2, f"helpers.data: error: {err}\n")
    print(f"\nwritten: {', '.join(built['files'].values())} and report.json")
    return 0


def _out_arg(text: str) -> Path:
    try:
        return names.check_path(text, "--out")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
