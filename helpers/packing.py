"""Cutting and packing labelled samples (notebook 03): what ``max_length`` and ``packing`` do.

``truncate`` never lets a cut reply train silently (TRL keeps cut replies as they are);
``pack`` packs with TRL's own ``pack_dataset`` and adds its per-sample ``position_ids``;
``packing_check`` measures whether packed samples attend to each other.

    rows, counted = pack(masks.build_many(tok, conversations), max_length=512)
"""
from __future__ import annotations

import warnings
from collections import Counter
from typing import Iterable

import torch
from datasets import Dataset
from trl.data_utils import pack_dataset
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from .masks import IGNORE_INDEX, quiet_progress, trained_pieces


def truncate(samples: Iterable[dict], max_length: int, on_cut: str = "drop") -> tuple[list[dict], Counter]:
    """Cut samples to ``max_length`` tokens (keep the start) without silently wrong labels.

    A sample whose trained span is cut is dropped (``on_cut="drop"``), kept with the cut
    reply masked (``"mask"``), or kept as cut (``"keep"``); each case is counted in the
    returned ``Counter`` and ``"keep"`` also warns. TRL itself keeps cut replies silently.
    """
    if on_cut not in ("drop", "mask", "keep"):
        raise ValueError(f"on_cut={on_cut!r} is not one of ('drop', 'mask', 'keep')")
    kept, report = [], Counter()
    for s in samples:
        n = len(s["input_ids"])
        if n <= max_length:
            kept.append(s)
            report["fits"] += 1
            continue
        labels = s["labels"][:max_length]
        cut = s["labels"][max_length - 1] != IGNORE_INDEX and s["labels"][max_length] != IGNORE_INDEX
        if cut and on_cut == "drop":
            report["dropped: reply cut"] += 1
            continue
        if cut and on_cut == "mask":
            p = max_length
            while p > 0 and labels[p - 1] != IGNORE_INDEX:
                p -= 1
            labels[p:] = [IGNORE_INDEX] * (max_length - p)
        if all(lab == IGNORE_INDEX for lab in labels):
            report["dropped: nothing left to train"] += 1
            continue
        report[{"mask": "kept: cut reply masked", "keep": "kept: cut reply trained"}[on_cut]
               if cut else "kept: cut outside replies"] += 1
        kept.append({**s, "input_ids": s["input_ids"][:max_length], "labels": labels,
                     "segments": s.get("segments", [])[:max_length]})
    if report["kept: cut reply trained"]:
        warnings.warn(f"{report['kept: cut reply trained']} sample(s) keep a reply cut at "
                      f"{max_length} tokens: it is trained without its end token", stacklevel=2)
    return kept, report


def compare_truncation(tokenizer, sample: dict, max_length: int) -> list[dict]:
    """One row per ``truncate`` mode for one sample: what is counted, warned and still trained."""
    rows = []
    for mode in ("drop", "mask", "keep"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            kept, report = truncate([sample], max_length, on_cut=mode)
        left = trained_pieces(tokenizer, kept[0]) if kept else []
        rows.append({"on_cut": mode, "kept": len(kept), "counted as": ", ".join(report),
                     "warnings": len(caught), "trained replies left": len(left),
                     "last trained text": left[-1] if left else ""})
    return rows


def report_line(report: Counter, max_length: int) -> str:
    """One sentence for the counts of ``truncate``/``pack``: how many samples fit, and what became of the rest.

    >>> report_line(Counter({"fits": 35, "dropped: reply cut": 2}), 256)
    '35 samples fit in 256 tokens; 2 dropped: reply cut'
    """
    rest = [f"{n} {what}" for what, n in report.items() if what != "fits"]
    return (f"{report.get('fits', 0)} samples fit in {max_length} tokens; "
            + ("; ".join(rest) if rest else "none was longer, so nothing was cut or dropped"))


def pack(samples: list[dict], max_length: int, strategy: str = "bfd",
         on_cut: str = "drop") -> tuple[list[dict], Counter]:
    """Pack labelled samples with TRL's ``pack_dataset``; add TRL's per-sample ``position_ids``.

    TRL's ``bfd`` silently truncates a sample longer than ``max_length``; here such
    samples first go through ``truncate`` (dropped by default) and are counted.
    """
    samples, report = truncate(samples, max_length, on_cut=on_cut)
    ds = Dataset.from_dict({"input_ids": [s["input_ids"] for s in samples],
                            "labels": [s["labels"] for s in samples]})
    with quiet_progress():
        rows = pack_dataset(ds, max_length, strategy=strategy).to_list()
    for r in rows:
        pos = DataCollatorForLanguageModeling.get_position_ids_from_packed_seq_lengths([r["seq_lengths"]])
        r["position_ids"] = pos[0].tolist()
    return rows, report


def packing_check(model, row: dict) -> dict:
    """Max |logit difference| of a packed row vs. each sample run alone.

    ``with_boundaries``: the row with its restarting ``position_ids`` (how TRL feeds a
    packed batch; transformers turns them into a block-diagonal mask). ``ignoring_boundaries``:
    the same tokens as one plain causal sequence, so later samples see earlier ones.
    ``*_by_sample``: the same, sample by sample.
    """
    device = next(model.parameters()).device
    ids = torch.tensor([row["input_ids"]], device=device)
    pos = torch.tensor([row["position_ids"]], device=device)
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=pos, use_cache=False).logits[0].float()
        plain = model(input_ids=ids, use_cache=False).logits[0].float()
        alone, at = [], 0
        for n in row["seq_lengths"]:
            alone.append(model(input_ids=ids[:, at:at + n], use_cache=False).logits[0].float())
            at += n
    alone = torch.cat(alone)
    with_, ignoring = ([float(d.abs().max()) for d in torch.split(logits - alone, row["seq_lengths"])]
                       for logits in (packed, plain))
    return {"samples": len(row["seq_lengths"]), "tokens": len(row["input_ids"]),
            "with_boundaries": max(with_), "ignoring_boundaries": max(ignoring),
            "with_by_sample": with_, "ignoring_by_sample": ignoring}
