"""Special tokens (notebook 02): the table, eos/pad, and literal control text in data."""
from __future__ import annotations

from typing import Any

ROLE_WORDS = ("system", "user", "assistant", "tool")


def special_token_table(tok) -> list[dict]:
    """Every added token with its id, ``special`` flag and the role it plays (eos, pad, …)."""
    roles = {tok.eos_token: "eos", tok.pad_token: "pad"}
    if tok.bos_token:
        roles[tok.bos_token] = "bos"
    rows = []
    for idx, added in sorted(tok.added_tokens_decoder.items()):
        rows.append({"id": idx, "token": added.content, "special": added.special,
                     "role": roles.get(added.content, "")})
    return rows


def control_tokens(tok) -> list[str]:
    """Added tokens that must never appear as literal text in a dataset."""
    return [a.content for a in tok.added_tokens_decoder.values()]


def find_control_text(text: str, tok) -> list[tuple[int, str]]:
    """(character offset, token) for each literal control token inside ``text``."""
    hits = []
    for token in control_tokens(tok):
        start = text.find(token)
        while start != -1:
            hits.append((start, token))
            start = text.find(token, start + 1)
    return sorted(hits)


def encode_pieces(tok, text: str, **kwargs: Any) -> list[tuple[int, str]]:
    """(id, token text) pairs, to see how a string is cut."""
    ids = tok(text, add_special_tokens=False, **kwargs)["input_ids"]
    return [(i, tok.decode([i])) for i in ids]


def stop_labels_kept(tok, pad_token: str | None = None) -> dict:
    """How many end-of-turn labels survive a padding collator, with pad as given.

    Uses transformers' ``DataCollatorForLanguageModeling`` (it sets label -100 wherever
    ``input_ids == pad_token_id``): with ``pad == eos`` every ``<|im_end|>`` label is
    erased and the model never learns to stop.
    """
    import copy

    from transformers import DataCollatorForLanguageModeling

    t = copy.deepcopy(tok)
    if pad_token is not None:
        t.pad_token = pad_token
    rows = [
        t.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                              tokenize=True, return_dict=True)
        for q, a in [("Hi", "Hello!"), ("2+3?", "5"), ("Thanks", "You're welcome!")]
    ]
    batch = DataCollatorForLanguageModeling(t, mlm=False)([{"input_ids": r["input_ids"]} for r in rows])
    eos = t.convert_tokens_to_ids(t.eos_token)
    in_input = int((batch["input_ids"] == eos).sum())
    in_labels = int((batch["labels"] == eos).sum())
    return {"pad_token": t.pad_token, "eos_token": t.eos_token, "eos_in_inputs": in_input,
            "eos_labels_trained": in_labels}
