"""Step 1 of the dataset pipeline: read each raw source and normalise it to ``messages``.

Every ``normalize_*`` function takes a local file (JSONL, CSV or a ``save_to_disk``
folder) or, with ``hub=True``, a Hugging Face dataset id, and returns
``(dataset, report)``: the dataset has the course schema (``FEATURES``) and the
report counts rows in/out, every drop by reason (with the first few row numbers) and
every literal control token removed. Nothing is dropped without being counted.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
from datasets import Dataset, Features, List, Value, concatenate_datasets

from .. import conversation, paths
from ..conversation import CONTROL_TOKEN_RE  # cut out of every text and counted
from ..numbers import NUMBER_RE, format_number  # noqa: F401  (NUMBER_RE: public here too)
from ..tool_schemas import tools_text
from .manifest import sha256
from .read import read_rows
from .row_checks import FIELDS, chat_row_problem, check_ids_across, check_unique_ids, type_problem

# One row of the course: OpenAI/TRL ``messages``; tool-call arguments are JSON strings
# (as in the OpenAI API) and ``tools`` is the JSON text of the row's tool schemas (None
# without tools; TRL's SFTTrainer parses it), so rows with different tools share one Arrow schema.
MESSAGE = {
    "role": Value("string"),
    "content": Value("string"),
    "tool_calls": List({
        "id": Value("string"),
        "type": Value("string"),
        "function": {"name": Value("string"), "arguments": Value("string")},
    }),
    "tool_call_id": Value("string"),
}
FEATURES = Features({
    "id": Value("string"),
    "messages": List(MESSAGE),
    "source": Value("string"),
    "tags": List(Value("string")),
    "tools": Value("string"),
})
# Where each pool's raw data lives on the hub (``hub=True``) and which split to read
# (CMATH's files are cmath_dev/cmath_test, which datasets names validation/test).
HUB_IDS = {"cmath": "weitianwen/cmath", "mawps": "mwpt5/MAWPS", "emoji": "shareAI/DPO-zh-en-emoji"}
HUB_SPLITS = {"cmath": "test", "mawps": "train", "emoji": "train"}
NORMALIZED = ("id", "messages", "tags", "tools")  # step 1's columns; add_metadata adds "source"
MAX_ANSWER_CHARS = 3000
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PLACEHOLDER_RE = re.compile(r"\b(?:number|N_)(\d+)\b")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([.,?!;:])")
EXAMPLES = 5  # rows named per drop reason (file:line, or the id)


def column(ds: Dataset, name: str) -> np.ndarray:
    """One column as a numpy array, straight from Arrow (``ds[name]`` converts row by row)."""
    return ds.with_format("arrow")[name].to_numpy(zero_copy_only=False) if len(ds) else np.array([])


def clean_text(text: Any) -> tuple[str, int]:
    """Text without literal control tokens or control characters; returns (text, tokens removed)."""
    if text is None:
        return "", 0
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    text, removed = CONTROL_TOKEN_RE.subn("", text)
    text = _CONTROL_CHARS_RE.sub("", text)
    return text.strip(), removed


def _turn(role: str, content: str) -> dict:
    return {"role": role, "content": content, "tool_calls": None, "tool_call_id": None}


def _require(columns: list[str], name: str, *groups: tuple[str, ...]) -> None:
    """Each group needs at least one of its columns, else ``ValueError`` naming file and fields."""
    for group in groups:
        if not any(col in columns for col in group):
            raise ValueError(f"{name}: missing column {' or '.join(repr(c) for c in group)} "
                             f"(columns: {columns})")


# ---------------------------------------------------------------- row normalisers
# Each takes a batch (dict of lists) and returns messages + ``_drop`` (reason or "")
# + ``_ctrl`` (control tokens removed). They are pure functions: safe with num_proc>1
# and with the datasets cache.

def _qa_rows(questions, answers, drops, ctrl_extra=None) -> dict:
    out = {"messages": [], "_drop": [], "_ctrl": []}
    for i, (q, a, drop) in enumerate(zip(questions, answers, drops)):
        q, nq = clean_text(q)
        a, na = clean_text(a)
        if not drop and not q:
            drop = "empty question after cleaning"
        if not drop and not a:
            drop = "empty answer after cleaning"
        out["messages"].append([] if drop else [_turn("user", q), _turn("assistant", a)])
        out["_drop"].append(drop)
        out["_ctrl"].append(nq + na + (ctrl_extra[i] if ctrl_extra else 0))
    return out


def cmath_batch(batch: dict) -> dict:
    n = len(next(iter(batch.values())))
    questions = batch.get("input") or [None] * n
    if "question" in batch:
        questions = [q if q else alt for q, alt in zip(questions, batch["question"])]
    answers, drops = [], []
    for q, golden in zip(questions, batch.get("golden", [None] * n)):
        number = format_number(golden)
        answers.append(number)
        drops.append("missing question" if not q else "missing golden answer" if golden in (None, "")
                     else "golden answer is not a number" if number is None else "")
    return _qa_rows(questions, answers, drops)


def mawps_batch(batch: dict) -> dict:
    questions, answers, drops = [], [], []
    for q, numbers, answer in zip(batch["Question"], batch["Numbers"], batch["Answer"]):
        values = str(numbers or "").split()
        wanted = [int(k) for k in _PLACEHOLDER_RE.findall(q or "")]
        formatted = [format_number(v) for v in values]
        drop = ""
        if not q:
            drop = "missing Question"
        elif wanted and max(wanted) >= len(values):
            drop = "Numbers has fewer values than the placeholders"
        elif any(formatted[k] is None for k in wanted):
            drop = "a value in Numbers is not a number"
        number = format_number(answer)
        if not drop and not str(answer or "").strip():
            drop = "missing Answer"
        elif not drop and number is None:
            drop = "Answer is not a number"
        filled = _PLACEHOLDER_RE.sub(lambda m: formatted[int(m.group(1))], q) if not drop else ""
        questions.append(_SPACE_BEFORE_PUNCT_RE.sub(r"\1", filled))
        answers.append(number)
        drops.append(drop)
    return _qa_rows(questions, answers, drops)


def emoji_batch(batch: dict) -> dict:
    if "question" in batch:  # {"question", "answer_zh", "answer_en"}
        n = len(batch["question"])
        zh, en = batch.get("answer_zh", [None] * n), batch.get("answer_en", [None] * n)
        answers = [a if a and str(a).strip() else b for a, b in zip(zh, en)]
        drops = ["" if q else "missing question" for q in batch["question"]]
        drops = [d or ("no answer_zh or answer_en" if not a else "") for d, a in zip(drops, answers)]
        return _capped(_qa_rows(batch["question"], answers, drops))
    out = {"messages": [], "_drop": [], "_ctrl": []}  # firefly DPO: {"prompt", "chosen", "rejected"}
    for prompt, chosen in zip(batch["prompt"], batch["chosen"]):
        turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt or [])
        chosen = list(chosen or [])
        if chosen and isinstance(chosen[0], dict) and chosen[0].get("role") != "assistant":
            turns = chosen  # chosen repeats the prompt
        else:
            turns = turns + chosen
        drop = "" if chosen else "empty chosen"
        # types and roles first, so that None content is a counted reason, never an empty string
        drop = drop or next(iter(conversation.problems(turns, control_text=False)), "")
        msgs, ctrl = [], 0
        for t in [] if drop else turns:
            text, k = clean_text(t["content"])
            msgs.append(_turn(t["role"], text))
            ctrl += k
        if not drop and not all(m["content"] for m in msgs):
            drop = "empty turn after cleaning"
        out["messages"].append([] if drop else msgs)
        out["_drop"].append(drop)
        out["_ctrl"].append(ctrl)
    return _capped(out)


def _capped(out: dict) -> dict:
    """Cap assistant replies at MAX_ANSWER_CHARS; ``_capped`` counts them."""
    out["_capped"] = []
    for msgs in out["messages"]:
        hit = 0
        for m in msgs:
            if m["role"] == "assistant" and len(m["content"]) > MAX_ANSWER_CHARS:
                m["content"], hit = m["content"][:MAX_ANSWER_CHARS], 1
        out["_capped"].append(hit)
    return out


def chat_batch(batch: dict) -> dict:
    """Rows already in the course schema: clean every content, tool arguments and tools as JSON strings."""
    n = len(batch["messages"])
    out = {"messages": [], "_drop": [], "_ctrl": [], "tools": [],
           "tags": [list(t or []) for t in batch.get("tags", [None] * n)]}
    for raw, tools in zip(batch["messages"], batch.get("tools", [None] * n)):
        try:
            out["tools"].append(tools_text(tools))
            bad_tools = ""
        except ValueError as err:
            out["tools"].append(None)
            bad_tools = str(err)
        msgs, ctrl = [], 0
        for m in raw or []:
            text, k = clean_text(m.get("content"))
            calls = m.get("tool_calls") or None
            if calls:
                calls = [{"id": c.get("id"), "type": c.get("type") or "function",
                          "function": {"name": fn["name"], "arguments": _arguments(fn)}}
                         for c in calls for fn in [c.get("function", c)]]
            msgs.append({"role": m.get("role"), "content": text, "tool_calls": calls,
                         "tool_call_id": m.get("tool_call_id")})
            ctrl += k
        out["messages"].append(msgs)
        out["_drop"].append(bad_tools or ("" if msgs else "no messages"))
        out["_ctrl"].append(ctrl)
    return out


def _conversation_problems(batch: dict) -> dict:
    """A row the normaliser kept but ``helpers.conversation`` refuses is dropped, its first problem the reason."""
    n = len(batch["_drop"])
    tools, tags = batch.get("tools") or [None] * n, batch.get("tags") or [None] * n
    return {"_drop": [drop or next(iter(conversation.problems(m, t, g)), "")
                      for drop, m, t, g in zip(batch["_drop"], batch["messages"], tools, tags)]}


def _arguments(function: dict) -> str:
    args = function.get("arguments")
    return args if isinstance(args, str) else json.dumps(args, ensure_ascii=False, sort_keys=True)


# ---------------------------------------------------------------- public normalisers

def _normalize(path, source: str, batch_fn: Callable, required, *, hub: bool,
               line_offset: int, fields: dict | None = None) -> tuple[Dataset, dict]:
    raw = read_rows(path, hub=hub, split=HUB_SPLITS.get(source, "train"))
    _require(raw.columns, raw.name, *(required(raw.columns) if callable(required) else required))
    stem = Path(raw.name).stem if not hub else raw.name.replace("/", "_")
    if fields is None:  # the course's own schema: ids come from the file
        ids = [row.get("id") for row in raw.rows]
        check_unique_ids(raw, ids)
        drops = [chat_row_problem(row) for row in raw.rows]
    else:
        ids = [f"{source}-{stem}-{i + line_offset:05d}" for i in range(len(raw.rows))]
        drops = [type_problem(row, fields) for row in raw.rows]
    todo = [i for i, d in enumerate(drops) if not d]
    out = batch_fn({c: [raw.rows[i].get(c) for i in todo] for c in raw.columns}) if todo else {}
    if todo:
        out.update(_conversation_problems(out))
    for j, i in enumerate(todo):
        drops[i] = out["_drop"][j]
    report = {"file": raw.name, "rows_in": len(raw.rows), "dropped": {}, "examples": {},
              "control_tokens_removed": int(sum(out.get("_ctrl", []))), "answers_capped": int(sum(out.get("_capped", [])))}
    for i, reason in enumerate(drops):
        if reason:
            report["dropped"][reason] = report["dropped"].get(reason, 0) + 1
            examples = report["examples"].setdefault(reason, [])
            if len(examples) < EXAMPLES:
                examples.append(f"{raw.name}:{raw.lines[i] if not hub else i + line_offset}")
    kept = [j for j, i in enumerate(todo) if not drops[i]]
    columns = {"id": [ids[todo[j]] for j in kept], "messages": [out["messages"][j] for j in kept],
               "tags": [list(out["tags"][j] or []) if "tags" in out else [] for j in kept],
               "tools": [out["tools"][j] if "tools" in out else None for j in kept]}
    report["rows_out"] = len(kept)
    return Dataset.from_dict(columns, features=Features({k: FEATURES[k] for k in NORMALIZED})), report


def normalize_cmath(path: str | Path = HUB_IDS["cmath"], *, hub: bool = False) -> tuple[Dataset, dict]:
    """CMATH rows ``{"input" | "question", "golden", …}`` → user question, assistant answer."""
    return _normalize(path, "cmath", cmath_batch, (("input", "question"), ("golden",)), hub=hub, line_offset=1,
                      fields=FIELDS["cmath"])


def normalize_mawps(path: str | Path = HUB_IDS["mawps"], *, hub: bool = False) -> tuple[Dataset, dict]:
    """MAWPS CSV rows: placeholders ``number0``/``N_0`` filled from ``Numbers``; ``504.0`` → ``504``."""
    return _normalize(path, "mawps", mawps_batch, (("Question",), ("Numbers",), ("Answer",)), hub=hub,
                      line_offset=2, fields=FIELDS["mawps"])  # ids: row + 2 (header, 1-based), as on one-line rows


def normalize_emoji(path: str | Path = HUB_IDS["emoji"], *, hub: bool = False) -> tuple[Dataset, dict]:
    """Emoji chat: ``answer_zh`` (else ``answer_en``) or firefly ``prompt``/``chosen``; replies ≤ 3000 chars."""
    def required(columns):
        return (("question",), ("answer_zh", "answer_en")) if "question" in columns else (("prompt",), ("chosen",))

    return _normalize(path, "emoji", emoji_batch, required, hub=hub, line_offset=1, fields=FIELDS["emoji"])


def normalize_chat(path: str | Path, source: str) -> tuple[Dataset, dict]:
    """Course-schema JSONL (``id``, ``messages``, optional ``tags`` and ``tools``): cleaned, arguments as JSON strings."""
    return _normalize(path, source, chat_batch, (("messages",), ("id",)), hub=False, line_offset=1)

# ---------------------------------------------------------------- the course's pools

# pool → (normaliser, local files under data/); json and tool are the course's own schema.
POOLS = {
    "cmath": ("cmath", ["cmath.jsonl", "cmath_question.jsonl"]),
    "mawps": ("mawps", ["mawps.csv", "mawps_seed.csv"]),
    "emoji": ("emoji", ["emoji.jsonl", "emoji_dpo.jsonl"]),
    "json": ("chat", ["json_strict.jsonl"]),
    "tool": ("chat", ["tool_calls.jsonl"]),
}
NORMALIZERS = {"cmath": normalize_cmath, "mawps": normalize_mawps, "emoji": normalize_emoji, "chat": normalize_chat}


def normalize_pool(pool: str, source: str = "local", data_dir: str | Path | None = None) -> tuple[Dataset, dict]:
    """Step 1 for one pool: every file normalised and concatenated; report summed over files."""
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; pools are {list(POOLS)}")
    if source not in ("local", "hub"):
        raise ValueError(f"source must be 'local' or 'hub', got {source!r}")
    kind, files = POOLS[pool]
    if source == "hub" and pool in HUB_IDS:
        parts = [NORMALIZERS[kind](HUB_IDS[pool], hub=True)]
    else:
        folder = Path(data_dir or paths.DATA)
        fn = NORMALIZERS[kind]
        parts = [fn(folder / f, pool) if kind == "chat" else fn(folder / f) for f in files]
    check_ids_across({r["file"]: column(ds, "id") for ds, r in parts})
    digests = {HUB_IDS[pool]: "hub"} if source == "hub" and pool in HUB_IDS else \
        {r["file"]: sha256(Path(folder) / f) for f, (_, r) in zip(files, parts)}
    report = {"files": [r["file"] for _, r in parts], "dropped": {}, "examples": {}, "digests": digests}
    for key in ("rows_in", "rows_out", "control_tokens_removed", "answers_capped"):
        report[key] = sum(r[key] for _, r in parts)
    for _, r in parts:
        for reason, n in r["dropped"].items():
            report["dropped"][reason] = report["dropped"].get(reason, 0) + n
            report["examples"].setdefault(reason, []).extend(r["examples"][reason])
    return concatenate_datasets([ds for ds, _ in parts]), report
