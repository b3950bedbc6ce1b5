"""What a valid training conversation is: the one set of rules the course checks data with.

``problems`` lists everything wrong with one conversation, each problem prefixed by the
field it is about (``messages[2].role: …``), and returns ``[]`` for a good one. The mask
builder (``helpers.masks``) raises on the first problem; the dataset pipeline counts and
drops rows by them. The rules follow what Qwen3's chat template renders and what SFT needs:

* ``messages`` is a non-empty list of dicts; each ``role`` is system, user, assistant or tool;
* ``content`` is a string (an assistant turn that calls tools may have ``None``), without
  literal control-token text such as ``<|im_end|>`` (it would become a real control token);
* system turns may stand anywhere (the template renders a later one as its own turn);
  the first other turn is a user turn;
* an assistant turn answers a user or tool turn and says something or calls a tool;
* tool calls name a function of the row's ``tools`` with JSON arguments; each is answered
  by one tool turn (matching its ``tool_call_id`` when given) before the next user or
  assistant turn; a tool turn answers an open call;
* the last turn is an assistant reply; a ``json-only`` row's last reply is a JSON object.

    >>> problems([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    []
    >>> problems([{"role": "user", "content": "hi"}])
    ["messages[0].role: the last turn must be an assistant reply, got 'user'"]
"""
from __future__ import annotations

import json
import re
from typing import Any

from .tool_schemas import parse_tools

ROLES = ("system", "user", "assistant", "tool")
# Literal chat-control text: Qwen's <|...|> tokens (and look-alikes such as the seed's <|user|>)
# plus the tag-style tokens Qwen3 adds. Tokenised, they become real control tokens.
CONTROL_TOKEN_RE = re.compile(r"<\|[A-Za-z0-9_]{1,40}\|>|</?(?:think|tool_call|tool_response)>")
JSON_ONLY_TAG = "json-only"


def tool_names(tools: Any) -> set[str]:
    """Function names offered by ``tools`` (a list of schemas or its JSON text).

    >>> tool_names('[{"type": "function", "function": {"name": "get_weather"}}]')
    {'get_weather'}
    """
    return {(t.get("function") or t).get("name") for t in parse_tools(tools) or []}


def _call_problems(at: str, calls: Any, offered: set[str] | None) -> list[str]:
    if not isinstance(calls, (list, tuple)) or not calls:
        return [f"{at}.tool_calls: must be a non-empty list"]
    found = []
    for j, call in enumerate(calls):
        fn = call.get("function", call) if isinstance(call, dict) else None
        where = f"{at}.tool_calls[{j}].function"
        if isinstance(call, dict) and not isinstance(call.get("id"), (str, type(None))):
            found.append(f"{at}.tool_calls[{j}].id: must be a string, got {type(call['id']).__name__}")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            found.append(f"{where}.name: must be a string")
            continue
        args = fn.get("arguments")
        if isinstance(args, str):
            try:
                json.loads(args)
            except json.JSONDecodeError:
                found.append(f"{where}.arguments: not valid JSON")
        elif not isinstance(args, dict):
            found.append(f"{where}.arguments: must be a dict or a JSON string, got {type(args).__name__}")
        if offered is not None and fn["name"] not in offered:
            found.append(f"{where}.name: {fn['name']!r} is not a tool of this conversation "
                         f"({sorted(offered) or 'no tools given'})")
    return found


