"""Exercise checkers: ``check.answer("01.1", my_answer)`` prints specific feedback.

Each exercise computes the truth from the course's own code (the tokenizer, the mask
builder, the pipeline …), so a checker cannot drift from what the notebook shows.
Solutions live in ``solutions/`` beside the notebooks, not in them. An unanswered
exercise (``None``) prints its hint and returns False without raising, so the notebooks
still run headless. ``check.given(key)`` hands a notebook the input an exercise works on.
This module holds the exercises of notebooks 00–04; ``check_training`` those of 05–07;
``exercises`` the registry both add to.
"""
from __future__ import annotations

from unittest import mock

from . import check_training  # noqa: F401  (registers the exercises of notebooks 05–07)
from . import data, environment, masks, templates, tokens
from .exercises import EXERCISES, answer, exercise, given, judge, question  # noqa: F401  (the notebooks' API)
from .exercises import near
from .models import load_model, load_tokenizer


def _tok():
    return load_tokenizer("tiny-qwen3")


# ----------------------------------------------------------------------------- 00
PATHS = ("unsloth", "bnb-cuda", "bnb-cpu")


@exercise("00.1", "Predict: a classmate has an RTX 4080 (CUDA) but installed only requirements.txt, not the GPU "
          "extra with unsloth. Which training path does notebook 05 take there?",
          f"one of {PATHS}; read environment.training_path's conditions (section 2).")
def _ex00_1(value):
    with mock.patch("torch.cuda.is_available", return_value=True), \
            mock.patch.object(environment, "unsloth_available", return_value=False):
        truth, why = environment.training_path()
    if str(value).strip() == truth:
        return True, f"right: {why}."
    if value == "unsloth":
        return False, "unsloth is only in requirements-gpu.txt; without it the fast path is not there."
    if value == "bnb-cpu":
        return False, "the GPU is there: bitsandbytes runs the 4-bit path on CUDA."
    return False, f"{value!r} is not one of the paths {PATHS}."


@exercise("00.2", "Predict, then run: what fraction of tiny-qwen3's parameters is its token-embedding table? "
          "(2 decimals)", "the table has vocab_size × hidden_size entries; compare with the total printed in "
          "section 4, then count model.get_input_embeddings().weight.numel().")
def _ex00_2(value):
    model = load_model("tiny-qwen3")
    total = sum(p.numel() for p in model.parameters())
    truth = model.get_input_embeddings().weight.numel() / total
    if near(value, truth):
        return True, (f"right: {truth:.0%}. A 151k-token vocabulary dominates a tiny model; in Qwen3-4B "
                      "it is about a tenth, and LoRA leaves it frozen either way.")
    if isinstance(value, (int, float)) and value > 1:
        return False, "give a fraction between 0 and 1, not a count."
    return False, f"{value!r} is not embedding parameters / all parameters."


# ----------------------------------------------------------------------------- 01
@exercise("01.1", "Predict, then run: render the whole sft-0103 conversation (it ends with an assistant "
          "reply) with add_generation_prompt=True. How many times does '<|im_start|>assistant' occur?",
          "does the template look at the last message before it appends the header? Read its last lines "
          "(section 6), then render and count.")
def _ex01_1(value):
    example = templates.load_examples()["sft-0103"]
    truth = templates.render(_tok(), example, add_generation_prompt=True).count("<|im_start|>assistant")
    replies = sum(m["role"] == "assistant" for m in example["messages"])
    if value == truth:
        return True, (f"right: {replies} replies plus one empty header. The template never checks the last "
                      "turn, so training text must be rendered with add_generation_prompt=False.")
    if value == replies:
        return False, "the template does not look at the last turn: it appends its header anyway."
    return False, f"{value!r} is not the count."


@exercise("01.2", "Predict, then run: in check.given('01.2') one assistant turn calls two tools and two "
          "tool messages answer. How many '<|im_start|>user' turns does the rendered text contain?",
          "render it with templates.render and count, or read the template's tool branch (section 6).",
          given=templates.parallel_tool_calls)
def _ex01_2(value):
    truth = templates.render(_tok(), templates.parallel_tool_calls()).count("<|im_start|>user")
    if value == truth:
        return True, "right: the question plus ONE user turn holding both <tool_response> blocks."
    if value == truth + 1:
        return False, "the two tool messages do not get a turn each: consecutive ones are merged."
    if value == 1:
        return False, "tool results do come back as user text; count that turn too."
    return False, f"{value!r} is not the count."


