"""Evaluation (notebook 06): perplexity, usability, JSON validity, per-bucket tables.

Definitions (the numbers in ``runs/day2_metrics.csv`` mean exactly this):

* **perplexity** — ``exp(total NLL / number of trained tokens)`` over the validation
  split, token-weighted, on the tokens the training loss uses: the assistant replies and
  their end-of-turn tokens (``helpers.masks.build_labels``, proven equal to TRL's mask).
* **usable** — a reply passes every criterion: ``non_empty`` (text besides whitespace),
  ``stopped`` (emitted ``<|im_end|>`` within ``max_new_tokens``), ``no_repetition`` (no
  token 4-gram occurs 4 or more times), ``no_control_leak`` (no other control or template
  token in the text) and ``language`` (a Chinese prompt gets Chinese, an English prompt
  gets no Chinese; replies with no letters, e.g. a number, pass; JSON-only samples are
  exempt since JSON keys are language-neutral).
* **json_valid** — on rows tagged ``json-only``: ``json.loads`` of the whole reply
  succeeds and gives an object (the prompts ask for one; a bare ``27`` does not count).
  **json_keys** — that object names no key twice and holds every key of the reference
  reply with the same JSON type (number, string, boolean, null, array, object), an
  integer where the reference has one (the prompt said ``integer``). Each record also
  says ``json_repeats_key``: ``json.loads`` keeps the last of repeated keys silently.
  A split with no JSON rows reports ``n = 0`` and no value, never 0 % or 100 %.
* **exact_match** — on rows tagged ``math``: the reply's last number equals the golden
  answer's (``helpers.scoring.math_correct``: ``8/9`` = ``0.888889``).
* **json_leak** — on rows not tagged ``json-only``: the reply carries JSON syntax where
  plain text was asked (``helpers.scoring.json_leak``): the format bleeding into chat.
* **forgetting** — ``general_chat_set()`` holds general chat the course data never
  trains (small talk, facts, word problems): base vs tuned on it shows what tuning cost.

Scoring one reply lives in ``helpers.scoring``; this module runs the model and averages.
"""
from __future__ import annotations

import csv
import json
import math
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterable

from . import masks, paths
from .scoring import (CRITERIA, JSON_TAG, MATH_TAG, json_check, json_leak,  # noqa: F401  (public here too)
                      language_of, math_correct, usability)
from .tiny_qwen3 import corpus
from .tool_schemas import tools_list

METRICS_CSV = "day2_metrics.csv"
GENERAL_SOURCE = "general"


# ----------------------------------------------------------------------------- rows
def split_prompt(row: dict) -> tuple[list[dict], str]:
    """(messages before the last assistant turn, that turn's content) of a validation row."""
    messages = row["messages"]
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise ValueError(f"row {row.get('id', '?')}: messages: no assistant turn to compare against")
    return messages[:last], messages[last].get("content") or ""


def spread_rows(rows, n: int) -> list[dict]:
    """``n`` rows taken in turn from each source (first rows of each first): every source is represented.

    >>> [r["source"] for r in spread_rows([{"source": s} for s in "aaabbc"], 4)]
    ['a', 'b', 'c', 'a']
    """
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(row.get("source", ""), []).append(row)
    picked, depth = [], 0
    while len(picked) < n and any(len(v) > depth for v in by_source.values()):
        picked += [v[depth] for v in by_source.values() if len(v) > depth][: n - len(picked)]
        depth += 1
    return picked


def adapter_switch(model, enabled: bool):
    """Context in which a PEFT model runs with (``True``) or without its adapter."""
    if enabled or not hasattr(model, "disable_adapter"):
        return nullcontext()
    return model.disable_adapter()


