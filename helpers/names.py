"""The one check for names that become folders (run names) and for output paths the user gives.

A run name is one folder name from a short alphabet, so ``checkpoints/sft-lora-<run>/`` and
``runs/<run>/`` always stay inside their root:

    >>> check_name("day2-tiny")
    'day2-tiny'
    >>> check_name("../x")
    Traceback (most recent call last):
    ...
    ValueError: run name '../x' may use only letters, digits, '.', '_' and '-' (no '/', backslash, '..' or NUL), 1-64 characters, and must start with a letter or digit
"""
from __future__ import annotations

import re
from pathlib import Path

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RULE = ("may use only letters, digits, '.', '_' and '-' (no '/', backslash, '..' or NUL), 1-64 characters, "
        "and must start with a letter or digit")


def check_name(name: object, what: str = "run name") -> str:
    """``name`` when it is a safe folder name (``NAME_RE``, no ``..``), else ``ValueError`` saying the rule."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise ValueError(f"{what} {name!r} {RULE}")
    return name


def check_path(path: str | Path, what: str = "output folder") -> Path:
    """``path`` as a ``Path`` when it names a folder without NUL or ``..`` parts, else ``ValueError``.

    >>> check_path("runs/dataset/mine")
    PosixPath('runs/dataset/mine')
    """
    text = str(path)
    if not text.strip() or "\x00" in text:
        raise ValueError(f"{what} {text!r} must be a non-empty path without NUL characters")
    path = Path(text)
    if ".." in path.parts or path.name in ("", "."):
        raise ValueError(f"{what} {text!r} must name a folder and contain no '..' parts")
    return path
