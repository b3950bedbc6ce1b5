"""The examples in the modules' docstrings run and print what they say."""
import doctest
import importlib

import pytest

from helpers import paths

# every helpers module whose docstrings hold an example
MODULES = sorted("helpers." + ".".join(p.relative_to(paths.PROJECT_ROOT / "helpers").with_suffix("").parts)
                 for p in (paths.PROJECT_ROOT / "helpers").rglob("*.py") if ">>> " in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(paths.PROJECT_ROOT)  # examples name files relative to the project
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
