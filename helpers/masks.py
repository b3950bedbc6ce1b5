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
import random
import re
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterable

from .tool_schemas import tools_list

IGNORE_INDEX = -100
POLICIES = ("all_assistant", "last_assistant")
ROLES = ("system", "user", "assistant", "tool")
_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")


class MaskError(ValueError):
    """A conversation that cannot be labelled; the message names the sample and the field."""


def _where(index: int | None, field: str) -> str:
    return f"sample {index}, {field}" if index is not None else field


# ----------------------------------------------------------------------------- checks
def validate(messages: Any, tools: Any = None, index: int | None = None) -> None:
    """Raise ``MaskError`` naming the sample and field if the conversation is malformed."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise MaskError(f"{_where(index, 'messages')}: must be a non-empty list of messages")
    if tools is not None and not (isinstance(tools, (list, tuple)) and all(isinstance(t, dict) for t in tools)):
        raise MaskError(f"{_where(index, 'tools')}: must be a list of tool schemas (dicts) or None")
    prev, open_calls = None, False
    for k, m in enumerate(messages):
        at = f"messages[{k}]"
        if not isinstance(m, dict):
            raise MaskError(f"{_where(index, at)}: must be a dict, got {type(m).__name__}")
        role = m.get("role")
        if role not in ROLES:
            raise MaskError(f"{_where(index, at + '.role')}: {role!r} is not one of {ROLES}")
        calls = m.get("tool_calls") if role == "assistant" else None
        if calls is not None:
            _check_calls(calls, index, at)
        content = m.get("content")
        if not isinstance(content, str) and not (content is None and calls):
            raise MaskError(f"{_where(index, at + '.content')}: must be a string, got {type(content).__name__}"
                            + ("" if role != "assistant" else " (None is allowed only with tool_calls)"))
        expected = {None: ("system", "user"), "system": ("user",), "user": ("assistant",),
                    "assistant": ("user", "tool") if open_calls else ("user",), "tool": ("tool", "assistant")}[prev]
        if role == "tool" and not open_calls:
            raise MaskError(f"{_where(index, at + '.role')}: a 'tool' message must follow an assistant "
                            "message with tool_calls")
        if role not in expected:
            raise MaskError(f"{_where(index, at + '.role')}: roles out of order: {role!r} after "
                            f"{prev or 'the start'!r} (expected {' or '.join(map(repr, expected))})")
        open_calls = bool(calls) or (role == "tool" and open_calls)
        prev = role
    if not any(m["role"] == "assistant" for m in messages):
        raise MaskError(f"{_where(index, 'messages')}: no assistant message, nothing to train on")


def _check_calls(calls: Any, index: int | None, at: str) -> None:
    if not isinstance(calls, (list, tuple)) or not calls:
        raise MaskError(f"{_where(index, at + '.tool_calls')}: must be a non-empty list")
    for j, call in enumerate(calls):
        fn = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise MaskError(f"{_where(index, f'{at}.tool_calls[{j}]')}: needs function.name (a string)")
        if not isinstance(fn.get("arguments"), (dict, str)):
            raise MaskError(f"{_where(index, f'{at}.tool_calls[{j}].function.arguments')}: "
                            "must be a dict or a JSON string")


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
    if not eligible:
        raise MaskError(f"{_where(index, 'messages')}: no assistant turn is trained with "
                        f"policy={policy!r}, train_tool_calls={train_tool_calls}")
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


def truncate(samples: Iterable[dict], max_length: int, on_cut: str = "drop") -> tuple[list[dict], Counter]:
    """Cut samples to ``max_length`` tokens (keep the start) without silently wrong labels.

    A sample whose trained span is cut is dropped (``on_cut="drop"``), kept with the cut
    reply masked (``"mask"``), or kept as cut (``"keep"``); each case is counted in the
    returned ``Counter`` and ``"keep"`` also warns. TRL itself keeps cut replies silently.
    """
    import warnings

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
    import warnings

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
    with _quiet_progress():
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(records),
                             processing_class=tokenizer)
    data = trainer.train_dataset
    return [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in data]


@contextmanager
def _quiet_progress():
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


# ----------------------------------------------------------------------------- packing
def pack(samples: list[dict], max_length: int, strategy: str = "bfd",
         on_cut: str = "drop") -> tuple[list[dict], Counter]:
    """Pack labelled samples with TRL's ``pack_dataset``; add TRL's per-sample ``position_ids``.

    TRL's ``bfd`` silently truncates a sample longer than ``max_length``; here such
    samples first go through ``truncate`` (dropped by default) and are counted.
    """
    from datasets import Dataset
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    samples, report = truncate(samples, max_length, on_cut=on_cut)
    ds = Dataset.from_dict({"input_ids": [s["input_ids"] for s in samples],
                            "labels": [s["labels"] for s in samples]})
    with _quiet_progress():
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
    import torch

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


# ----------------------------------------------------------------------------- synthetic conversations
_SYSTEMS = ["You are a helpful assistant.", "你是一个乐于助人的助手。", "Answer briefly. 🙂", "Reply in JSON only."]
_ASKS = ["What is 17 + 25?", "用一句话解释量子纠缠。", "Write a Python function that reverses a list.",
         "Give me a haiku about rain 🌧️", "Return the user as JSON: name=Ann, age=31.",
         "What does `git rebase` do?", "把这句话翻译成英文：今天天气很好。", "Is 97 prime?"]
_REPLIES = ["42.", "量子纠缠是两个粒子的状态彼此关联，无论相距多远。",
            "def reverse(xs):\n    return xs[::-1]\n", "Soft rain on the roof —\nthe city exhales slowly.\n🌧️✨",
            "{\"name\": \"Ann\", \"age\": 31}", "It replays your commits on top of another branch.",
            "The weather is nice today.", "Yes, 97 is prime. ✅",
            "```python\nprint({'a': 1})\n```", "好的！👍 还有什么需要帮忙的吗？"]
_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "calc", "description": "Evaluate arithmetic.",
     "parameters": {"type": "object", "properties": {"expr": {"type": "string"}}, "required": ["expr"]}}},
]
_CALLS = [("get_weather", {"city": "北京"}), ("get_weather", {"city": "Edmonton"}),
          ("calc", {"expr": "12*(3+4)"}), ("calc", '{"expr": "2**10"}')]
_RESULTS = ["{\"temp_c\": 12, \"condition\": \"Cloudy\"}", "84", "1024", "晴，25°C ☀️"]


def synthetic_conversation(rng: random.Random) -> dict:
    """One random conversation: 1–6 user turns, maybe a system prompt, tools, tool calls and results."""
    messages: list[dict] = []
    if rng.random() < 0.4:
        messages.append({"role": "system", "content": rng.choice(_SYSTEMS)})
    use_tools = rng.random() < 0.35
    for _ in range(rng.randint(1, 6)):
        messages.append({"role": "user", "content": rng.choice(_ASKS)})
        if use_tools and rng.random() < 0.5:
            calls = [rng.choice(_CALLS) for _ in range(rng.randint(1, 2))]
            preface = rng.choice(["", "", None, "Let me check.", "我查一下。"])
            messages.append({"role": "assistant", "content": preface, "tool_calls": [
                {"type": "function", "id": f"call_{i}", "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(calls)]})
            messages += [{"role": "tool", "content": rng.choice(_RESULTS)} for _ in calls]
        messages.append({"role": "assistant", "content": rng.choice(_REPLIES)})
    return {"messages": messages, "tools": list(_TOOLS) if use_tools else None}


def synthetic_conversations(n: int, seed: int = 0) -> list[dict]:
    """``n`` random conversations (same seed, same list) for tests, benchmarks and demos."""
    rng = random.Random(seed)
    return [synthetic_conversation(rng) for _ in range(n)]
