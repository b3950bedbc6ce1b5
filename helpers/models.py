"""Load the course's tokenizer and model by one name.

``name`` is ``"tiny-qwen3"`` (the offline fixture, built on first use and cached),
a local folder holding a Hugging Face model, or a hub id such as
``"unsloth/Qwen3-4B-Instruct-2507"``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import paths
from .tiny_qwen3.build import tiny_model_dir, tiny_tokenizer_dir

TINY = "tiny-qwen3"
REAL = "unsloth/Qwen3-4B-Instruct-2507"
# Names people reach for that do not exist on the hub (seed error 8).
NOT_ON_HUB = {
    "Qwen/Qwen3-8B-Instruct": "Qwen3-8B is a hybrid thinking model with no -Instruct "
    "release; the 2507 Instruct releases are Qwen3-4B, Qwen3-30B-A3B and Qwen3-235B-A22B.",
    "Qwen/Qwen3-4B-Instruct": "the instruct release is Qwen/Qwen3-4B-Instruct-2507.",
}
CHOICES = (
    f"'{TINY}' (offline fixture), a local model folder, or a hub id such as '{REAL}'"
)


def resolve(name: str) -> str:
    """Return a path or hub id that ``from_pretrained`` accepts, building the fixture if needed."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"model name must be a non-empty string, got {name!r}; choose {CHOICES}")
    if name == TINY:
        return str(tiny_model_dir())
    if Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
        if not (folder / "config.json").is_file() and not (folder / "tokenizer_config.json").is_file():
            raise FileNotFoundError(f"{folder} has neither config.json nor tokenizer_config.json")
        return str(folder)
    if name in NOT_ON_HUB:
        raise ValueError(f"{name!r} does not exist: {NOT_ON_HUB[name]}")
    if name.count("/") != 1 or name.startswith(("/", ".", "~")):
        raise ValueError(f"unknown model {name!r}: choose {CHOICES}")
    return name


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's host answers a TCP connect (skipped, True, behind an HTTPS proxy)."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return True
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _from_hub(loader, name: str, **kwargs):
    """Call ``loader.from_pretrained`` and turn an offline failure into one clear sentence.

    With no route to the Hub only the local cache is tried, so an offline machine gets the
    message in seconds instead of after the hub client's retries (about a minute).
    """
    if not Path(name).is_dir() and not hub_reachable():
        kwargs = {**kwargs, "local_files_only": True}
    try:
        return loader.from_pretrained(name, **kwargs)
    except OSError as err:
        if Path(name).is_dir():
            raise
        raise OSError(
            f"could not load {name!r} from the Hugging Face Hub or its cache "
            f"(HF_HOME={paths.CACHE / 'hf'}): {str(err).splitlines()[0]}\n"
            f"Offline? Use MODEL='{TINY}', or download the model on a machine with internet "
            f"(huggingface-cli download {name}) and pass its folder."
        ) from None


def load_tokenizer(name: str = TINY, **kwargs: Any):
    """The tokenizer (with chat template) for ``name``."""
    from transformers import AutoTokenizer

    if name == TINY:
        return AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir()), **kwargs)
    return _from_hub(AutoTokenizer, resolve(name), **kwargs)


def placement() -> dict:
    """``from_pretrained`` kwargs that put a model on GPU 0 when there is one; none on a CPU."""
    import torch

    return {"device_map": {"": 0}} if torch.cuda.is_available() else {}


def default_dtype() -> Any:
    """The dtype full-precision models load in: bfloat16 on CUDA, float32 on a CPU."""
    import torch

    return torch.bfloat16 if torch.cuda.is_available() else torch.float32


def load_model(name: str = TINY, *, dtype: Any = None, **kwargs: Any):
    """A causal LM for ``name`` in eval mode; extra kwargs go to ``from_pretrained``.

    ``dtype`` defaults to float32 on CPU and bfloat16 on CUDA, where the model is placed on GPU 0
    (``device_map={"": 0}``; pass another ``device_map`` to change that).
    """
    from transformers import AutoModelForCausalLM

    kwargs = {**placement(), **kwargs}
    model = _from_hub(AutoModelForCausalLM, resolve(name), dtype=default_dtype() if dtype is None else dtype, **kwargs)
    return model.eval()
