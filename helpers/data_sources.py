"""Step 1 of the dataset pipeline: read each raw source and normalise it to ``messages``.

Every ``normalize_*`` function takes a local file (JSONL, CSV or a ``save_to_disk``
folder) or, with ``hub=True``, a Hugging Face dataset id, and returns
``(dataset, report)``: the dataset has the course schema (``FEATURES``) and the
report counts rows in/out, every drop by reason (with the first few row numbers) and
every literal control token removed. Nothing is dropped without being counted.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
from datasets import Dataset, Features, List, Value

from .jsonl import read_jsonl
from .tool_schemas import tools_text

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
# Literal chat-control text: Qwen's <|...|> tokens (and look-alikes such as the seed's
# <|user|>) plus the tag-style tokens Qwen3 adds. Tokenised, they would become real
# control tokens and break turn boundaries, so they are cut out and counted.
CONTROL_TOKEN_RE = re.compile(r"<\|[A-Za-z0-9_]{1,40}\|>|</?(?:think|tool_call|tool_response)>")
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?%?")  # 9, 2.5, 2/6, 12%
_PLACEHOLDER_RE = re.compile(r"\b(?:number|N_)(\d+)\b")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([.,?!;:])")
_EXAMPLES = 5  # row numbers kept per drop reason


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


def format_number(value: Any) -> str | None:
    """``504.0`` → ``504``, ``0.8333333333333334`` → ``0.833333``; fractions/percent kept; else None."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        x = float(text)
    except ValueError:
        return text if NUMBER_RE.fullmatch(text) else None
    if not math.isfinite(x):
        return None
    if x.is_integer():
        return str(int(x))
    return f"{round(x, 6):.6f}".rstrip("0").rstrip(".")


def _turn(role: str, content: str) -> dict:
    return {"role": role, "content": content, "tool_calls": None, "tool_call_id": None}


# ---------------------------------------------------------------- reading raw files

def read_raw(path: str | Path, *, hub: bool = False, split: str = "train") -> Dataset:
    """A raw source as a ``Dataset``: JSONL/JSON, CSV, a ``save_to_disk`` folder, or a hub id."""
    from datasets import load_dataset, load_from_disk

    if hub:
        try:
            return load_dataset(str(path), split=split)
        except Exception as err:  # offline: ConnectionError, DatasetNotFoundError, OSError…
            raise ConnectionError(
                f"could not load {path!r} (split {split!r}) from the Hugging Face Hub: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}\n"
                "Offline? Use SOURCE='local' (the samples in data/), or run once with internet."
            ) from None
    path = Path(path)
    if path.is_dir():
        return load_from_disk(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"raw source {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (an empty pool cannot be normalised)")
    builder = {".jsonl": "json", ".json": "json", ".csv": "csv"}.get(path.suffix.lower())
    if builder is None:
        raise ValueError(f"{path}: unknown file type {path.suffix!r}; use .jsonl, .json, .csv or a save_to_disk folder")
    if builder == "json":
        read_jsonl(path)  # pyarrow's error names neither line nor field
    kwargs = {"keep_default_na": False} if builder == "csv" else {}
    return load_dataset(builder, data_files=str(path), split="train", **kwargs)