@contextmanager
def eval_mode(model):
    """The model in eval mode (dropout off) inside the block, its training state restored after.

    unsloth's ``generate`` turns gradient checkpointing off and the KV cache on, and undoes that only
    for a model that was training when called: here its ``for_training`` does, or the training that
    follows runs without checkpointing (out of memory on a 16 GB card). Usage::

        with eval_mode(model):
            replies = model.generate(**batch, do_sample=False)
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        if was_training and hasattr(model, "_flag_for_generation"):  # set by unsloth's for_inference
            from unsloth import FastLanguageModel

            FastLanguageModel.for_training(model)
        model.train(was_training)


# ----------------------------------------------------------------------------- perplexity
def token_nll(model, tok, rows: list[dict], max_batch_tokens: int = 4096) -> list[tuple[float, int]]:
    """(summed NLL, trained tokens) per row, on the assistant-only training mask.

    Rows are batched by length, at most ``max_batch_tokens`` positions a batch; the LM head (151,936
    logits per position) runs row by row, at the trained positions only.
    """
    import torch

    encoded = [masks.build_labels(tok, r["messages"], tools_list(r), index=i) for i, r in enumerate(rows)]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]))
    out: dict[int, tuple[float, int]] = {}
    device = next(model.parameters()).device
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT: the LoRA-wrapped LM
    head = causal_lm.get_output_embeddings()
    while order:
        take = [order.pop(0)]
        while order and (len(take) + 1) * len(encoded[order[0]]["input_ids"]) <= max_batch_tokens:
            take.append(order.pop(0))
        width = len(encoded[take[-1]]["input_ids"])
        ids = torch.full((len(take), width), tok.pad_token_id)
        labels = torch.full((len(take), width), masks.IGNORE_INDEX)
        att = torch.zeros((len(take), width), dtype=torch.long)
        for r, i in enumerate(take):
            e = encoded[i]
            n = len(e["input_ids"])
            ids[r, :n], labels[r, :n], att[r, :n] = torch.tensor(e["input_ids"]), torch.tensor(e["labels"]), 1
        with torch.no_grad():  # like TRL's loss, the LM head only where a label is trained: most logits go unread
            hidden = causal_lm.base_model(input_ids=ids.to(device), attention_mask=att.to(device)).last_hidden_state
            target = labels[:, 1:].to(device)
            for r, i in enumerate(take):  # one row at a time: its fp32 log-softmax, not the whole batch's
                keep = target[r] != masks.IGNORE_INDEX
                logits = head(hidden[r, :-1][keep]).float()
                nll = torch.nn.functional.cross_entropy(logits, target[r][keep], reduction="none")
                out[i] = (float(nll.sum()), int(keep.sum()))
    return [out[i] for i in range(len(encoded))]


def perplexity(nll_tokens: Iterable[tuple[float, int]]) -> float:
    """Token-weighted perplexity: exp(sum of NLL / sum of trained tokens)."""
    pairs = list(nll_tokens)
    tokens = sum(n for _, n in pairs)
    return math.exp(sum(s for s, _ in pairs) / tokens) if tokens else float("nan")


# ----------------------------------------------------------------------------- generation
def generate(model, tok, conversations: list[list[dict]], tools: list | None = None,
             max_new_tokens: int = 64, batch_size: int = 32) -> list[dict]:
    """Greedy replies for prompt conversations: ``{"reply", "stopped", "new_tokens"}`` each."""
    import torch

    tools = tools or [None] * len(conversations)
    eos = tok.convert_tokens_to_ids(tok.eos_token)
    device = next(model.parameters()).device
    side, tok.padding_side = tok.padding_side, "left"
    results = []
    try:
        with eval_mode(model):  # dropout off: greedy decoding must be deterministic
            for b in range(0, len(conversations), batch_size):
                texts = [tok.apply_chat_template(c, tools=t, tokenize=False, add_generation_prompt=True)
                         for c, t in zip(conversations[b:b + batch_size], tools[b:b + batch_size])]
                enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                with torch.no_grad():  # max_length=None: a model's own (unsloth sets one) only earns a warning
                    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, max_length=None,
                                         eos_token_id=eos, pad_token_id=tok.pad_token_id)
                for row in out[:, enc["input_ids"].shape[1]:].tolist():
                    stop = row.index(eos) if eos in row else None
                    new = row[:stop] if stop is not None else [t for t in row if t != tok.pad_token_id]
                    results.append({"reply": tok.decode(new, skip_special_tokens=False),
                                    "stopped": stop is not None, "new_tokens": len(new)})
    finally:
        tok.padding_side = side
    return results


def json_validity(model, tok, rows: Iterable[dict], adapter: bool = True, max_new_tokens: int = 64) -> dict:
    """Strict JSON-validity on the JSON-tagged rows: ``{"n", "valid", "examples"}``.

    ``valid`` is None when there is no JSON-tagged row (n = 0), never 0 % or 100 %.
    """
    json_rows = [r for r in rows if JSON_TAG in (r.get("tags") or [])]
    with adapter_switch(model, adapter):
        gens = generate(model, tok, [split_prompt(r)[0] for r in json_rows], max_new_tokens=max_new_tokens)
    ok = [json_check(g["reply"], split_prompt(r)[1])["json_valid"] for g, r in zip(gens, json_rows)]
    return {"n": len(ok), "valid": sum(ok) / len(ok) if ok else None,
            "examples": [(split_prompt(r)[0][-1]["content"], g["reply"]) for g, r in zip(gens, json_rows)]}


def general_chat_set(n: int = 24, seed: int = 2024) -> list[dict]:
    """``n`` rows of general chat the course data never trains — small talk, facts, word problems.

    The tiny base pre-trains on chat of this kind (``helpers.tiny_qwen3.corpus``); a real
    model knows it already. Scored base vs tuned, it measures forgetting. Word problems are
    tagged ``math`` (scored by exact match), every row ``general`` and its language.

    >>> rows = general_chat_set(4); rows[0]["source"], len(rows)
    ('general', 4)
    """
    import random

    rng = random.Random(seed)
    kinds = {q: "chat" for q, _ in corpus.SMALL_TALK} | {q: "fact" for q, _ in corpus.FACTS}
    rows = []
    while len(rows) < n:
        messages = [m for m in corpus.conversation(rng) if m["role"] != "system"][-2:]
        question = messages[0]["content"]
        kind = kinds.get(question, MATH_TAG)
        lang = "zh" if language_of(question) == "zh" else "en"
        rows.append({"id": f"general-{len(rows)}", "source": GENERAL_SOURCE, "tags": ["general", kind, lang],
                     "messages": messages})
    return rows


# ----------------------------------------------------------------------------- one run
def evaluate(model, tok, rows: list[dict], label: str, *, adapter: bool = True,
             max_new_tokens: int = 64, batch_size: int = 32) -> list[dict]:
    """Per-row records (reply, criteria, NLL) for ``rows``; ``adapter`` toggles a PEFT adapter."""
    prompts = [split_prompt(r) for r in rows]
    start = time.perf_counter()
    with adapter_switch(model, adapter):
        nll = token_nll(model, tok, rows)
        gens = generate(model, tok, [p for p, _ in prompts], [tools_list(r) for r in rows],
                        max_new_tokens=max_new_tokens, batch_size=batch_size)
    seconds = time.perf_counter() - start
    records = []
    for row, (prompt, reference), g, (s, n) in zip(rows, prompts, gens, nll):
        tags = list(row.get("tags") or [])
        last_user = next((m.get("content") or "" for m in reversed(prompt) if m["role"] == "user"), "")
        rec = {"label": label, "id": row.get("id"), "source": row.get("source", ""), "tags": tags,
               "prompt": prompt, "reference": reference, **g, "nll": s, "tokens": n,
               **usability(g["reply"], g["stopped"], last_user, tok, tags)}
        if JSON_TAG in tags:
            rec.update(json_check(g["reply"], reference))
        else:
            rec["json_leak"] = json_leak(g["reply"])
        if MATH_TAG in tags:
            rec["exact_match"] = math_correct(g["reply"], reference)
        records.append(rec)
    if records:
        records[0]["seconds_total"] = round(seconds, 2)
    return records


def buckets(record: dict) -> list[str]:
    """The buckets a record counts in: ``all``, ``source:<s>``, ``tag:<t>``; general chat in ``forgetting[:<t>]``.

    >>> buckets({"source": "json", "tags": ["json-only"]}), buckets({"source": "general", "tags": ["math"]})
    (['all', 'source:json', 'tag:json-only'], ['forgetting', 'forgetting:math'])
    """
    if record["source"] == GENERAL_SOURCE:
        return ["forgetting"] + [f"forgetting:{t}" for t in record["tags"] if t != "general"]
    return ["all"] + ([f"source:{record['source']}"] if record["source"] else []) + [f"tag:{t}" for t in record["tags"]]


def summarize(records: list[dict]) -> list[dict]:
    """(metric, bucket, n, value) rows: perplexity, usable and each criterion, JSON rates."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        for b in buckets(r):
            groups.setdefault(b, []).append(r)
    rows = []
    for bucket, recs in groups.items():
        rows.append({"metric": "perplexity", "bucket": bucket, "n": sum(r["tokens"] for r in recs),
                     "value": perplexity((r["nll"], r["tokens"]) for r in recs)})
        for metric in ("usable", *CRITERIA):
            rows.append({"metric": metric, "bucket": bucket, "n": len(recs),
                         "value": sum(r[metric] for r in recs) / len(recs)})
        for metric in ("json_valid", "json_keys", "json_leak", "exact_match"):
            scored = [r for r in recs if metric in r]
            rows.append({"metric": metric, "bucket": bucket, "n": len(scored),
                         "value": sum(r[metric] for r in scored) / len(scored) if scored else None})
    return rows


