"""Assistant-only loss masks (notebook 03): which tokens a model is trained on.

``build_labels`` renders a conversation with the tokenizer's chat template and returns
``input_ids``, ``labels`` (-100 where no loss is taken) and ``segments`` (the role and
message index of every token). Trained spans are found from the template itself, never
by searching the text for an anchor such as ``<|im_start|>assistant``:

* a template with ``{% generation %}`` markers → transformers'
  ``return_assistant_tokens_mask`` (what TRL uses with ``assistant_only_loss=True``);
* a template without → character offsets: the assistant reply of message ``k`` starts
  where ``messages[:k]`` + generation prompt ends and stops where ``messages[:k+1]``
  ends; tokens overlapping that span are trained.

Either way the trained span is the reply plus its end-of-turn text (``<|im_end|>\\n``
for Qwen3), exactly what TRL's ``SFTTrainer`` trains (proven in ``tests/test_masks.py``).
"""
from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterable

from . import conversation
from .tool_schemas import tools_list

IGNORE_INDEX = -100
POLICIES = ("all_assistant", "last_assistant")
_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")


class MaskError(ValueError):
    """A conversation that cannot be labelled; the message names the sample and the field."""


def _where(index: int | None, field: str) -> str:
    return f"sample {index}, {field}" if index is not None else field


# ----------------------------------------------------------------------------- checks
def validate(messages: Any, tools: Any = None, index: int | None = None) -> None:
    """Raise ``MaskError`` naming the sample and field at the first problem ``helpers.conversation``
    finds (literal control text is allowed: TRL labels it the same way)."""
    found = conversation.problems(messages, tools, control_text=False)
    if found:
        raise MaskError(_where(index, found[0]))


# ----------------------------------------------------------------------------- rendering
class _Renderer:
    """Renders prefixes of one conversation with a compiled template (as apply_chat_template does)."""

    def __init__(self, tokenizer, template: str, tools):
        # Private, but it is the cached compiler apply_chat_template itself calls; rendering the
        # many prefixes through the public call would redo its argument handling every time.
        from transformers.utils.chat_template_utils import _compile_jinja_template

        self.compiled = _compile_jinja_template(template)
        self.kwargs = {**tokenizer.special_tokens_map, "tools": tools, "documents": None}

    def __call__(self, messages, add_generation_prompt: bool = False, **over) -> str:
        return self.compiled.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                    **{**self.kwargs, **over})


def _common_prefix(a: str, b: str) -> int:
    if a.startswith(b):
        return len(b)
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _layout(render: _Renderer, messages, full: str, tools, index, replies: bool) -> tuple[int, list[int], dict]:
    """Character layout of the rendered conversation, found by rendering prefixes.

    Returns (start of message 0, end of every message, reply start of every assistant
    message when ``replies``). A reply starts where ``messages[:k]`` + generation prompt
    ends; both that text and ``messages[:k+1]`` must be exact prefixes of the full text.
    """
    n = len(messages)
    ends: list[int | None] = [None] * (n - 1) + [len(full)]
    reply: dict[int, int] = {}
    header = None
    if replies:
        for k, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = render(messages[:k], add_generation_prompt=True)
            if not full.startswith(prompt):
                raise MaskError(f"{_where(index, f'messages[{k}]')}: the chat template does not render this "
                                "conversation prefix by prefix; use a template with {% generation %} markers")
            reply[k] = len(prompt)
            if header is None:  # the generation prompt text, e.g. "<|im_start|>assistant\n"
                base = render(messages[:k])
                ends[k - 1] = _common_prefix(full, base)
                header = prompt[len(base):] if prompt.startswith(base) else ""
    for k in range(n - 1):
        if ends[k] is not None:
            continue
        nxt = reply.get(k + 1)
        if header and nxt is not None and full[nxt - len(header):nxt] == header:
            ends[k] = nxt - len(header)  # saves a render: the message ends where the header begins
            continue
        part = render(messages[: k + 1])
        ends[k] = _common_prefix(full, part)
        if k in reply and ends[k] != len(part):
            raise MaskError(f"{_where(index, f'messages[{k}]')}: the chat template does not render this "
                            "conversation prefix by prefix; use a template with {% generation %} markers")
    start = 0
    if tools and messages[0].get("role") != "system":  # a tools block the template adds before message 0
        bare = render(messages[:1], tools=None)
        head = render(messages[:1])
        if head.endswith(bare):
            start = len(head) - len(bare)
    return start, ends, reply


