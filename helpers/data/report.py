"""Checks, statistics and pictures of a dataset build (notebook 04).

``validate`` lists every problem in a built set (``helpers.conversation``'s rules) with its
sample id and line; the rest turn a build report into pandas tables and matplotlib figures.

    problems = validate("runs/dataset/qwen3_sft_mixed/val.jsonl")   # [] for a clean build
"""
from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import conversation, paths
from ..jsonl import iter_jsonl
from ..tool_schemas import tools_list
from .sources import column


# ---------------------------------------------------------------- validation

def validate(rows) -> list[str]:
    """Every problem in a ``Dataset`` (row numbers) or a JSONL file (line numbers), with sample ids."""
    if isinstance(rows, (str, Path)):
        path = Path(rows)
        items = [(f"{path.name}:{n}", obj if problem is None else {"_error": problem})
                 for n, obj, problem in iter_jsonl(path, skip_blank=False)]
    else:
        cols = {c: rows[c][:] for c in ("id", "messages", "tags", "tools") if c in rows.column_names}
        items = [(f"row {n}", {c: v[n] for c, v in cols.items()}) for n in range(len(rows))]
    problems = []
    for where, row in items:
        found = [row["_error"]] if "_error" in row else conversation.problems(row.get("messages"), row.get("tools"),
                                                                               row.get("tags"))
        problems += [f"{where} id={row.get('id')}: {p}" for p in found]
    return problems


# ---------------------------------------------------------------- token lengths

def token_lengths(ds, tokenizer, per_pool: int = 500, seed: int = 0) -> dict[str, np.ndarray]:
    """Chat-template token counts per ``source`` on a seeded sample of at most ``per_pool`` rows."""
    sources = column(ds, "source")
    rng = np.random.default_rng(seed)
    out = {}
    for pool in sorted(set(sources.tolist())):
        idx = np.flatnonzero(sources == pool)
        idx = np.sort(rng.choice(idx, size=min(per_pool, len(idx)), replace=False))
        rows = ds.select(idx)
        tools = rows["tools"][:] if "tools" in rows.column_names else [None] * len(rows)
        texts = [tokenizer.apply_chat_template(_plain(m), tools=tools_list(t), tokenize=False)
                 for m, t in zip(rows["messages"][:], tools)]
        out[pool] = np.array([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]])
    return out


def _plain(messages: list[dict]) -> list[dict]:
    """Messages without the Arrow schema's empty keys (``tool_calls: None``…)."""
    return [{k: v for k, v in m.items() if v is not None} for m in messages]


def length_stats(lengths: dict[str, np.ndarray]) -> dict[str, dict]:
    """n, mean, median, p95 and max tokens per pool."""
    return {p: {"n": int(len(v)), "mean": round(float(v.mean()), 1), "p50": int(np.percentile(v, 50)),
                "p95": int(np.percentile(v, 95)), "max": int(v.max())} for p, v in lengths.items() if len(v)}


def length_report(dataset, tokenizer, max_length: int) -> dict:
    """How many samples exceed ``max_length`` and what truncation does to their loss masks.

    TRL keeps the first ``max_length`` tokens (``keep_start``); assistant tokens past the
    cut are not trained, and a sample whose assistant turns all lie past it trains nothing.
    """
    from trl.chat_template_utils import get_training_chat_template  # lazy: trl's import takes ~5 s

    template = get_training_chat_template(tokenizer) or tokenizer.chat_template
    n = too_long = emptied = cut = kept = 0
    for row in dataset:
        enc = tokenizer.apply_chat_template(row["messages"], tools=tools_list(row), tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True, chat_template=template)
        mask = enc["assistant_masks"]
        n += 1
        kept += sum(mask[:max_length])
        if len(mask) > max_length:
            too_long += 1
            cut += sum(mask[max_length:])
            emptied += sum(mask[:max_length]) == 0
    report = {"samples": n, "longer_than_max_length": too_long, "left_with_no_trained_tokens": emptied,
              "assistant_tokens_cut": cut, "assistant_tokens_kept": kept, "max_length": max_length}
    if too_long:
        warnings.warn(f"{too_long} of {n} samples are longer than max_length={max_length}: "
                      f"{cut} assistant tokens are cut from their loss masks and {emptied} samples "
                      f"are left with nothing to train on", stacklevel=2)
    return report