def comparison(base: list[dict], tuned: list[dict], buckets_shown: Iterable[str] = ("all",)):
    """One DataFrame: metric × bucket with n, base and tuned values side by side."""
    import pandas as pd

    b, t = pd.DataFrame(summarize(base)), pd.DataFrame(summarize(tuned))
    table = b.merge(t, on=["metric", "bucket"], suffixes=("_base", "_tuned"))
    table = table[table["bucket"].isin(list(buckets_shown))] if buckets_shown else table
    return table.rename(columns={"value_base": "base", "value_tuned": "tuned", "n_base": "n"}).drop(
        columns="n_tuned")[["metric", "bucket", "n", "base", "tuned"]].reset_index(drop=True)


def write_results(run_id: str, model_name: str, adapter: str, runs: dict[str, list[dict]],
                  csv_path: Path | None = None) -> Path:
    """Append every (label, metric, bucket) to ``runs/day2_metrics.csv``; log generations to ``eval/<run>/``.

    ``n`` is the number of rows a rate is over, and for ``perplexity`` the number of trained
    tokens; an adapter inside the project is written relative to it (the file travels).
    """
    csv_path = Path(csv_path or paths.output_dir("runs") / METRICS_CSV)
    root, where = paths.PROJECT_ROOT.resolve(), Path(adapter).resolve() if adapter else None
    if where and where.is_relative_to(root):
        adapter = str(where.relative_to(root))
    fresh = not csv_path.exists()
    with open(csv_path, "a", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if fresh:
            w.writerow(["run_id", "model", "adapter", "variant", "metric", "bucket", "n", "value"])
        for label, records in runs.items():
            for r in summarize(records):
                value = "" if r["value"] is None else f"{r['value']:.6g}"
                w.writerow([run_id, model_name, adapter if label != "base" else "", label,
                            r["metric"], r["bucket"], r["n"], value])
    log_dir = paths.output_dir("eval", run_id)
    for label, records in runs.items():
        with open(log_dir / f"{label}.jsonl", "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return csv_path


def plot_comparison(table, metrics: Iterable[str] = ("usable", "json_valid", "json_keys", "exact_match", "json_leak"),
                    bucket: str = "all", ax=None):
    """Bars of base vs tuned for the rate metrics of one bucket, perplexity in the title."""
    import matplotlib.pyplot as plt

    rows = table[table["bucket"] == bucket].set_index("metric")
    metrics = [m for m in metrics if m in rows.index and rows.loc[m, "n"]]
    ax, x = ax or plt.subplots(figsize=(7, 2.8))[1], range(len(metrics))
    for shift, label, color in ((-0.2, "base", "#9ca3af"), (0.2, "tuned", "#16a34a")):
        bars = ax.bar([i + shift for i in x], [rows.loc[m, label] for m in metrics], 0.4, label=label, color=color)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)  # a rate of 0 is a number too, not a missing bar
    ax.set_xticks(list(x), metrics)
    ax.set(ylim=(0, 1.15), ylabel="rate",
           title=f"{bucket}: perplexity {rows.loc['perplexity', 'base']:,.1f} → {rows.loc['perplexity', 'tuned']:,.2f}")
    ax.legend()
    return ax


def plot_tradeoff(table, ax=None):
    """Perplexity base vs tuned on the trained tasks (``all``) and on general chat (``forgetting``), log scale."""
    import matplotlib.pyplot as plt

    ppl = table[table["metric"] == "perplexity"].set_index("bucket").loc[["all", "forgetting"]]
    ax = ax or plt.subplots(figsize=(6, 2.8))[1]
    for shift, label, color in ((-0.2, "base", "#9ca3af"), (0.2, "tuned", "#16a34a")):
        bars = ax.bar([i + shift for i in range(2)], ppl[label], 0.4, label=label, color=color)
        ax.bar_label(bars, fmt="{:,.2f}", fontsize=8)
    ax.set_xticks([0, 1], ["trained tasks (validation)", "general chat (forgetting)"])
    ax.set(yscale="log", ylabel="perplexity (log scale)", title="what tuning gained, and what it cost")
    ax.legend()
    return ax