def _token_range(starts: list[int], stops: list[int], a: int, b: int) -> tuple[int, int]:
    """Tokens [i, j) whose character span overlaps [a, b)."""
    return bisect.bisect_right(stops, a), bisect.bisect_left(starts, b)


# ----------------------------------------------------------------------------- labels
def build_labels(
    tokenizer,
    messages: list[dict],
    tools: list[dict] | None = None,
    policy: str = "all_assistant",
    train_tool_calls: bool = True,
    train_end_token: bool = True,
    *,
    chat_template: str | None = None,
    index: int | None = None,
) -> dict:
    """Token ids, labels (-100 = no loss) and per-token segments for one conversation.

    ``policy``: ``"all_assistant"`` trains every assistant reply, ``"last_assistant"``
    only the last one that is trainable. ``train_tool_calls=False`` leaves assistant
    turns that call tools untrained. ``train_end_token`` trains each trained reply's
    end-of-turn token (``<|im_end|>`` and the newline after it), so the model learns to
    stop. ``segments[i]`` is ``"role:k"`` (message ``k``) or ``"tools"``. ``turns`` lists
    each message's token range and whether it is trained.
    """
    if policy not in POLICIES:
        raise MaskError(f"{_where(index, 'policy')}: {policy!r} is not one of {POLICIES}")
    validate(messages, tools, index)
    template = chat_template or tokenizer.chat_template
    if not isinstance(template, str):
        raise MaskError(f"{_where(index, 'chat_template')}: the tokenizer has no single chat template")
    render = _Renderer(tokenizer, template, tools)
    marked = bool(_GENERATION.search(template))
    if marked:
        enc = tokenizer.apply_chat_template(
            messages, tools=tools, chat_template=template, tokenize=True, return_dict=True,
            return_assistant_tokens_mask=True, tokenizer_kwargs={"return_offsets_mapping": True},
        )
        full = render(messages)
        ids, offsets, gen_mask = enc["input_ids"], enc["offset_mapping"], enc["assistant_masks"]
    else:
        full = render(messages)
        enc = tokenizer.backend_tokenizer.encode(full, add_special_tokens=False)
        ids, offsets, gen_mask = enc.ids, enc.offsets, None
    starts = [s for s, _ in offsets]
    stops = [e for _, e in offsets]
    first, ends, reply = _layout(render, messages, full, tools, index, replies=not marked)

    segments = ["tools"] * len(ids)
    turns, begin = [], first
    for k, m in enumerate(messages):
        i, j = bisect.bisect_left(starts, begin), bisect.bisect_left(starts, ends[k])
        segments[i:j] = [f"{m['role']}:{k}"] * (j - i)
        turns.append({"index": k, "role": m["role"], "start": i, "end": j,
                      "tool_call": bool(m.get("tool_calls")), "trained": False})
        begin = ends[k]

    eligible = [t for t in turns if t["role"] == "assistant" and (train_tool_calls or not t["tool_call"])]
    if policy == "last_assistant":
        eligible = eligible[-1:]
    # never empty: a valid conversation ends with an assistant reply that calls no tool
    if marked:
        spans = _spans_from_mask(gen_mask, turns)
    else:
        spans = {k: _token_range(starts, stops, a, ends[k]) for k, a in reply.items()}

    labels = [IGNORE_INDEX] * len(ids)
    eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    for t in eligible:
        i, j = spans.get(t["index"], (0, 0))
        if not train_end_token:
            j = _end_token_start(ids, i, j, eos)
        labels[i:j] = ids[i:j]
        t["trained"] = j > i
        t["trained_span"] = (i, j)
    return {"input_ids": list(ids), "labels": labels, "segments": segments, "turns": turns}


def _spans_from_mask(mask: list[int], turns: list[dict]) -> dict[int, tuple[int, int]]:
    """Token span of the generation-marked tokens inside each assistant message."""
    spans = {}
    for t in turns:
        if t["role"] != "assistant":
            continue
        hits = [p for p in range(t["start"], t["end"]) if mask[p]]
        spans[t["index"]] = (hits[0], hits[-1] + 1) if hits else (0, 0)
    return spans


def _end_token_start(ids: list[int], i: int, j: int, eos: int) -> int:
    """Where the end-of-turn tokens of the trained span ``[i, j)`` begin (the last eos)."""
    for p in range(j - 1, i - 1, -1):
        if ids[p] == eos:
            return p
    return j


