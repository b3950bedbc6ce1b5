"""Scoring one reply: math answers, format leaks, and the general-chat rows of the forgetting check."""
from fractions import Fraction

import pytest

from helpers import evaluate as ev, scoring


@pytest.mark.parametrize("reply, golden, right", [
    ("43", "43", True),
    ("The answer is 43.", "43", True),
    ("51+28=79，所以答案是79。", "79", True),
    ("8/9", "0.888889", True),            # a fraction and its rounded decimal are one answer
    ("2.50", "2.5", True),
    ("1,024", "1024", True),
    ("50%", "0.5", True),
    ("42", "43", False),
    ("43 apples, no wait, 44", "43", False),  # the last number is the answer
    ("forty-three", "43", False),
    ("", "43", False),
])
def test_math_correct_compares_numbers_not_strings(reply, golden, right):
    assert scoring.math_correct(reply, golden) is right


def test_number_value_reads_the_last_number_exactly():
    assert scoring.number_value("3 + 4 = 7") == 7
    assert scoring.number_value("每人 2/6 块") == Fraction(1, 3)
    assert scoring.number_value("no digits here") is None


@pytest.mark.parametrize("reply, leak", [
    ('Paris.", "price": 200.55}', True),
    ('{"name": "Ann"}', True),
    ('Sure! "score": 93', True),
    ("Paris.", False),
    ("I like {curly} braces and \"quotes\".", False),
    ("你好！😊", False),
])
def test_json_leak_finds_json_syntax_in_plain_text(reply, leak):
    assert scoring.json_leak(reply) is leak


def test_general_chat_set_is_deterministic_tagged_and_held_out():
    rows = ev.general_chat_set(40)
    assert rows == ev.general_chat_set(40)
    assert rows != ev.general_chat_set(40, seed=1)
    kinds = {r["tags"][1] for r in rows}
    assert kinds == {"chat", "fact", "math"}
    for r in rows:
        assert r["source"] == "general" and r["tags"][0] == "general"
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
        if "math" in r["tags"]:
            assert scoring.number_value(r["messages"][1]["content"]) is not None
    assert all("{" not in r["messages"][1]["content"] for r in rows)  # nothing in it asks for JSON


def _record(source, tags, **scores):
    return {"source": source, "tags": tags, "nll": 1.0, "tokens": 1, "usable": True,
            **{c: True for c in ev.CRITERIA}, **scores}


def test_summarize_scores_each_metric_on_its_own_rows_and_keeps_general_out_of_all():
    records = [
        _record("cmath", ["math"], exact_match=True, json_leak=False),
        _record("mawps", ["math"], exact_match=False, json_leak=True),
        _record("json", ["json-only"], json_valid=True, json_keys=False, json_repeats_key=False),
        _record("general", ["general", "math"], exact_match=False, json_leak=True),
    ]
    got = {(r["metric"], r["bucket"]): (r["n"], r["value"]) for r in ev.summarize(records)}
    assert got[("exact_match", "all")] == (2, 0.5)
    assert got[("json_leak", "all")] == (2, 0.5)        # the JSON row is not scored for leaks
    assert got[("json_keys", "all")] == (1, 0.0)
    assert got[("exact_match", "forgetting")] == (1, 0.0)
    assert got[("json_leak", "forgetting")] == (1, 1.0)
    assert got[("usable", "all")][0] == 3                # the general row counts under forgetting only
    assert got[("json_valid", "forgetting")] == (0, None)


def test_spread_rows_takes_every_source_in_turn():
    rows = [{"source": s, "i": i} for i, s in enumerate("aaaabbc")]
    picked = ev.spread_rows(rows, 5)
    assert [r["source"] for r in picked] == ["a", "b", "c", "a", "b"]
    assert len(ev.spread_rows(rows, 100)) == len(rows)
