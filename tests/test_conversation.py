"""helpers.conversation: one set of rules, the same message from the mask builder and the pipeline."""
import json

import pytest

import helpers
from helpers import masks
from helpers.conversation import problems
from helpers.data.report import validate

U = {"role": "user", "content": "q"}
A = {"role": "assistant", "content": "a"}
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOLS = json.dumps([{"type": "function", "function": {"name": "f"}}])
ASKS = {"role": "assistant", "content": "", "tool_calls": [CALL]}
ANSWER = {"role": "tool", "tool_call_id": "c1", "content": "1"}

GOOD = {
    "one turn": [U, A],
    "system prompt": [{"role": "system", "content": "s"}, U, A],
    "system turn after an assistant turn": [U, A, {"role": "system", "content": "now in French"}, U, A],
    "two user turns in a row": [U, U, A],
    "answered tool call": [U, ASKS, ANSWER, A],
    "tool call with None content": [U, {**ASKS, "content": None}, ANSWER, A],
    "tool turn without an id": [U, ASKS, {"role": "tool", "content": "1"}, A],
}

BAD = {  # messages, tools, tags → the one problem
    "no list": ("hello", None, None, "messages: must be a non-empty list of messages, got str"),
    "empty": ([], None, None, "messages: must be a non-empty list of messages, got list (empty)"),
    "not a dict": ([U, "a"], None, None, "messages[1]: must be a dict, got str"),
    "unknown role": ([{"role": "bot", "content": "x"}, U, A], None, None,
                     "messages[0].role: 'bot' is not one of ('system', 'user', 'assistant', 'tool')"),
    "assistant first": ([A], None, None, "messages[0].role: the conversation must open with a user turn "
                                         "(after an optional system prompt), got 'assistant'"),
    "content a list": ([{"role": "user", "content": ["q"]}, A], None, None,
                       "messages[0].content: must be a string, got list"),
    "None content without calls": ([U, {"role": "assistant", "content": None}], None, None,
                                   "messages[1].content: must be a string, got NoneType (None is allowed only with tool_calls)"),
    "empty reply": ([U, {"role": "assistant", "content": "  "}], None, None, "messages[1].content: empty assistant reply"),
    "control text": ([U, {"role": "assistant", "content": "a<|im_end|>"}], None, None,
                     "messages[1].content: literal control token '<|im_end|>' (it would become a real control token "
                     "and break the turn boundaries)"),
    "two assistant turns": ([U, A, A], None, None,
                            "messages[2].role: an assistant turn must answer a user or tool turn, got it after 'assistant'"),
    "unanswered call": ([U, ASKS, A], TOOLS, None, "messages[2].role: an assistant turn must answer a user or tool turn, "
                                                   "got it after 'assistant'"),
    "stray tool turn": ([U, A, ANSWER, A], None, None,
                        "messages[2].role: a tool turn must answer an open tool call of the assistant turn before it"),
    "wrong call id": ([U, ASKS, {**ANSWER, "tool_call_id": "c9"}, A], TOOLS, None,
                      "messages[2].tool_call_id: 'c9' answers no open call (open: ['c1'])"),
    "tool not offered": ([U, ASKS, ANSWER, A], None, None,
                         "messages[1].tool_calls[0].function.name: 'f' is not a tool of this conversation (no tools given)"),
    "arguments not JSON": ([U, {**ASKS, "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}, ANSWER, A],
                           TOOLS, None, "messages[1].tool_calls[0].function.arguments: not valid JSON"),
    "tools not a list": ([U, A], '{"name": "f"}', None, "tools: must be a list of tool schemas (JSON objects)"),
    "ends on a user turn": ([U, A, U], None, None, "messages[2].role: the last turn must be an assistant reply, got 'user'"),
    "json-only not JSON": ([U, {"role": "assistant", "content": "{'a': 1}"}], None, ["json-only"],
                           "messages[1].content: a json-only reply must be a JSON object"),
}


@pytest.mark.parametrize("name", GOOD)
def test_valid_conversations_have_no_problems(name):
    assert problems(GOOD[name], TOOLS) == []


@pytest.mark.parametrize("name", BAD)
def test_each_rule_names_the_field(name):
    messages, tools, tags, expected = BAD[name]
    assert problems(messages, tools, tags)[0] == expected


def test_tool_call_left_open_at_the_end():
    assert problems([U, ASKS], TOOLS) == ["messages[1].tool_calls: 1 tool call(s) have no tool turn"]


def test_json_only_accepts_an_object():
    assert problems([U, {"role": "assistant", "content": '{"a": 1}'}], tags=["json-only"]) == []


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", [n for n in BAD if n not in ("no list", "control text", "json-only not JSON")])
def test_mask_builder_and_pipeline_refuse_with_the_same_message(tok, tmp_path, name):
    messages, tools, tags, expected = BAD[name]
    tools_list = json.loads(tools) if isinstance(tools, str) and tools.startswith("[") else tools
    with pytest.raises(masks.MaskError) as err:
        masks.build_labels(tok, messages, tools_list, index=4)
    assert str(err.value) == f"sample 4, {expected}"
    found = validate(_jsonl(tmp_path / "rows.jsonl", [{"id": "r", "messages": messages, "tools": tools}]))
    assert found[0] == f"rows.jsonl:1 id=r: {expected}"


@pytest.mark.parametrize("name", GOOD)
def test_both_accept_what_qwen3_renders_and_the_mask_equals_trl(tok, tiny_model_dir, tmp_path, name):
    rows = [{"messages": GOOD[name], "tools": json.loads(TOOLS)}]
    assert validate(_jsonl(tmp_path / "rows.jsonl", [{"id": "r", **rows[0]}])) == []
    ours = masks.build_many(tok, rows)[0]
    theirs = masks.trl_labels(tok, rows, helpers.load_model(str(tiny_model_dir)), tmp_path / "trl")[0]
    assert ours["input_ids"] == theirs["input_ids"] and ours["labels"] == theirs["labels"]
