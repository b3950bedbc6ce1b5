"""The training data notebook 05 uses: the dataset pipeline's splits when present.

``course_splits()`` returns ``helpers.data.load_splits()`` (notebook 04's mixed
``train``/``validation``) when that module exists, else a small built-in mix of the same
schema (``id``, ``messages``, ``source``, ``tags``): general chat from the fixture's corpus
generator (a different seed from pre-training) plus strict-JSON samples, so the course and
its tests run before, or without, the pipeline.
"""
from __future__ import annotations

import json
import random
import warnings

# key -> (type name shown in the prompt, value maker)
_KEYS = {
    "name": ("string", lambda r: r.choice(["Alice", "Bob", "Carol", "Dave", "Eve", "Li Lei", "Han Mei", "Omar"])),
    "city": ("string", lambda r: r.choice(["Paris", "Tokyo", "Beijing", "Berlin", "Lima", "Cairo", "Oslo"])),
    "color": ("string", lambda r: r.choice(["red", "blue", "green", "yellow", "black", "white"])),
    "item": ("string", lambda r: r.choice(["apple", "book", "pencil", "lamp", "chair", "cup"])),
    "score": ("number", lambda r: round(r.uniform(0, 100), 1)),
    "price": ("number", lambda r: round(r.uniform(1, 500), 2)),
    "age": ("integer", lambda r: r.randint(1, 90)),
    "count": ("integer", lambda r: r.randint(0, 999)),
    "active": ("boolean", lambda r: r.random() < 0.5),
}


def json_sample(rng: random.Random, idx: int) -> dict:
    """One strict-JSON sample: the prompt names 2–4 keys with values; the reply is only the object."""
    keys = rng.sample(sorted(_KEYS), rng.randint(2, 4))
    obj = {k: _KEYS[k][1](rng) for k in keys}
    shown = ", ".join(f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in obj.items())
    if rng.random() < 0.7:
        fields = ", ".join(f"{k} ({_KEYS[k][0]})" for k in keys[:-1]) + f" and {keys[-1]} ({_KEYS[keys[-1]][0]})"
        prompt = f"Output only a JSON object with {fields}. {shown}. No other text."
        tags = ["json-only", "strict", "en"]
    else:
        fields = "、".join(f"{k}({_KEYS[k][0]})" for k in keys)
        prompt = f"仅输出一个JSON对象，含 {fields}。{shown}。不得输出额外文本。"
        tags = ["json-only", "strict", "zh"]
    reply = json.dumps(obj, ensure_ascii=False)
    return {"id": f"json-{idx:05d}", "messages": [{"role": "user", "content": prompt},
            {"role": "assistant", "content": reply}], "source": "json", "tags": tags}


def builtin_splits(n_chat: int = 600, n_json: int = 300, n_val: int = 100, seed: int = 7):
    """A small ``DatasetDict`` (train/validation) of general chat + strict JSON; same seed, same data."""
    from datasets import Dataset, DatasetDict

    from .fixtures.corpus import make_corpus

    rng = random.Random(seed)
    chats = [{"id": f"chat-{i:05d}", "messages": m, "source": "chat", "tags": ["chat"]}
             for i, m in enumerate(make_corpus(n_chat, seed=seed + 1000))]
    rows = chats + [json_sample(rng, i) for i in range(n_json)]
    rng.shuffle(rows)
    n_val = min(n_val, len(rows) // 5)
    return DatasetDict(train=Dataset.from_list(rows[n_val:]), validation=Dataset.from_list(rows[:n_val]))


def course_splits(path=None, log=print):
    """The mixed train/validation splits: the pipeline's (``helpers.data``) if installed, else built-in."""
    try:
        from .data import load_splits
    except ImportError:
        warnings.warn("helpers.data is not available yet: using the small built-in chat + JSON mix")
        log("data: built-in mix (helpers.data.load_splits not found)")
        return builtin_splits()
    splits = load_splits(path)
    missing = {"train", "validation"} - set(splits)
    if missing:
        raise ValueError(f"load_splits() returned splits {sorted(splits)}; missing {sorted(missing)}")
    log(f"data: dataset pipeline ({len(splits['train'])} train / {len(splits['validation'])} validation rows)")
    return splits
