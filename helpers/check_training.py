"""The exercises of notebooks 05–07: LoRA size, batches, lengths, metrics, forgetting, merging.

Registered in ``helpers.exercises``; ask them through ``helpers.check`` (``check.answer("05.1", 38912)``).
Each judge computes the truth from the course's code or from what the notebook's run wrote.
"""
from __future__ import annotations

import json
import math

from . import data, evaluate, paths
from .exercises import exercise, near
from .lora import PROJECTIONS, lora_params
from .models import load_model, load_tokenizer
from .train_config import resolve_preset

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]


# ----------------------------------------------------------------------------- 05
@exercise("05.1", "Predict, then run: how many trainable parameters does LoRA with r=4 on the attention "
          "projections only (q, k, v, o) add to tiny-qwen3?",
          "each targeted layer adds r·(in + out); the shapes are in section 2's printout and the config.")
def _ex05_1(value):
    model = load_model("tiny-qwen3")
    truth, all7 = lora_params(model, 4, ATTENTION), lora_params(model, 4, PROJECTIONS)
    if value == truth:
        return True, (f"right: {truth:,}. All 7 projections at r=4 would add {all7:,}: the MLP's wide "
                      "gate/up/down layers hold most of LoRA's parameters.")
    if value == all7:
        return False, "that is all 7 projections; keep q, k, v and o only."
    return False, f"{value!r} is not r·(in + out) summed over the attention projections of 4 layers."


@exercise("05.2", "Predict: the gpu-24gb preset trained on 2 GPUs under DDP (notebook 08): how many rows does "
          "one optimizer step see?",
          "effective batch = per-device batch × gradient accumulation × processes (section 3's table).")
def _ex05_2(value):
    p = resolve_preset("gpu-24gb")
    truth = p["batch_size"] * p["grad_accum"] * 2
    if value == truth:
        return True, f"right: {p['batch_size']} × {p['grad_accum']} × 2 = {truth} rows per update."
    if value == truth // 2:
        return False, "that is one GPU's share; each process takes its own batch."
    return False, f"{value!r} is not per-device batch × accumulation × 2."


@exercise("05.3", "Predict, then run: with max_length=128, how many of the training samples would be longer "
          "than max_length?",
          "read section 4's histogram, then run data.report.length_report(splits['train'], tok, 128).")
def _ex05_3(value):
    data.ensure_built(log=lambda *_: None)  # notebook 04 (or 05) built it; a fresh checkout builds it here
    train, tok = data.load_splits()["train"], load_tokenizer("tiny-qwen3")
    report = data.report.length_report(train, tok, 128)
    truth = report["longer_than_max_length"]
    if value == truth:
        return True, (f"right: {truth}, and {report['left_with_no_trained_tokens']} of them would train nothing: "
                      "their whole answer lies past token 128 (the tool-call samples carry a long tool schema).")
    if value == data.report.length_report(train, tok, resolve_preset("cpu-tiny")["max_length"])["longer_than_max_length"]:
        return False, "that is the count at the preset's 512 tokens; at 128 far more samples are cut."
    return False, f"{value!r} is not what length_report counts at 128 tokens."


# ----------------------------------------------------------------------------- 06
@exercise("06.1", "Two validation samples have (summed NLL, trained tokens) = (2.0, 4) and (6.0, 4). "
          "What is the course's perplexity, to 2 decimals?",
          "the course's perplexity is token-weighted: exp(total NLL / total tokens) (section 1).")
def _ex06_1(value):
    pairs = [(2.0, 4), (6.0, 4)]
    truth = evaluate.perplexity(pairs)
    if near(value, truth):
        return True, f"right: exp(8 / 8) = {truth:.2f}."
    per_sample = sum(math.exp(s / n) for s, n in pairs) / len(pairs)
    if near(value, per_sample):
        return False, "that averages per-sample perplexities; long and short replies must weigh by their tokens."
    return False, f"{value!r} is not exp(total NLL / total tokens)."


@exercise("06.2", "A prompt asks for name (string) and age (number); the reply is {\"name\": \"Bo\", \"age\": \"7\"}. "
          "Give (json_valid, json_keys) as two booleans.",
          "json_valid needs json.loads to give an object; json_keys also checks each key's JSON type (section 1).")
def _ex06_2(value):
    got = evaluate.json_check('{"name": "Bo", "age": "7"}', '{"name": "Al", "age": 3}')
    truth = (got["json_valid"], got["json_keys"])
    if tuple(value) == truth:
        return True, "right: it parses, but \"7\" is a string where a number was asked."
    return False, f"{tuple(value)} is not it: parse it, then compare the type of age."


@exercise("06.3", "Predict before section 4: on the general-chat rows, does the tuned model leak JSON \"more\", "
          "\"less\" or \"equally\" often than the base?",
          "think about what the JSON rows rewarded; then run the notebook and read the forgetting table.")
def _ex06_3(value):
    logs = sorted((p for p in paths.EVAL.glob("*/tuned.jsonl")), key=lambda p: p.stat().st_mtime)
    if not logs:
        return False, "no evaluation logged yet: run notebook 06 to the end, then check again."
    counts = {}
    for label in ("base", "tuned"):
        rows = [json.loads(line) for line in (logs[-1].parent / f"{label}.jsonl").open(encoding="utf-8")]
        counts[label] = sum(bool(r.get("json_leak")) for r in rows if r["source"] == evaluate.GENERAL_SOURCE)
    truth = "more" if counts["tuned"] > counts["base"] else "less" if counts["tuned"] < counts["base"] else "equally"
    said = f"base {counts['base']}, tuned {counts['tuned']} leaking replies ({logs[-1].parent.name})"
    if str(value).strip().lower() == truth:
        return True, f"right: {said}."
    return False, f"the run says {truth!r}: {said}."


# ----------------------------------------------------------------------------- 07
@exercise("07.1", "Predict, then run: how many more parameters does the merged tiny-qwen3 have than the base "
          "model (0 if none)?",
          "merge_and_unload folds (alpha/r)·B·A into W and removes lora_A and lora_B (section 2).")
def _ex07_1(value):
    from peft import LoraConfig, get_peft_model  # lazy: notebooks 00–04 load this module through check

    base = load_model("tiny-qwen3")
    before = sum(p.numel() for p in base.parameters())
    mounted = get_peft_model(base, LoraConfig(r=8, target_modules=list(PROJECTIONS)))
    truth = sum(p.numel() for p in mounted.merge_and_unload().parameters()) - before
    if value == truth:
        return True, ("right: none. The update is added into W, then lora_A and lora_B are removed: "
                      "the merged model has exactly the base's shapes, which is why any engine loads it.")
    if isinstance(value, int) and value > 0:
        return False, "that counts lora_A and lora_B; after the merge they are gone, folded into W."
    return False, f"{value!r} is not the difference."
