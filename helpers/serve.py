"""Serving (notebook 07): vLLM command lines and a small OpenAI-compatible client.

The commands are text to copy into a terminal on a GPU machine (the course never
starts a server in the background). ``probe`` asks a URL whether an OpenAI-compatible
server answers; ``chat`` sends one chat completion to it.
"""
from __future__ import annotations

import json
import shlex
import urllib.error
import urllib.request
from pathlib import Path

VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # values vLLM accepts for --max-lora-rank
# The seed's settings for a 16 GB RTX 4080 (section 3.1): peak use, not what every request needs.
# --max-model-len is capped at the model's own max_position_embeddings (vLLM refuses more).
SEED_FLAGS = {"max-model-len": 16384, "gpu-memory-utilization": 0.82, "max-num-seqs": 4,
              "max-num-batched-tokens": 2048}


def max_positions(model_dir: str | Path) -> int | None:
    """``max_position_embeddings`` from a model folder's config.json, or None without one."""
    config = Path(model_dir) / "config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text()).get("max_position_embeddings")


def _command(model: str | Path, served_name: str, port: int, flags: dict, extra: list[list[str]],
             positions: int | None) -> str:
    """One flag per line, each quoted for the shell (``shlex.join``), joined with line continuations."""
    chosen = {**SEED_FLAGS, **{k.replace("_", "-"): v for k, v in flags.items()}}
    if positions and "max_model_len" not in flags:
        chosen["max-model-len"] = min(chosen["max-model-len"], positions)
    lines = [["vllm", "serve", str(model)], ["--served-model-name", served_name], ["--port", str(port)]]
    lines += [[f"--{key}", str(value)] for key, value in chosen.items()]
    return " \\\n  ".join(shlex.join(line) for line in lines + extra + [["--enforce-eager"]])


def vllm_merged_command(merged_dir: str | Path, served_name: str = "day2-merged", port: int = 8000,
                        **flags) -> str:
    """``vllm serve`` for a merged model folder (the one holding config.json); ``max_model_len=…`` etc. override.

    ``--max-model-len`` is the seed's 16384 or the folder's ``max_position_embeddings``, whichever is smaller.
    """
    return _command(merged_dir, served_name, port, flags, [], max_positions(merged_dir))


def lora_rank_cap(r: int) -> int:
    """The smallest ``--max-lora-rank`` vLLM accepts that holds an adapter of rank ``r``."""
    fits = [c for c in VLLM_LORA_RANKS if c >= r]
    if not fits:
        raise ValueError(f"LoRA rank {r} is above vLLM's largest --max-lora-rank {VLLM_LORA_RANKS[-1]}")
    return fits[0]


def vllm_lora_command(base: str, adapter: str | Path, lora_name: str = "day2-lora", r: int = 16,
                      port: int = 8000, positions: int | None = None, **flags) -> str:
    """``vllm serve`` for the base with the adapter (rank ``r``) mounted; requests name ``model=lora_name``.

    ``positions``: the base's ``max_position_embeddings``, which caps ``--max-model-len``.
    """
    extra = [["--enable-lora"], ["--lora-modules", f"{lora_name}={adapter}"], ["--max-lora-rank", str(lora_rank_cap(r))]]
    return _command(base, base.rsplit("/", 1)[-1], port, flags, extra, positions)


def probe(url: str, timeout: float = 1.0) -> tuple[bool, str]:
    """(True, served model ids) if ``GET {url}/models`` answers like an OpenAI server, else (False, why)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/models", timeout=timeout) as r:
            ids = [m["id"] for m in json.loads(r.read())["data"]]
        return True, ", ".join(ids)
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as err:
        return False, f"no OpenAI-compatible server at {url} ({type(err).__name__}: {getattr(err, 'reason', err)})"


def chat(url: str, model: str, messages: list[dict], max_tokens: int = 128, timeout: float = 60.0) -> str:
    """One greedy chat completion from the server at ``url``; the reply text."""
    try:
        from openai import OpenAI
    except ImportError:
        OpenAI = None
    if OpenAI is not None:
        client = OpenAI(base_url=url, api_key="EMPTY", timeout=timeout)
        r = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, temperature=0)
        return r.choices[0].message.content
    # Without the openai package: the same OpenAI-compatible HTTP API is plain JSON over POST.
    body = json.dumps({"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}).encode()
    req = urllib.request.Request(f"{url.rstrip('/')}/chat/completions", data=body,
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer EMPTY"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())["choices"][0]["message"]["content"]
