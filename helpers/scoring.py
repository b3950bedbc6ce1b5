"""How one reply is scored (notebook 06): usability, JSON format, math answers, format leaks.

    >>> math_correct("The answer is 43.", "43"), math_correct("8/9", "0.888889"), math_correct("42", "43")
    (True, True, False)
    >>> json_leak('Paris.", "price": 200.55}'), json_leak("Paris.")
    (True, False)

Each function scores one reply against what the prompt asked; ``helpers.evaluate`` applies
them to every validation row and averages them per bucket.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from fractions import Fraction
from typing import Any, Iterable

from .numbers import NUMBER_RE

CRITERIA = ("non_empty", "stopped", "no_repetition", "no_control_leak", "language")
JSON_TAG = "json-only"
MATH_TAG = "math"
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_JSON_SYNTAX = re.compile(r'[{,]\s*"[^"\n]{1,40}"\s*:|"\s*:\s*[-\d"\[{tfn]|\{\s*"')  # {"key": / , "key": / ": 1


def language_of(text: str) -> str | None:
    """``"zh"`` if the text has Chinese characters, ``"en"`` if Latin letters only, else None."""
    if _CJK.search(text):
        return "zh"
    return "en" if _LATIN.search(text) else None


def usability(reply: str, stopped: bool, prompt: str, tok, tags: Iterable[str] = (),
              token_ids: list[int] | None = None) -> dict[str, bool]:
    """Each usability criterion for one reply (see ``helpers.evaluate``) and ``usable``, all of them."""
    ids = token_ids if token_ids is not None else tok.encode(reply, add_special_tokens=False)
    grams = Counter(tuple(ids[i:i + 4]) for i in range(len(ids) - 3))
    control = [a.content for a in tok.added_tokens_decoder.values()]
    want, got = language_of(prompt), language_of(reply)
    checks = {
        "non_empty": bool(reply.strip()),
        "stopped": bool(stopped),
        "no_repetition": max(grams.values(), default=0) < 4,
        "no_control_leak": not any(c in reply for c in control),
        "language": JSON_TAG in tags or got is None or want is None or got == want,
    }
    checks["usable"] = all(checks[c] for c in CRITERIA)
    return checks


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def _same_type(got: Any, want: Any) -> bool:
    """Same JSON type; where the reference holds an integer, the reply must too."""
    if _json_type(got) != _json_type(want):
        return False
    return not (isinstance(want, int) and not isinstance(want, bool) and not isinstance(got, int))


def json_check(reply: str, reference: str) -> dict[str, bool]:
    """``json_valid``: the whole reply parses to an object; ``json_keys``: the reference's keys, once, typed.

    >>> json_check('{"name": "Bo", "age": "7"}', '{"name": "Al", "age": 3}')["json_keys"]
    False
    """
    repeated = []

    def no_silent_overwrite(pairs):
        names = [k for k, _ in pairs]
        repeated.extend(k for k in set(names) if names.count(k) > 1)
        return dict(pairs)

    try:
        got = json.loads(reply, object_pairs_hook=no_silent_overwrite)
    except ValueError:
        got = None
    if not isinstance(got, dict):
        return {"json_valid": False, "json_keys": False, "json_repeats_key": False}
    want = json.loads(reference)
    keys = not repeated and isinstance(want, dict) and all(k in got and _same_type(got[k], v) for k, v in want.items())
    return {"json_valid": True, "json_keys": bool(keys), "json_repeats_key": bool(repeated)}


def number_value(text: str) -> Fraction | None:
    """The last number in ``text`` as an exact fraction (``2.5``, ``8/9``, ``12%``), or None.

    >>> number_value("所以答案是 8/9。"), number_value("no digits")
    (Fraction(8, 9), None)
    """
    found = NUMBER_RE.findall(text.replace(",", ""))
    if not found:
        return None
    last = found[-1]
    percent = last.endswith("%")
    try:
        value = Fraction(last.rstrip("%"))
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def math_correct(reply: str, golden: str, tolerance: float = 1e-4) -> bool:
    """The reply's last number equals the golden answer's (relative ``tolerance``: ``0.888889`` = ``8/9``)."""
    got, want = number_value(reply), number_value(golden)
    if got is None or want is None:
        return False
    return abs(got - want) <= tolerance * max(1, abs(want))


def json_leak(reply: str) -> bool:
    """The reply carries JSON syntax (``{"``, ``"key":``, ``": 1``): a format leak where plain text was asked."""
    return bool(_JSON_SYNTAX.search(reply))
