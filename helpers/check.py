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
    from . import load_tokenizer

    return load_tokenizer("tiny-qwen3")


# ----------------------------------------------------------------------------- 01
@exercise("01.1", "Which exact string does add_generation_prompt=True append to a conversation?",
          "render a prompt with and without it and compare the tails (section 1).")
def _ex01_1(value):
    from . import templates

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
    from . import templates

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
    from . import tokens

    tok = _tok()
    truth = tokens.stop_labels_kept(tok, pad_token=tok.eos_token)["eos_labels_trained"]
    if value == truth:
        return True, "right: every stop label is masked, so the model never learns to stop."
    return False, f"{value!r} is not what the collator keeps."
