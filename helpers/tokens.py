"""Special tokens (notebook 02): the table, eos/pad, and literal control text in data."""
from __future__ import annotations

from typing import Any

ROLE_WORDS = ("system", "user", "assistant", "tool")


# What each of Qwen3's 26 added tokens is for. There are no <|extra_N|> tokens (Qwen v1 reserved
# those); the vision, fill-in-the-middle and repository tokens are shared by the
# whole family, so a text-only chat model carries them unused.
TOKEN_PURPOSE = {
    "<|endoftext|>": "end of a document in pre-training; the pad token of the chat models (not their eos)",
    "<|im_start|>": "opens a turn; the role follows as plain text",
    "<|im_end|>": "closes a turn; the chat models' eos: generation stops here",
    "<|object_ref_start|>": "Qwen-VL grounding: wraps the phrase that names an object",
    "<|object_ref_end|>": "Qwen-VL grounding: closes the object phrase",
    "<|box_start|>": "Qwen-VL grounding: opens a bounding box's coordinates",
    "<|box_end|>": "Qwen-VL grounding: closes the bounding box",
    "<|quad_start|>": "Qwen-VL: opens a four-point region (e.g. a line of text in OCR)",
    "<|quad_end|>": "Qwen-VL: closes the four-point region",
    "<|vision_start|>": "Qwen-VL: opens an image or video",
    "<|vision_end|>": "Qwen-VL: closes the image or video",
    "<|vision_pad|>": "Qwen-VL placeholder; unsloth's uploads use it as pad",
    "<|image_pad|>": "Qwen-VL: one slot per image patch embedding",
    "<|video_pad|>": "Qwen-VL: one slot per video patch embedding",
    "<tool_call>": "opens a tool call (JSON name + arguments); not special, so it survives decoding",
    "</tool_call>": "closes the tool call",
    "<|fim_prefix|>": "fill-in-the-middle (code completion): the code before the gap",
    "<|fim_middle|>": "fill-in-the-middle: the model writes the gap after it",
    "<|fim_suffix|>": "fill-in-the-middle: the code after the gap",
    "<|fim_pad|>": "fill-in-the-middle padding",
    "<|repo_name|>": "repository-level code pre-training: the repository's name",
    "<|file_sep|>": "repository-level code pre-training: starts the next file",
    "<tool_response>": "wraps a tool's result inside a user turn",
    "</tool_response>": "closes the tool result",
    "<think>": "opens the reasoning block of thinking models (unused by Instruct-2507)",
    "</think>": "closes the reasoning block",
}


def special_token_table(tok) -> list[dict]:
    """Every added token with its id, ``special`` flag, the role it plays (eos, pad, …) and its purpose."""
    roles = {tok.eos_token: "eos", tok.pad_token: "pad"}
    if tok.bos_token:
        roles[tok.bos_token] = "bos"
    rows = []
    for idx, added in sorted(tok.added_tokens_decoder.items()):
        rows.append({"id": idx, "token": added.content, "special": added.special,
                     "role": roles.get(added.content, ""), "what it is": TOKEN_PURPOSE.get(added.content, "")})
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


COLLATORS = ("transformers", "trl")
_CHATS = [("Hi", "Hello!"), ("2+3?", "5"), ("Thanks", "You're welcome!")]


def stop_labels_kept(tok, pad_token: str | None = None, collator: str = "transformers") -> dict:
    """How many end-of-turn labels of three short chats survive a padding collator, with pad as given.

    ``"transformers"``: ``DataCollatorForLanguageModeling`` sets label -100 wherever
    ``input_ids == pad_token_id``, so with ``pad == eos`` every ``<|im_end|>`` label is erased
    (and any other token used as pad loses its labels too). ``"trl"``: TRL's collator pads the
    labels with -100 by length, whatever the pad id, so it keeps them all.
    ``real_labels_masked`` counts labels lost inside the chats (padding excluded).
    """
    import copy

    t = copy.deepcopy(tok)
    if pad_token is not None:
        t.pad_token = pad_token
    rows = [t.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                  tokenize=True, return_dict=True)["input_ids"] for q, a in _CHATS]
    if collator == "transformers":
        from transformers import DataCollatorForLanguageModeling

        batch = DataCollatorForLanguageModeling(t, mlm=False)([{"input_ids": r} for r in rows])
    elif collator == "trl":
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        batch = DataCollatorForLanguageModeling(pad_token_id=t.pad_token_id)([{"input_ids": r} for r in rows])
    else:
        raise ValueError(f"collator={collator!r} is not one of {COLLATORS}")
    eos = t.convert_tokens_to_ids(t.eos_token)
    real = sum(len(r) for r in rows)
    in_input = sum(r.count(eos) for r in rows)
    in_chats = batch["attention_mask"].bool()   # either padding side: the chats' own positions
    kept = batch["labels"][in_chats].tolist()
    return {"collator": collator, "pad_token": t.pad_token, "eos_token": t.eos_token, "eos_in_inputs": in_input,
            "eos_labels_trained": kept.count(eos), "real_labels_masked": real - sum(lab != -100 for lab in kept)}