# ----------------------------------------------------------------------------- 02
SURVIVOR_CANDIDATES = ("<|im_start|>", "<|im_end|>", "<tool_call>", "<tool_response>")


@exercise("02.1", f"Predict, then run: decode the token ids of the rendered tool-0201 example with "
          f"skip_special_tokens=True. Which of {list(SURVIVOR_CANDIDATES)} are still in the text?",
          "skip_special_tokens removes only tokens with special=True (the table's 'special' column).")
def _ex02_1(value):
    tok = _tok()
    ids = tok(templates.render(tok, templates.load_examples()["tool-0201"]))["input_ids"]
    text = tok.decode(ids, skip_special_tokens=True)
    truth = {t for t in SURVIVOR_CANDIDATES if t in text}
    got = {value} if isinstance(value, str) else set(value)
    if got == truth:
        return True, ("right: the tool tags are ordinary added tokens, so a parser can still find the call "
                      "in a decoded reply; the turn markers are special and vanish.")
    if got & {"<|im_start|>", "<|im_end|>"}:
        return False, "the turn markers are special tokens: skip_special_tokens removes them."
    return False, f"{sorted(got)} is not the set that survives."


@exercise("02.2", "Modify and observe: choose your own pad token (not <|endoftext|>) with which transformers' "
          "collator keeps every label of section 3's chats. Which token string?",
          "try tokens.stop_labels_kept(tok, pad_token=...) until real_labels_masked is 0 (section 3).")
def _ex02_2(value):
    tok = _tok()
    if value == tok.pad_token:
        return False, f"{value} is the default; pick another token."
    if tok.convert_tokens_to_ids(value) in (None, tok.unk_token_id):
        return False, f"{value!r} is not one token of this vocabulary."
    row = tokens.stop_labels_kept(tok, pad_token=value)
    if row["real_labels_masked"] == 0:
        return True, (f"right: {value} never occurs in the chats, so padding is the only thing masked. "
                      "Any token that never appears in training text is a safe pad.")
    if value == tok.eos_token:
        return False, "that is pad == eos: every <|im_end|> label is erased and the model never learns to stop."
    return False, (f"{value!r} occurs in the chats, so {row['real_labels_masked']} real labels are masked too: "
                   "a pad token must never appear in training text.")


# ----------------------------------------------------------------------------- 03
def _example(key: str) -> dict:
    return templates.load_examples()[key]


@exercise("03.1", "Predict, then run: with train_end_token=False, how many tokens of sft-0103 are trained?",
          "start from the default count in section 1 and work out which tokens the flag removes (section 2).")
def _ex03_1(value):
    messages = _example("sft-0103")["messages"]
    count = lambda **kw: sum(x != masks.IGNORE_INDEX for x in masks.build_labels(_tok(), messages, **kw)["labels"])  # noqa: E731
    truth, default = count(train_end_token=False), count()
    replies = sum(m["role"] == "assistant" for m in messages)
    if value == truth:
        return True, (f"right: {default} − {default - truth}: each of the {replies} replies loses <|im_end|> and "
                      "the newline after it, so nothing teaches the model to stop.")
    if value == default:
        return False, "that is the default count; the flag removes the end of every trained reply."
    if value == default - replies:
        return False, "the newline after each <|im_end|> goes too: it sits inside the trained span."
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
@exercise("04.1", "Modify and observe: give mix weights (a dict over the pools) that make emoji exactly 50 % "
          "of a resample mix.",
          "weights are relative: data.normalize_weights(w, data.POOLS) must give emoji 0.5 (step 5).")
def _ex04_1(value):
    if not isinstance(value, dict):
        return False, "give a dict such as {'cmath': 1, ...}."
    share = data.normalize_weights(value, data.POOLS)["emoji"]
    if abs(share - 0.5) < 1e-9:
        return True, "right: normalised, emoji is one half and resample hits the count exactly."
    return False, f"these weights give emoji {share:.1%}, not 50 %."


@exercise("04.2", "Predict, then run: how many validation rows does split_train_valid give a set of 120 distinct samples "
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