def length_histogram(lengths: dict[str, np.ndarray], bins: int = 30) -> dict:
    """Counts per pool over shared log-spaced token-length bins (what ``plot_lengths`` draws)."""
    top = max((int(v.max()) for v in lengths.values() if len(v)), default=16)
    edges = np.geomspace(8, max(top, 16) * 1.05, bins)
    return {"edges": [round(float(e), 1) for e in edges],
            "counts": {p: np.histogram(v, bins=edges)[0].tolist() for p, v in lengths.items()}}


# ---------------------------------------------------------------- tables and pictures

def steps_table(report: dict):
    """Rows per pool after each step (pandas DataFrame)."""
    table = pd.DataFrame(report["steps"]).fillna(0).astype(int)
    table.loc["total"] = table.sum()
    return table


def drops_table(report: dict):
    """Every drop by pool and reason, with the first rows it hit."""
    cols = ["step", "pool", "reason", "rows", "examples"]
    return pd.DataFrame([{**d, "examples": ", ".join(d["examples"])} for d in report["dropped"]], columns=cols)


def mix_table(mix: dict):
    """Requested vs realised share per pool, with row counts (``ran_out_at_row`` empty for a pool that lasted)."""
    table = pd.DataFrame(mix["pools"]).T
    counts = [c for c in ("rows", "unique", "available", "ran_out_at_row") if c in table]
    return table.astype({c: "Int64" for c in counts})


def plot_composition(mix: dict, ax=None):
    """Bars: requested vs realised share per pool, with the realised row counts."""
    ax = ax or plt.subplots(figsize=(7, 3))[1]
    pools = list(mix["pools"])
    x = np.arange(len(pools))
    req = [mix["pools"][p]["requested"] for p in pools]
    real = [mix["pools"][p]["realised"] for p in pools]
    ax.bar(x - 0.2, req, 0.4, label="requested", color="#bbbbbb")
    bars = ax.bar(x + 0.2, real, 0.4, label="realised", color="#3b7dd8")
    for b, p in zip(bars, pools):
        ax.annotate(str(mix["pools"][p]["rows"]), (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, pools)
    ax.set_ylabel("share of the mix")
    ax.set_title(f"{mix['strategy']}: {mix['rows']} rows (numbers = rows per pool)")
    ax.legend()
    return ax


def plot_lengths(lengths: dict[str, np.ndarray], bins: int = 30):
    """Histograms of chat-template token lengths, one small panel per pool on a shared log-scaled x.

    One panel each, so no pool hides behind another; the dashed line is the pool's median.
    """
    pools = [p for p, v in lengths.items() if len(v)]
    edges = length_histogram(lengths, bins)["edges"]
    fig, axes = plt.subplots(len(pools), 1, figsize=(7, 0.9 + 0.85 * len(pools)), sharex=True, squeeze=False)
    for ax, pool, colour in zip(axes[:, 0], pools, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 2):
        ax.hist(lengths[pool], bins=edges, color=colour)
        ax.axvline(float(np.median(lengths[pool])), color="#111", linestyle="--", linewidth=1)
        ax.set_ylabel(pool, rotation=0, ha="right", va="center")
        ax.tick_params(axis="y", labelsize=7)
    axes[0, 0].set_xscale("log")
    axes[0, 0].set_title("conversations per token length (dashed: median)", fontsize=10)
    axes[-1, 0].set_xlabel("tokens per conversation (chat template)")
    fig.tight_layout()
    return fig


def raw_preview(data_dir=None, width: int = 90):
    """The first raw row of every sample file, in its own schema (DataFrame)."""
    rows = []
    for path in sorted(Path(data_dir or paths.DATA).glob("*")):
        if path.suffix not in (".jsonl", ".csv"):
            continue
        with path.open(encoding="utf-8") as f:
            first = next(csv.DictReader(f)) if path.suffix == ".csv" else json.loads(f.readline())
        rows.append({"file": path.name, "columns": ", ".join(first), "first row": json.dumps(first, ensure_ascii=False)[:width]})
    return pd.DataFrame(rows)


def cleaning_table(report: dict):
    """Control tokens removed and answers capped per pool."""
    return pd.DataFrame(report["cleaning"]).T[["control_tokens_removed", "answers_capped"]]


def padding_share(lengths: dict[str, np.ndarray]) -> float:
    """Share of a batch that would be padding if every sampled row were padded to the longest one."""
    flat = np.concatenate([v for v in lengths.values() if len(v)])
    return float(1 - flat.mean() / flat.max())
