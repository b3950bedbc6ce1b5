"""The exercise registry behind ``helpers.check``: register a judge, ask it, print its feedback.

    @exercise("05.3", "Predict …?", "hint", given=lambda: {...})   # given is optional
    def _ex05_3(value):
        return value == truth, "feedback"

An unanswered exercise (``None``) prints its hint and returns False without raising, so
the notebooks still run headless.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Exercise:
    question: str
    hint: str
    judge: Callable[[Any], tuple[bool, str]]   # (correct?, feedback for this answer)
    given: Callable[[], Any] | None = None     # the input the question is about, if the notebook lacks it


EXERCISES: dict[str, Exercise] = {}


def exercise(key: str, question: str, hint: str, given: Callable[[], Any] | None = None):
    """Register ``judge(answer) -> (ok, feedback)`` as exercise ``key`` (``given`` supplies its input)."""
    def register(judge):
        EXERCISES[key] = Exercise(question, hint, judge, given)
        return judge
    return register


def near(value: Any, truth: float) -> bool:
    """True when ``value`` is a number within 0.006 of ``truth``: an answer given to 2 decimals.

    >>> near(0.96, 0.9612), near("0.96", 0.9612), near(0.9, 0.9612)
    (True, False, False)
    """
    return isinstance(value, (int, float)) and abs(value - truth) < 0.006


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


def given(key: str) -> Any:
    """The input exercise ``key`` works on (a conversation, a config …), built fresh."""
    if EXERCISES[key].given is None:
        raise KeyError(f"exercise {key} works on what its notebook shows; it has no given input")
    return EXERCISES[key].given()