def row_lines(path: str | Path) -> list[int] | None:
    """The line each data row of a local JSONL/CSV file starts on (blank lines and quoted
    line breaks counted), so drop reports point at the right line; ``None`` for folders."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.suffix.lower() in (".jsonl", ".json"):  # read_raw has already parsed every line
        with path.open(encoding="utf-8") as f:
            return [line_no for line_no, line in enumerate(f, 1) if line.strip()]
    import csv

    lines, start = [], 1
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        for record in reader:
            if record and any(field.strip() for field in record):  # pandas skips blank lines too
                lines.append(start)
            start = reader.line_num + 1
    return lines[1:]  # the first record is the header


def _require(ds: Dataset, name: str, *groups: tuple[str, ...]) -> None:
    """Each group needs at least one of its columns, else ``ValueError`` naming file and fields."""
    for group in groups:
        if not any(col in ds.column_names for col in group):
            raise ValueError(f"{name}: missing column {' or '.join(repr(c) for c in group)} "
                             f"(columns: {ds.column_names})")


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


def _cmath_batch(batch: dict) -> dict:
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


def _mawps_batch(batch: dict) -> dict:
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


def _emoji_batch(batch: dict) -> dict:
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
        turns = chosen if chosen and chosen[0].get("role") != "assistant" else turns + chosen
        msgs, ctrl = [], 0
        for t in turns:
            text, k = clean_text(t.get("content"))
            msgs.append(_turn(t.get("role"), text))
            ctrl += k
        drop = "" if chosen else "empty chosen"
        if not drop and (msgs[-1]["role"] != "assistant" or not msgs[-1]["content"]):
            drop = "chosen has no final assistant reply"
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


def _chat_batch(batch: dict) -> dict:
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
                          "function": {"name": c["function"]["name"], "arguments": _arguments(c["function"])}}
                         for c in calls]
            msgs.append({"role": m.get("role"), "content": text, "tool_calls": calls,
                         "tool_call_id": m.get("tool_call_id")})
            ctrl += k
        out["messages"].append(msgs)
        out["_drop"].append(bad_tools or ("" if msgs else "no messages"))
        out["_ctrl"].append(ctrl)
    return out


def _arguments(function: dict) -> str:
    args = function.get("arguments")
    return args if isinstance(args, str) else json.dumps(args, ensure_ascii=False, sort_keys=True)


# ---------------------------------------------------------------- public normalisers

def _normalize(path, source: str, batch_fn: Callable, required: tuple, *, hub: bool,
               line_offset: int, id_col: str | None = None) -> tuple[Dataset, dict]:
    raw = read_raw(path, hub=hub, split=HUB_SPLITS.get(source, "train"))
    name = str(path) if hub else _display(Path(path))
    _require(raw, name, *required)
    stem = Path(name).stem if not hub else name.replace("/", "_")
    # a plain list: handing datasets' lazy Column to add_column reads it row by row (9 s per 50k rows)
    ids = column(raw, id_col).tolist() if id_col in raw.column_names else None
    out = raw.map(batch_fn, batched=True, remove_columns=raw.column_names, desc=f"normalize {source}")
    out = out.add_column("id", ids if ids else [f"{source}-{stem}-{i + line_offset:05d}" for i in range(len(out))])
    report = {"file": name, "rows_in": len(raw), "dropped": {}, "examples": {},
              "control_tokens_removed": int(column(out, "_ctrl").sum()),
              "answers_capped": int(column(out, "_capped").sum()) if "_capped" in out.column_names else 0}
    lines = None if hub else row_lines(path)
    if lines is not None and len(lines) != len(raw):
        lines = None  # a layout the line counter does not follow: fall back to row numbers
    for i, reason in enumerate(column(out, "_drop")):
        if reason:
            report["dropped"][reason] = report["dropped"].get(reason, 0) + 1
            report["examples"].setdefault(reason, [])
            if len(report["examples"][reason]) < _EXAMPLES:
                where = f"{name}:{lines[i]}" if lines else f"{name}:{i + line_offset}"
                report["examples"][reason].append(where)
    kept = out.filter(lambda d: not d, input_columns="_drop")
    kept = kept.map(_step1_columns, batched=True, remove_columns=kept.column_names,
                    features=Features({k: FEATURES[k] for k in NORMALIZED}))
    report["rows_out"] = len(kept)
    return kept, report


def _display(path: Path) -> str:
    """A path relative to the project when it is inside it (shorter in reports)."""
    from .paths import PROJECT_ROOT

    try:
        return str(path.resolve().relative_to(PROJECT_ROOT.resolve()))
    except ValueError:
        return str(path)


def _step1_columns(batch: dict) -> dict:
    """Step 1's output columns in a fixed order (casting needs the same order in every pool)."""
    n = len(batch["id"])
    return {"id": batch["id"], "messages": batch["messages"], "tags": batch.get("tags") or [[] for _ in range(n)],
            "tools": batch.get("tools") or [None] * n}


def normalize_cmath(path: str | Path = HUB_IDS["cmath"], *, hub: bool = False) -> tuple[Dataset, dict]:
    """CMATH rows ``{"input" | "question", "golden", …}`` → user question, assistant answer."""
    return _normalize(path, "cmath", _cmath_batch, (("input", "question"), ("golden",)), hub=hub, line_offset=1)


def normalize_mawps(path: str | Path = HUB_IDS["mawps"], *, hub: bool = False) -> tuple[Dataset, dict]:
    """MAWPS CSV rows: placeholders ``number0``/``N_0`` filled from ``Numbers``; ``504.0`` → ``504``."""
    return _normalize(path, "mawps", _mawps_batch, (("Question",), ("Numbers",), ("Answer",)), hub=hub,
                      line_offset=2)  # CSV line = row + 2 (header, 1-based), for one-line rows


def normalize_emoji(path: str | Path = HUB_IDS["emoji"], *, hub: bool = False) -> tuple[Dataset, dict]:
    """Emoji chat: ``answer_zh`` (else ``answer_en``) or firefly ``prompt``/``chosen``; replies ≤ 3000 chars."""
    raw_cols = read_raw(path, hub=hub, split=HUB_SPLITS["emoji"]).column_names
    required = (("question",), ("answer_zh", "answer_en")) if "question" in raw_cols else (("prompt",), ("chosen",))
    return _normalize(path, "emoji", _emoji_batch, required, hub=hub, line_offset=1)


def normalize_chat(path: str | Path, source: str) -> tuple[Dataset, dict]:
    """Course-schema JSONL (``id``, ``messages``, optional ``tags`` and ``tools``): cleaned, arguments as JSON strings."""
    return _normalize(path, source, _chat_batch, (("messages",),), hub=False, line_offset=1, id_col="id")
