"""A row's ``tools``: the JSON text the dataset stores (TRL's SFTTrainer parses it) and the list
``apply_chat_template`` takes. Plain ``json`` only, so the light modules can import it."""
from __future__ import annotations

import json
from typing import Any


def parse_tools(tools: Any) -> list[dict] | None:
    """A row's tool schemas as a list (None when it has none), from the list or its JSON text;
    ``ValueError`` if they are not a list of dicts."""
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as err:
            raise ValueError(f"tools: not valid JSON ({err.msg})") from None
    if not tools:
        return None
    if not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise ValueError("tools: must be a list of tool schemas (JSON objects)")
    return tools


def tools_text(tools: Any) -> str | None:
    """A row's tool schemas as JSON text (None when it has none); ``ValueError`` as ``parse_tools``.

    Drops the ``None`` fields Arrow adds when it unifies differently shaped schemas of several
    rows into one struct type.
    """
    tools = parse_tools(tools)
    return None if tools is None else json.dumps(_without_nulls(tools), ensure_ascii=False)


def tools_list(row_or_tools: Any) -> list[dict] | None:
    """A row's tool schemas as a list (the dataset keeps them as JSON text), or None."""
    tools = row_or_tools.get("tools") if isinstance(row_or_tools, dict) else row_or_tools
    return json.loads(tools) if isinstance(tools, str) else tools or None


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
