"""Chat templates: render ``messages`` to the exact text the model sees (notebook 01).

The templates are the real ones shipped inside TRL (read at run time, never copied):
``qwen3_instruct_2507`` (the model the course trains: no thinking mode) and ``qwen3``
(the hybrid thinking template with ``enable_thinking`` and ``reasoning_content``).
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from . import paths
from .tiny_qwen3.tokenizer import trl_template
from .tool_schemas import tools_list
from .jsonl import read_jsonl

INSTRUCT_2507 = "qwen3_instruct_2507"
HYBRID = "qwen3"
_TURN = re.compile(r"<\|im_start\|>(\w+)\n(.*?)(<\|im_end\|>\n?|$)", re.S)
# Rendered turns only ever carry these roles: a `tool` message becomes text inside a user turn.
ROLE_COLOURS = {"system": "#e8e8e8", "user": "#dbeafe", "assistant": "#dcfce7"}


def load_examples(path: str | Path | None = None) -> dict[str, dict]:
    """The seed's examples from ``data/examples.jsonl``, keyed by id."""
    path = Path(path or paths.DATA / "examples.jsonl")
    rows = {}
    for lineno, row in read_jsonl(path):
        if "id" not in row or "messages" not in row:
            raise ValueError(f"{path}:{lineno}: a row needs 'id' and 'messages'")
        rows[row["id"]] = row
    return rows


def render(tok, example: dict | list, add_generation_prompt: bool = False, **kwargs: Any) -> str:
    """Text of one example (a row with ``messages``/``tools`` or a bare message list)."""
    messages, tools = _unpack(example)
    return tok.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs
    )


def render_with_jinja(template: str, example: dict | list, add_generation_prompt: bool = False,
                      **kwargs: Any) -> str:
    """Render a template file straight with jinja2, as transformers configures it.

    An independent check of ``apply_chat_template``: same environment flags
    (trim/lstrip blocks, loop controls) and the same ``tojson`` (UTF-8, no HTML escaping).
    """
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = lambda msg: (_ for _ in ()).throw(ValueError(msg))
    messages, tools = _unpack(example)
    return env.from_string(template).render(
        messages=messages, tools=tools, add_generation_prompt=add_generation_prompt, **kwargs)


def template_source(name: str = INSTRUCT_2507) -> str:
    """The Jinja source of a TRL-shipped template."""
    return trl_template(name)


def turns(text: str) -> list[dict]:
    """Split rendered text into turns: role, character span and body (for display only)."""
    return [
        {"role": m.group(1), "start": m.start(), "end": m.end(), "body": m.group(2)}
        for m in _TURN.finditer(text)
    ]


def turns_html(text: str) -> str:
    """HTML of rendered text with each turn shaded by role and control tokens in bold."""
    out, pos, found = [], 0, turns(text)
    for t in found:
        out.append(html.escape(text[pos:t["start"]]))
        chunk = html.escape(text[t["start"]:t["end"]])
        chunk = re.sub(r"(&lt;\|im_(?:start|end)\|&gt;|&lt;/?(?:think|tool_call|tool_response)&gt;)",
                       r"<b style='color:#b91c1c'>\1</b>", chunk)
        colour = ROLE_COLOURS.get(t["role"], "#f5f5f5")
        out.append(f"<span style='background:{colour}' title='{t['role']} "
                   f"chars {t['start']}–{t['end']}'>{chunk}</span>")
        pos = t["end"]
    out.append(html.escape(text[pos:]))
    present = {t["role"] for t in found}   # the legend names only colours that appear
    legend = " ".join(f"<span style='background:{c};padding:0 4px'>{r}</span>"
                      for r, c in ROLE_COLOURS.items() if r in present)
    return (f"<div style='font-size:90%'>{legend}</div><pre style='white-space:pre-wrap;"
            f"font-family:monospace;line-height:1.5'>{''.join(out)}</pre>")


def parallel_tool_calls() -> list[dict]:
    """A conversation whose one assistant turn calls two tools; two ``tool`` messages answer."""
    def call(i: int, city: str) -> dict:
        return {"type": "function", "id": f"call_{i}",
                "function": {"name": "get_weather", "arguments": {"city": city, "day": "tomorrow"}}}
    return [{"role": "user", "content": "明天 Edmonton 和 Calgary 天气？"},
            {"role": "assistant", "content": "", "tool_calls": [call(1, "Edmonton"), call(2, "Calgary")]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c":12,"condition":"Cloudy"}'},
            {"role": "tool", "tool_call_id": "call_2", "content": '{"temp_c":9,"condition":"Rain"}'},
            {"role": "assistant", "content": "Edmonton 多云 12°C，Calgary 有雨 9°C。"}]


def _unpack(example: dict | list) -> tuple[list, list | None]:
    if isinstance(example, list):
        return example, None
    return example["messages"], tools_list(example)