def build_many(tokenizer, rows: Iterable[dict | list], **kwargs: Any) -> list[dict]:
    """``build_labels`` for many rows (``{"messages", "tools"}`` dicts or bare message lists).

    Errors name the row's position as the sample index.
    """
    out = []
    for i, row in enumerate(rows):
        messages, tools = (row, None) if isinstance(row, list) else (row.get("messages"), tools_list(row))
        out.append(build_labels(tokenizer, messages, tools, index=i, **kwargs))
    return out


def trained_pieces(tokenizer, sample: dict) -> list[str]:
    """Decoded text of each contiguous run of trained tokens, in order."""
    pieces, run = [], []
    for tid, lab in zip(sample["input_ids"], sample["labels"]):
        if lab != IGNORE_INDEX:
            run.append(tid)
        elif run:
            pieces.append(tokenizer.decode(run))
            run = []
    if run:
        pieces.append(tokenizer.decode(run))
    return pieces


def summary(sample: dict) -> dict:
    """Token counts of a labelled sample: total, trained, masked, trained per role."""
    trained = [s for s, lab in zip(sample["segments"], sample["labels"]) if lab != IGNORE_INDEX]
    per_role = Counter(s.split(":")[0] for s in trained)
    return {"tokens": len(sample["labels"]), "trained": len(trained),
            "masked": len(sample["labels"]) - len(trained), **{f"trained_{r}": n for r, n in per_role.items()}}


# ----------------------------------------------------------------------------- what goes wrong
def anchor_labels(tokenizer, messages: list[dict], tools=None,
                  anchor: str = "<|im_start|>assistant\n", end: str = "<|im_end|>\n") -> dict:
    """The naive way (the seed's ``response_template``): train from every anchor string to the next end.

    Shown in notebook 03 only to be fooled: a user message that quotes the anchor text
    gets part of the user's words trained.
    """
    full = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    enc = tokenizer.backend_tokenizer.encode(full, add_special_tokens=False)
    starts = [s for s, _ in enc.offsets]
    stops = [e for _, e in enc.offsets]
    labels = [IGNORE_INDEX] * len(enc.ids)
    pos = full.find(anchor)
    while pos != -1:
        a = pos + len(anchor)
        b = full.find(end, a)
        b = len(full) if b == -1 else b + len(end)
        i, j = _token_range(starts, stops, a, b)
        labels[i:j] = enc.ids[i:j]
        pos = full.find(anchor, a)
    segments = build_labels(tokenizer, messages, tools)["segments"]  # same text, same tokens: for naming only
    return {"input_ids": list(enc.ids), "labels": labels, "segments": segments}


# ----------------------------------------------------------------------------- TRL's own preprocessing
def trl_labels(tokenizer, rows: list[dict | list], model, output_dir, **config: Any) -> list[dict]:
    """Labels as TRL's ``SFTTrainer`` prepares them with ``assistant_only_loss=True``.

    Builds a real trainer on ``rows`` (nothing is trained) and returns its processed
    ``train_dataset`` rows (``input_ids``, ``labels``), in input order. Tool-call
    arguments are stored as JSON strings, which the template renders verbatim, because
    Arrow would otherwise merge differently-keyed dicts.
    """
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    records = []
    for row in rows:
        messages, tools = (row, None) if isinstance(row, list) else (row["messages"], row.get("tools"))
        records.append({"messages": [_arrow_safe(m) for m in messages],
                        "tools": json.dumps(tools, ensure_ascii=False) if tools else None})
    settings = {"max_length": None, "packing": False, "shuffle_dataset": False, "report_to": [],
                "use_cpu": not torch.cuda.is_available(), "bf16": False, **config}
    args = SFTConfig(output_dir=str(output_dir), assistant_only_loss=True, **settings)
    with quiet_progress():
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(records),
                             processing_class=tokenizer)
    data = trainer.train_dataset
    return [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in data]


@contextmanager
def quiet_progress():
    """No ``datasets`` progress bars inside (notebook outputs stay readable); restored after."""
    from datasets.utils import logging as ds_logging

    was = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            ds_logging.enable_progress_bar()


def _arrow_safe(message: dict) -> dict:
    m = dict(message)
    if m.get("tool_calls"):
        m["tool_calls"] = [_call_as_string(c) for c in m["tool_calls"]]
    return m


def _call_as_string(call: dict) -> dict:
    fn = dict(call.get("function", call))
    if not isinstance(fn["arguments"], str):
        fn["arguments"] = json.dumps(fn["arguments"], ensure_ascii=False)
    return {"type": "function", "function": {"name": fn["name"], "arguments": fn["arguments"]}}