def _turn_problems(k: int, m: dict, prev: str | None, open_calls: list, offered, control_text: bool) -> list[str]:
    at = f"messages[{k}]"
    role, content, calls = m.get("role"), m.get("content"), m.get("tool_calls")
    found = []
    if role != "assistant" and calls:
        found.append(f"{at}.tool_calls: only an assistant turn may call tools")
    if isinstance(content, str):
        if control_text and (hit := CONTROL_TOKEN_RE.search(content)):
            found.append(f"{at}.content: literal control token {hit.group()!r} (it would become a real "
                         "control token and break the turn boundaries)")
        if role == "assistant" and not content.strip() and not calls:
            found.append(f"{at}.content: empty assistant reply")
    elif not (content is None and role == "assistant" and calls):
        found.append(f"{at}.content: must be a string, got {type(content).__name__}"
                     + (" (None is allowed only with tool_calls)" if role == "assistant" else ""))
    if role == "assistant":
        if calls:
            found += _call_problems(at, calls, offered)
        if prev not in ("user", "tool"):
            found.append(f"{at}.role: an assistant turn must answer a user or tool turn, got it after "
                         f"{prev or 'the start'!r}")
    if not isinstance(m.get("tool_call_id"), (str, type(None))):
        found.append(f"{at}.tool_call_id: must be a string, got {type(m['tool_call_id']).__name__}")
    elif role == "tool" and not open_calls:
        found.append(f"{at}.role: a tool turn must answer an open tool call of the assistant turn before it")
    elif role == "tool" and m.get("tool_call_id") is not None:
        ids = [c for c in open_calls if c is not None]
        if ids and m["tool_call_id"] not in ids:
            found.append(f"{at}.tool_call_id: {m['tool_call_id']!r} answers no open call (open: {ids})")
    if role in ("user", "assistant") and open_calls:
        found.append(f"{at}.role: {len(open_calls)} tool call(s) of the assistant turn before have no tool turn")
    return found


def problems(messages: Any, tools: Any = None, tags: Any = None, *, control_text: bool = True) -> list[str]:
    """Every problem of one conversation as ``"<field>: <what is wrong>"``; ``[]`` when valid.

    ``tools`` is the row's tool schemas (a list or its JSON text; calls must name one of them);
    ``tags`` containing ``"json-only"`` requires the last reply to be a JSON object;
    ``control_text=False`` skips the literal-control-token check (``helpers.masks`` labels such
    text exactly as TRL does; cleaning it out is the dataset pipeline's job).
    """
    if not isinstance(messages, (list, tuple)) or not messages:
        return [f"messages: must be a non-empty list of messages, got {type(messages).__name__}"
                + (" (empty)" if isinstance(messages, (list, tuple)) else "")]
    found = []
    try:
        offered = tool_names(tools)
    except ValueError as err:  # its message names the field: "tools: …"
        found.append(str(err))
        offered = None
    prev, open_calls = None, []
    for k, m in enumerate(messages):
        if not isinstance(m, dict):
            found.append(f"messages[{k}]: must be a dict, got {type(m).__name__}")
            continue
        role = m.get("role")
        if role not in ROLES:
            found.append(f"messages[{k}].role: {role!r} is not one of {ROLES}")
            continue
        if role != "system" and prev is None and role != "user":
            found.append(f"messages[{k}].role: the conversation must open with a user turn "
                         f"(after an optional system prompt), got {role!r}")
        else:
            found += _turn_problems(k, m, prev, open_calls, offered, control_text)
        if role == "tool" and open_calls:
            tid = m.get("tool_call_id")
            open_calls.remove(tid if tid in open_calls else open_calls[0])
        elif role in ("user", "assistant"):
            open_calls = [c.get("id") if isinstance(c, dict) else None for c in m.get("tool_calls") or []] \
                if role == "assistant" and isinstance(m.get("tool_calls"), (list, tuple)) else []
        if role != "system":
            prev = role
    if open_calls and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        found.append(f"messages[{len(messages) - 1}].tool_calls: {len(open_calls)} tool call(s) have no tool turn")
    last = messages[-1]
    if isinstance(last, dict) and last.get("role") in ROLES and last.get("role") != "assistant":
        found.append(f"messages[{len(messages) - 1}].role: the last turn must be an assistant reply, "
                     f"got {last.get('role')!r}")
    elif tags and JSON_ONLY_TAG in tags and isinstance(last, dict) and isinstance(last.get("content"), str):
        try:
            ok = isinstance(json.loads(last["content"]), dict)
        except json.JSONDecodeError:
            ok = False
        if not ok:
            found.append(f"messages[{len(messages) - 1}].content: a json-only reply must be a JSON object")
    return found
