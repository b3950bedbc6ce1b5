"""Exercise checkers: ``check.answer("01.1", my_answer)`` prints specific feedback.

Each exercise computes the truth from the course's own code (the tokenizer, the mask
builder, the pipeline …), so a checker cannot drift from what the notebook shows.
Solutions live in ``solutions/`` beside the notebooks, not in them. An unanswered
exercise (``None``) prints its hint and returns False without raising, so the notebooks
still run headless.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import data, evaluate, masks, templates, tokens
from .lora import lora_params
from .models import load_model, load_tokenizer
from .train_config import resolve_preset


@dataclass
class Exercise:
    question: str
    hint: str
    judge: Callable[[Any], tuple[bool, str]]   # (correct?, feedback for this answer)


EXERCISES: dict[str, Exercise] = {}


def exercise(key: str, question: str, hint: str):
    """Register ``judge(answer) -> (ok, feedback)`` as exercise ``key``."""
    def register(judge):
        EXERCISES[key] = Exercise(question, hint, judge)
        return judge
    return register


def judge(key: str, value: Any) -> tuple[bool, str]:
    """(correct?, feedback) without printing; ``None`` means not answered yet."""
    if key not in EXERCISES:
        raise KeyError(f"no exercise {key!r}; known: {sorted(EXERCISES)}")
    ex = EXERCISES[key]
    if value is None or value is ...:
        return False, f"not answered yet. Hint: {ex.hint}"
    try:
        ok, feedback = ex.judge(value)
    except Exception as err:  # a malformed answer is feedback, not a crash
        ok, feedback = False, f"could not check that answer ({type(err).__name__}: {err})"
    return ok, feedback if ok else f"{feedback} Hint: {ex.hint}"


def answer(key: str, value: Any) -> None:
    """Print feedback for ``value`` as the answer to exercise ``key`` (``judge`` returns it instead)."""
    ok, feedback = judge(key, value)
    mark = "✅" if ok else ("⏳" if value is None or value is ... else "❌")
    print(f"{mark} {key}: {feedback}")


def question(key: str) -> str:
    """The question text of exercise ``key``."""
    return EXERCISES[key].question


def _tok():
    return load_tokenizer("tiny-qwen3")


# ----------------------------------------------------------------------------- 01
@exercise("01.1", "Which exact string does add_generation_prompt=True append to a conversation?",
          "render a prompt with and without it and compare the tails (section 1).")
def _ex01_1(value):
    tok, msgs = _tok(), [{"role": "user", "content": "hi"}]
    truth = templates.render(tok, msgs, add_generation_prompt=True)[len(templates.render(tok, msgs)):]
    if value == truth:
        return True, f"right: {truth!r} opens an assistant turn, so the next tokens are the reply."
    if "<|assistant|>" in str(value):
        return False, "there is no <|assistant|> token in Qwen3; the role is plain text after <|im_start|>."
    if str(value).strip() == truth.strip():
        return False, "almost: mind the newline after the role."
    return False, f"{value!r} is not what the template appends."


@exercise("01.2", "In the tool-call example, which role does the tool's response turn have in the rendered text?",
          "list the roles of templates.turns(tool_text) (section 4).")
def _ex01_2(value):
    text = templates.render(_tok(), templates.load_examples()["tool-0201"])
    roles = [t["role"] for t in templates.turns(text)]
    truth = roles[-2]
    if str(value).strip().lower() == truth:
        return True, f"right: the tool result comes back as a {truth!r} turn wrapped in <tool_response>."
    if str(value).strip().lower() == "tool":
        return False, "the message has role 'tool', but Qwen3's template renders it under another role."
    return False, f"{value!r} is not the rendered role."


# ----------------------------------------------------------------------------- 02
@exercise("02.1", "What is the token id of <|im_end|>?", "look it up in the added-token table (section 1).")
def _ex02_1(value):
    tok = _tok()
    truth = tok.convert_tokens_to_ids("<|im_end|>")
    if value == truth:
        return True, f"right: {truth} ends every turn and is the eos token."
    named = tok.convert_ids_to_tokens(int(value)) if isinstance(value, int) and 0 <= value < len(tok) else None
    return False, f"{value!r} is {named!r}, not <|im_end|>." if named else f"{value!r} is not a token id here."


@exercise("02.2", "With pad_token = eos_token, how many <|im_end|> labels does the collator keep in section 3?",
          "read the eos_labels_trained column of the pad == eos row.")
def _ex02_2(value):
    tok = _tok()
    truth = tokens.stop_labels_kept(tok, pad_token=tok.eos_token)["eos_labels_trained"]
    if value == truth:
        return True, "right: every stop label is masked, so the model never learns to stop."
    return False, f"{value!r} is not what the collator keeps."


# ----------------------------------------------------------------------------- 03
def _example(key: str) -> dict:
    return templates.load_examples()[key]


@exercise("03.1", "How many tokens of sft-0103 are trained (label != -100) with the default policy?",
          "count the green tokens, or sum(l != -100 for l in sample['labels']) (section 1).")
def _ex03_1(value):
    labels = masks.build_labels(_tok(), _example("sft-0103")["messages"])["labels"]
    truth = sum(x != masks.IGNORE_INDEX for x in labels)
    if value == truth:
        return True, f"right: {truth} of {len(labels)} tokens carry a loss — both replies and their <|im_end|>\\n."
    if value == len(labels):
        return False, "that is every token; the system and user turns and the role headers are masked."
    return False, f"{value!r} is not the number of trained tokens."


@exercise("03.2", "With train_tool_calls=False, how many assistant turns of tool-0201 are trained?",
          "look at the 'trained' flag of each turn in build_labels(...)['turns'] (section 2).")
def _ex03_2(value):
    ex = _example("tool-0201")
    turns = masks.build_labels(_tok(), ex["messages"], ex["tools"], train_tool_calls=False)["turns"]
    truth = sum(t["trained"] for t in turns)
    if value == truth:
        return True, "right: only the natural-language summary is trained; the call turn is context."
    return False, f"{value!r} is not it: count the assistant turns that keep their labels."


# ----------------------------------------------------------------------------- 04
@exercise("04.1", "Give mix weights (a dict over the pools) that make emoji exactly 50 % of a resample mix.",
          "weights are relative: data.normalize_weights(w, data.POOLS) must give emoji 0.5 (step 5).")
def _ex04_1(value):
    if not isinstance(value, dict):
        return False, "give a dict such as {'cmath': 1, ...}."
    share = data.normalize_weights(value, data.POOLS)["emoji"]
    if abs(share - 0.5) < 1e-9:
        return True, "right: normalised, emoji is one half and resample hits the count exactly."
    return False, f"these weights give emoji {share:.1%}, not 50 %."


@exercise("04.2", "How many validation rows does split_train_valid give a set of 120 distinct samples "
          "(default valid_ratio and floor of 100)?",
          "the floor of 100 must never empty train; read split_train_valid's docstring (step 8).")
def _ex04_2(value):
    from datasets import Dataset

    rows = [{"id": f"s{i}", "source": "cmath", "tags": ["math"],
             "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": str(i)}]}
            for i in range(120)]
    splits, _ = data.split_train_valid(Dataset.from_list(rows))
    truth = len(splits["validation"])
    if value == truth:
        return True, f"right: validation is capped at half, so 120 samples split {120 - truth}/{truth}."
    if value == 100:
        return False, "the floor of 100 would leave only 20 for training; the split caps validation."
    return False, f"{value!r} is not what the split gives."


# ----------------------------------------------------------------------------- 05
@exercise("05.1", "How many trainable LoRA parameters does r=8 on all 7 projections add to tiny-qwen3?",
          "each targeted linear layer gets r·(in + out); the widget or lora.lora_params shows it (section 3).")
def _ex05_1(value):
    model = load_model("tiny-qwen3")
    truth, r16 = lora_params(model, 8), lora_params(model, 16)
    if value == truth:
        return True, f"right: {truth:,} parameters, half of r=16's {r16:,} — LoRA size is linear in r."
    if value == r16:
        return False, "that is r=16; halve the rank."
    return False, f"{value!r} is not the count for r=8."


@exercise("05.2", "What is the effective batch size (samples per optimizer step) of the gpu-16gb preset?",
          "effective batch = per-device batch × gradient accumulation × GPUs (the batch-size table).")
def _ex05_2(value):
    p = resolve_preset("gpu-16gb")
    truth = p["batch_size"] * p["grad_accum"]
    if value == truth:
        return True, f"right: {p['batch_size']} × {p['grad_accum']} = {truth} samples per update."
    if value in (p["batch_size"], p["grad_accum"]):
        return False, "that is one factor only; multiply batch size by gradient accumulation."
    return False, f"{value!r} is not the effective batch."


# ----------------------------------------------------------------------------- 06
@exercise("06.1", "Two validation samples have (summed NLL, trained tokens) = (2.0, 4) and (6.0, 4). "
          "What is the course's perplexity, to 2 decimals?",
          "the course's perplexity is token-weighted: exp(total NLL / total tokens) (section 1).")
def _ex06_1(value):
    import math

    pairs = [(2.0, 4), (6.0, 4)]
    truth = evaluate.perplexity(pairs)
    if isinstance(value, (int, float)) and abs(value - truth) < 0.006:
        return True, f"right: exp(8 / 8) = {truth:.2f}."
    per_sample = sum(math.exp(s / n) for s, n in pairs) / len(pairs)
    if isinstance(value, (int, float)) and abs(value - per_sample) < 0.006:
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
